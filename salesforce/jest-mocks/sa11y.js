/**
 * Jest setup (after the environment): registers sa11y's `toBeAccessible` matcher, Salesforce's
 * wrapper around axe-core, so a component test checks a rendered state with
 *     await expect(element).toBeAccessible();
 * (async, with real timers: call `jest.useRealTimers()` first in a test that faked them). `setup()`
 * with its defaults registers the matcher and sa11y's own rules; it does not check every test
 * automatically (that is `SA11Y_AUTO=1`). axe's colour-contrast rule does not run in jsdom: contrast
 * is checked by the SLDS styling hooks and by hand.
 */
const { setup } = require('@sa11y/jest');

setup();
