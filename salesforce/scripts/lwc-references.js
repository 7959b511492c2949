/*
 * Cross-checks of the Lightning Web Components' references that `sf project convert source` does
 * not make and a deploy (or only a rep) would find; used by validate.js (checks 5 to 7):
 *  - Custom Labels: every `@salesforce/label/c.X` an LWC imports is defined in
 *    labels/CustomLabels.labels-meta.xml, once, with a valid name and its fields; every label
 *    defined there is used by a component (a test's import does not count) or read as `Label.X`;
 *  - every child component a template uses (`<c-whatsapp-composer>`) and every `c/…` module a
 *    component or test imports exists in lwc/;
 *  - every quick action of type LightningWebComponent names an existing LWC whose meta is exposed
 *    and targets `lightning__RecordAction`.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

/** Every file under `dir` (recursively) whose name passes `keep`. */
function filesUnder(dir, keep) {
    const found = [];
    if (!fs.existsSync(dir)) return found;
    (function walk(current) {
        for (const entry of fs.readdirSync(current, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const full = path.join(current, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (keep(entry.name, full)) found.push(full);
        }
    })(dir);
    return found;
}

/** Text of the first `<tag>…</tag>` in `xml`, trimmed; null when absent. */
function tagText(xml, tag) {
    const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
    return match ? match[1].trim() : null;
}

/**
 * Checks 5 to 7 over a source folder such as force-app/main/default (`base`); pushes each problem onto
 * `problems` (file names relative to `root`) and returns how many labels, component references and
 * quick actions it checked.
 */
function checkLwcReferences(base, root, problems) {
    const lwcDir = path.join(base, 'lwc');
    const rel = (file) => path.relative(root, file);
    const isTest = (file) => file.split(path.sep).includes('__tests__');
    const bundles = new Set(
        fs.existsSync(lwcDir)
            ? fs
                  .readdirSync(lwcDir, { withFileTypes: true })
                  .filter((e) => e.isDirectory() && fs.existsSync(path.join(lwcDir, e.name, `${e.name}.js`)))
                  .map((e) => e.name)
            : []
    );
    const lwcJs = filesUnder(lwcDir, (name) => name.endsWith('.js'));
    const lwcHtml = filesUnder(lwcDir, (name) => name.endsWith('.html'));

    // 5. Custom Labels.
    const labelsFile = path.join(base, 'labels', 'CustomLabels.labels-meta.xml');
    const defined = new Map(); // name -> count
    if (fs.existsSync(labelsFile)) {
        const xml = fs.readFileSync(labelsFile, 'utf8');
        for (const block of xml.match(/<labels>[\s\S]*?<\/labels>/g) || []) {
            const name = tagText(block, 'fullName');
            if (!name) {
                problems.push(`${rel(labelsFile)}: a <labels> entry has no <fullName>`);
                continue;
            }
            defined.set(name, (defined.get(name) || 0) + 1);
            // Salesforce's rules for a label's name and fields (checked at deploy, not by convert).
            if (!/^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$/.test(name) || name.endsWith('_') || name.length > 80) {
                problems.push(`${rel(labelsFile)}: label name ${name} is not a valid API name`);
            }
            for (const field of ['language', 'protected', 'shortDescription', 'value']) {
                if (tagText(block, field) === null) problems.push(`${rel(labelsFile)}: label ${name} has no <${field}>`);
            }
            const value = tagText(block, 'value');
            if (value !== null && (value === '' || value.length > 1000)) {
                problems.push(`${rel(labelsFile)}: label ${name} has a value of ${value.length} characters (1 to 1000)`);
            }
            const description = tagText(block, 'shortDescription');
            if (description !== null && description.length > 80) {
                problems.push(`${rel(labelsFile)}: label ${name} has a shortDescription over 80 characters`);
            }
        }
    }
    for (const [name, count] of defined) {
        if (count > 1) problems.push(`${rel(labelsFile)}: label ${name} is defined ${count} times`);
    }
    const used = new Set();
    for (const file of lwcJs) {
        const text = fs.readFileSync(file, 'utf8');
        for (const [, name] of text.matchAll(/['"]@salesforce\/label\/c\.(\w+)['"]/g)) {
            if (!defined.has(name)) {
                problems.push(`${rel(file)}: imports Custom Label c.${name}, which ${rel(labelsFile)} does not define`);
            }
            if (!isTest(file)) used.add(name);
        }
    }
    // A label may also be read outside the LWC: $Label.X in metadata or Label.X in Apex.
    const otherSources = filesUnder(
        base,
        (name, full) => /\.(xml|cls|trigger|cmp|page)$/.test(name) && full !== labelsFile && !full.startsWith(lwcDir + path.sep)
    );
    for (const file of otherSources) {
        const text = fs.readFileSync(file, 'utf8');
        for (const [, name] of text.matchAll(/\bLabel\.(?:c\.)?(\w+)/g)) used.add(name);
    }
    for (const name of defined.keys()) {
        if (!used.has(name)) problems.push(`${rel(labelsFile)}: label ${name} is not used by any component`);
    }

    // 6. Child components and c/ modules.
    const kebabToCamel = (tag) => tag.replace(/-([a-z])/g, (_, letter) => letter.toUpperCase());
    let components = 0;
    for (const file of lwcHtml) {
        const text = fs.readFileSync(file, 'utf8').replace(/<!--[\s\S]*?-->/g, '');
        for (const [, tag] of text.matchAll(/<c-([a-z0-9-]+)[\s/>]/g)) {
            components += 1;
            if (!bundles.has(kebabToCamel(tag))) {
                problems.push(`${rel(file)}: <c-${tag}> has no component lwc/${kebabToCamel(tag)}`);
            }
        }
    }
    for (const file of lwcJs) {
        const text = fs.readFileSync(file, 'utf8');
        for (const [, name] of text.matchAll(/(?:from\s+|import\s*\(\s*|jest\.mock\(\s*)['"]c\/(\w+)['"]/g)) {
            components += 1;
            if (!bundles.has(name)) problems.push(`${rel(file)}: imports c/${name}, which is not a component in lwc/`);
        }
    }

    // 7. Quick actions backed by an LWC.
    let quickActions = 0;
    for (const file of filesUnder(path.join(base, 'quickActions'), (name) => name.endsWith('.quickAction-meta.xml'))) {
        const xml = fs.readFileSync(file, 'utf8');
        if (tagText(xml, 'type') !== 'LightningWebComponent') continue;
        quickActions += 1;
        const component = tagText(xml, 'lightningWebComponent');
        if (!component) {
            problems.push(`${rel(file)}: a LightningWebComponent action names no <lightningWebComponent>`);
            continue;
        }
        const name = component.replace(/^c__/, '');
        const meta = path.join(lwcDir, name, `${name}.js-meta.xml`);
        if (!bundles.has(name) || !fs.existsSync(meta)) {
            problems.push(`${rel(file)}: names LWC ${component}, which does not exist`);
            continue;
        }
        const bundle = fs.readFileSync(meta, 'utf8');
        if (tagText(bundle, 'isExposed') !== 'true') problems.push(`${rel(meta)}: not exposed, yet ${rel(file)} uses it`);
        if (!/<target>\s*lightning__RecordAction\s*<\/target>/.test(bundle)) {
            problems.push(`${rel(meta)}: no lightning__RecordAction target, yet ${rel(file)} uses it`);
        }
    }
    return { labels: defined.size, components, quickActions };
}

module.exports = { checkLwcReferences };
