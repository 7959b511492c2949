const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    // Custom Labels resolve to their English values (see jest-mocks/labels.js).
    globalSetup: '<rootDir>/jest-mocks/labels.js',
    // `await expect(element).toBeAccessible()` (axe-core through @sa11y/jest; see jest-mocks/sa11y.js).
    setupFilesAfterEnv: [...(jestConfig.setupFilesAfterEnv || []), '<rootDir>/jest-mocks/sa11y.js'],
    moduleNameMapper: {
        ...(jestConfig.moduleNameMapper || {}),
        '^@salesforce/label/(c\\..+)$': '<rootDir>/.jest-labels/$1.js'
    },
    // Helpers shared by the tests in a __tests__ folder are not test suites themselves.
    testPathIgnorePatterns: [...jestConfig.testPathIgnorePatterns, '/__tests__/fixtures\\.js$'],
    modulePathIgnorePatterns: ['<rootDir>/.localdevserver', '<rootDir>/.sf', '<rootDir>/.sfdx']
};
