const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    // Helpers shared by the tests in a __tests__ folder are not test suites themselves.
    testPathIgnorePatterns: [...jestConfig.testPathIgnorePatterns, '/__tests__/fixtures\\.js$'],
    modulePathIgnorePatterns: ['<rootDir>/.localdevserver', '<rootDir>/.sf', '<rootDir>/.sfdx']
};
