/**
 * ESLint for the package's Lightning Web Components (force-app/**\/lwc/**\/*.js, their Jest tests
 * included): Salesforce's recommended LWC rules (@salesforce/eslint-config-lwc, which brings the LWC,
 * Lightning, import and Jest plugins and the Jest globals), laid out as Salesforce's project template
 * does, and a rule that an inline disable names its reason. `npm run lint` runs it with
 * `--max-warnings 0`; scripts/ci.sh runs that. Not deployed (.forceignore).
 *
 * An inline disable is allowed only when it says why, after ` -- `:
 *     // eslint-disable-next-line @lwc/lwc/no-async-operation -- the refresh timer is the feature
 * A disable with no reason, one without a rule name, or one that suppresses nothing fails the lint.
 */
'use strict';

const { defineConfig } = require('eslint/config');
const globals = require('globals');
const lwcRecommended = require('@salesforce/eslint-config-lwc/recommended');
const eslintComments = require('@eslint-community/eslint-plugin-eslint-comments/configs');

const LWC_FILES = ['force-app/**/lwc/**/*.js'];
// Everything under a component's __tests__ folder: the tests and the fixtures they share.
const LWC_TEST_FILES = ['force-app/**/lwc/**/__tests__/**/*.js'];

module.exports = defineConfig([
    { ignores: ['node_modules/**', '.sf/**', '.sfdx/**', '.localdevserver/**', 'coverage/**', '.jest-labels/**'] },

    // The components and their tests: the recommended config (it includes the Jest plugin's
    // recommended rules and the Jest globals).
    {
        files: LWC_FILES,
        extends: [lwcRecommended]
    },

    // Jest tests drive wire adapters by calling `adapter.emit(...)` (sfdx-lwc-jest's test adapters),
    // which the wire-usage rule cannot tell from misuse; they run in Node.
    {
        files: LWC_TEST_FILES,
        rules: {
            '@lwc/lwc/no-unexpected-wire-adapter-usages': 'off'
        },
        languageOptions: {
            globals: { ...globals.node }
        }
    },

    // Inline disables: each names its rule and its reason, and none is left over.
    {
        files: LWC_FILES,
        extends: [eslintComments.recommended],
        rules: {
            // `// eslint-disable-next-line rule -- why`: a suppression must carry its reason.
            '@eslint-community/eslint-comments/require-description': 'error',
            // A blanket disable hides every rule at once; name the rule.
            '@eslint-community/eslint-comments/no-unlimited-disable': 'error'
        },
        linterOptions: {
            // A disable that no longer suppresses anything is a finding, not noise.
            reportUnusedDisableDirectives: 'error'
        }
    }
]);
