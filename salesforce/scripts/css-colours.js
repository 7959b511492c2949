#!/usr/bin/env node
/*
 * No hard-coded colour in the Lightning Web Components: a colour in a component's CSS (or in a
 * template's inline `style`) is an SLDS styling hook, so the component follows the org's theme and
 * dark mode. A literal colour is allowed only as the fallback of a hook,
 *     color: var(--slds-g-color-on-surface-2, #5c5c5c);
 * for the environments that have no hooks.
 *
 * Why beside the SLDS linter (npm run lint:slds): its no-hardcoded-values rule flags most literal
 * colours but not all. Measured with @salesforce-ux/slds-linter 0.3.0, it lets through a colour
 * inside a shadow (`box-shadow: 0 1px 0.5px rgba(0, 0, 0, 0.13)`), `hsl()`, a colour defined as a
 * custom property (`--bubble: #d9fdd3`), the fallback of a hook that is not SLDS's
 * (`var(--my-colour, #fff)`, `var(--lwc-…, #fff)`), and inline styles in templates. This check
 * covers those; the two overlap on plain `color: #fff`, which both report.
 *
 * Colours found: #rgb, #rgba, #rrggbb, #rrggbbaa; rgb(), rgba(), hsl(), hsla(), hwb(), lab(),
 * lch(), oklab(), oklch(), color(); the CSS named colours. Not colours: transparent, currentColor,
 * inherit and the other keywords. Exits 1 listing each finding as file:line:column.
 *
 *   npm run lint:colours
 *   node scripts/css-colours.js path/to/file.css …   # these files only
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

// CSS Color Module Level 4 named colours (transparent and currentColor are not hard-coded colours).
const NAMED = new Set(
    (
        'aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet brown ' +
        'burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan ' +
        'darkgoldenrod darkgray darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange darkorchid ' +
        'darkred darksalmon darkseagreen darkslateblue darkslategray darkslategrey darkturquoise darkviolet ' +
        'deeppink deepskyblue dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ' +
        'ghostwhite gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo ivory khaki ' +
        'lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan lightgoldenrodyellow ' +
        'lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue lightslategray ' +
        'lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine ' +
        'mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue mediumspringgreen mediumturquoise ' +
        'mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab ' +
        'orange orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru ' +
        'pink plum powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown ' +
        'seagreen seashell sienna silver skyblue slateblue slategray slategrey snow springgreen steelblue tan ' +
        'teal thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen'
    ).split(' ')
);

const COLOUR = new RegExp(
    [
        // A hex colour: 3, 4, 6 or 8 digits, not part of a longer word.
        '#(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{6}|[0-9a-fA-F]{3,4})(?![\\w-])',
        // A colour function.
        '(?<![\\w-])(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch|color)\\(',
        // A word that may be a named colour (checked against NAMED).
        '(?<![\\w#.-])[a-zA-Z]+(?![\\w(-])'
    ].join('|'),
    'g'
);

/** `text` with comments blanked to spaces, so offsets (and so line numbers) stay as they were. */
function blankComments(text) {
    return text.replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ' '));
}

/**
 * `value` with the fallback of every `var(--slds-…, fallback)` blanked (nested parentheses
 * included), so a colour there is not reported. Other `var()` fallbacks stay.
 */
function blankSldsFallbacks(value) {
    let out = value;
    const start = /var\(\s*--slds-[\w-]+\s*,/g;
    let match;
    while ((match = start.exec(out)) !== null) {
        let depth = 1;
        let i = match.index + match[0].length;
        for (; i < out.length && depth > 0; i += 1) {
            if (out[i] === '(') depth += 1;
            else if (out[i] === ')') depth -= 1;
        }
        const end = depth === 0 ? i - 1 : out.length; // the closing parenthesis stays
        const from = match.index + match[0].length;
        out = out.slice(0, from) + out.slice(from, end).replace(/[^\n]/g, ' ') + out.slice(end);
        start.lastIndex = from;
    }
    return out;
}

/** Each declaration of a CSS text as { offset, text } (the part after the property's colon). */
function declarationValues(css) {
    const values = [];
    // Split at { } ; — a segment followed by `{` is a selector or at-rule prelude, the others are
    // declarations (`property: value`).
    const segment = /[^{};]+/g;
    let match;
    while ((match = segment.exec(css)) !== null) {
        const next = css[match.index + match[0].length];
        if (next === '{') continue;
        const colon = match[0].indexOf(':');
        if (colon < 0) continue;
        values.push({ offset: match.index + colon + 1, text: match[0].slice(colon + 1) });
    }
    return values;
}

/** The function call that starts at `from` in `text`, up to its closing parenthesis. */
function withArguments(text, from) {
    let depth = 0;
    for (let i = text.indexOf('(', from); i < text.length; i += 1) {
        if (text[i] === '(') depth += 1;
        else if (text[i] === ')' && --depth === 0) return text.slice(from, i + 1).replace(/\s+/g, ' ');
    }
    return text.slice(from).trim();
}

/** The hard-coded colours in a CSS text: [{ offset, colour }]. */
function findColours(css) {
    const found = [];
    for (const { offset, text } of declarationValues(blankComments(css))) {
        // Quoted strings (content: "…", font names) and url(…) (an SVG `url(#id)`) are not colours.
        const value = blankSldsFallbacks(
            text
                .replace(/(["'])(?:\\.|(?!\1)[^\\])*\1/g, (s) => ' '.repeat(s.length))
                .replace(/url\([^)]*\)/gi, (s) => ' '.repeat(s.length))
        );
        for (const hit of value.matchAll(COLOUR)) {
            if (/^[a-zA-Z]+$/.test(hit[0]) && !NAMED.has(hit[0].toLowerCase())) continue;
            // A colour function is shown whole: rgba(0, 0, 0, 0.13).
            const colour = hit[0].endsWith('(') ? withArguments(value, hit.index) : hit[0];
            found.push({ offset: offset + hit.index, colour });
        }
    }
    return found;
}

/** The hard-coded colours in the inline `style` attributes of a template: [{ offset, colour }]. */
function findTemplateColours(html) {
    const found = [];
    const text = html.replace(/<!--[\s\S]*?-->/g, (c) => c.replace(/[^\n]/g, ' '));
    for (const attr of text.matchAll(/\sstyle\s*=\s*(["'])([\s\S]*?)\1/g)) {
        const start = attr.index + attr[0].indexOf(attr[2], attr[0].indexOf('='));
        for (const hit of findColours(`x{${attr[2]}}`)) found.push({ offset: start + hit.offset - 2, colour: hit.colour });
    }
    return found;
}

function lineColumn(text, offset) {
    const before = text.slice(0, offset).split('\n');
    return `${before.length}:${before[before.length - 1].length + 1}`;
}

/** The CSS and HTML files of every component under force-app/**\/lwc (tests excluded). */
function componentFiles() {
    const found = [];
    (function walk(dir, inLwc) {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) {
                if (entry.name !== '__tests__') walk(full, inLwc || entry.name === 'lwc');
            } else if (inLwc && /\.(css|html)$/.test(entry.name)) {
                found.push(full);
            }
        }
    })(path.join(root, 'force-app'), false);
    return found;
}

function main(argv) {
    const files = argv.length > 0 ? argv.map((f) => path.resolve(f)) : componentFiles();
    const findings = [];
    for (const file of files) {
        const text = fs.readFileSync(file, 'utf8');
        const hits = file.endsWith('.html') ? findTemplateColours(text) : findColours(text);
        for (const { offset, colour } of hits) {
            findings.push(`${path.relative(root, file)}:${lineColumn(text, offset)} ${colour}`);
        }
    }
    if (findings.length > 0) {
        console.error(
            `css-colours: ${findings.length} hard-coded colour(s); use an SLDS styling hook, ` +
                'with the literal only as its fallback: var(--slds-g-color-…, #hex)'
        );
        for (const finding of findings) console.error(`  ${finding}`);
        return 1;
    }
    console.log(`css-colours: ${files.length} file(s), no hard-coded colour outside an SLDS hook's fallback`);
    return 0;
}

if (require.main === module) {
    process.exitCode = main(process.argv.slice(2));
}

module.exports = { findColours, findTemplateColours };
