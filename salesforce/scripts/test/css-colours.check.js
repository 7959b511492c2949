// Tests of scripts/css-colours.js (node --test; `npm run test:scripts`).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { findColours, findTemplateColours } = require('../css-colours');

const colours = (css) => findColours(css).map((hit) => hit.colour);

test('a hex colour in a declaration is reported', () => {
    // Arrange
    const css = '.bubble { background: #d9fdd3; }';
    // Act
    const found = colours(css);
    // Assert
    assert.deepEqual(found, ['#d9fdd3']);
});

test('a colour as the fallback of an SLDS styling hook is allowed', () => {
    const css = '.a { color: var(--slds-g-color-on-surface-2, #5c5c5c); background: var(--slds-g-color-a, var(--slds-g-color-b, rgb(1, 2, 3))); }';
    assert.deepEqual(colours(css), []);
});

test('a colour as the fallback of a hook that is not SLDS is reported', () => {
    assert.deepEqual(colours('.a { color: var(--lwc-colorTextWeak, #fff); }'), ['#fff']);
});

test('colours the SLDS linter lets through are reported: shadow, hsl, custom property', () => {
    const css = '.a { box-shadow: 0 1px 0.5px rgba(0, 0, 0, 0.13); border-color: hsl(0 0% 50%); --bubble: #123456; }';
    assert.deepEqual(colours(css), ['rgba(0, 0, 0, 0.13)', 'hsl(0 0% 50%)', '#123456']);
});

test('a named colour in a value is reported but not in a selector, a property name or a string', () => {
    const css = '.red, #main:hover { white-space: pre-wrap; font-family: "white"; color: Red; }';
    assert.deepEqual(colours(css), ['Red']);
});

test('transparent, currentColor, comments and url(#id) are not colours', () => {
    const css = '/* color: #abc */ .a { border-color: transparent; fill: currentColor; filter: url(#shadow); }';
    assert.deepEqual(colours(css), []);
});

test('the line and column of a finding point at the colour', () => {
    const css = '.a {\n    color: #fff;\n}';
    const [hit] = findColours(css);
    assert.equal(css.slice(hit.offset, hit.offset + 4), '#fff');
});

test('a colour in an inline style of a template is reported, an SLDS fallback there is not', () => {
    const html = '<template><div style="color: #fff; margin: 0"></div><p style="color: var(--slds-g-color-x, white)"></p></template>';
    const found = findTemplateColours(html);
    assert.deepEqual(found.map((hit) => hit.colour), ['#fff']);
    assert.equal(html.slice(found[0].offset, found[0].offset + 4), '#fff');
});
