const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    // Custom Labels resolve to their English values (see jest-mocks/labels.js).
    globalSetup: '<rootDir>/jest-mocks/labels.js',
    moduleNameMapper: {
        ...(jestConfig.moduleNameMapper || {}),
        '^@salesforce/label/(c\\..+)$': '<rootDir>/.jest-labels/$1.js'
    },
    // Helpers shared by the tests in a __tests__ folder are not test suites themselves.
    testPathIgnorePatterns: [...jestConfig.testPathIgnorePatterns, '/__tests__/fixtures\\.js$'],
    modulePathIgnorePatterns: ['<rootDir>/.localdevserver', '<rootDir>/.sf', '<rootDir>/.sfdx']
};
