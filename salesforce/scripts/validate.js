#!/usr/bin/env node
/*
 * Offline check of the package:
 *  1. `sf project convert source` into a temporary folder (well-formed XML, valid file names and
 *     types), with the CLI's auto-update and telemetry off;
 *  2. the converted package.xml holds every kind of component the package is meant to ship;
 *  3. every XML file is well-formed (the convert step does not check that: it copies files as they are);
 *  4. every custom field (`X__c`) named anywhere in layouts, list views, permission sets, Flows,
 *     Apex and the LWC exists as a field file, so a typo fails here rather than at deploy;
 *  5. Custom Labels: every `@salesforce/label/c.X` an LWC imports is defined in
 *     labels/CustomLabels.labels-meta.xml (once, with a name and fields Salesforce accepts), and
 *     every label defined there is used by a component (a test's use does not count);
 *  6. every child component a template uses (`<c-whatsapp-composer>`) and every `c/…` module a
 *     component or test imports exists in lwc/;
 *  7. every quick action of type LightningWebComponent names an existing LWC whose meta is exposed
 *     and targets `lightning__RecordAction`.
 * Deploy-time errors these catch (a missing label or component, an action with no target) are
 * otherwise seen only in an org; `sf project convert source` copies such files as they are.
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const source = path.join(root, 'force-app');
const objectsDir = path.join(source, 'main', 'default', 'objects');
const problems = [];

// 1. Convert.
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sfwa-mdapi-'));
const sfBin = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'sf.cmd' : 'sf');
const convert = spawnSync(
    sfBin,
    ['project', 'convert', 'source', '--root-dir', 'force-app', '--output-dir', out],
    {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, SF_DISABLE_AUTOUPDATE: 'true', SF_DISABLE_TELEMETRY: 'true', SF_AUTOUPDATE_DISABLE: 'true' }
    }
);
if (convert.error || convert.status !== 0) {
    console.error(`validate: sf project convert source failed (${convert.error ? convert.error.message : `exit ${convert.status}`})`);
    fs.rmSync(out, { recursive: true, force: true });
    process.exit(1);
}

// 2. What the package ships.
const manifest = fs.readFileSync(path.join(out, 'package.xml'), 'utf8');
const expected = {
    CustomObject: ['WhatsApp_Message__c', 'WhatsApp_Outbound__e'],
    CustomField: [
        'WhatsApp_Message__c.Status__c',
        'WhatsApp_Outbound__e.Message_Id__c',
        'WhatsApp_Outbound__e.Business_Number_Id__c'
    ],
    CompactLayout: ['WhatsApp_Message__c.WhatsApp_Message_Compact'],
    ListView: ['WhatsApp_Message__c.My_Queued', 'WhatsApp_Message__c.Failed_Today', 'WhatsApp_Message__c.Inbound_Today'],
    Layout: ['WhatsApp_Message__c-WhatsApp Message Layout'],
    CustomTab: ['WhatsApp_Message__c'],
    Flow: ['WhatsApp_Publish_Outbound', 'WhatsApp_Send_Appointment_Reminder'],
    ApexClass: ['WhatsAppPublishOutboundTest', 'WhatsAppOutboundTestProbe'],
    ApexTrigger: ['WhatsAppOutboundTestProbeTrigger'],
    PermissionSet: ['WhatsApp_Integration', 'WhatsApp_Messaging_User', 'WhatsApp_Messaging_Admin'],
    CustomPermission: ['WhatsApp_Integration_Writes'],
    Queue: ['WhatsApp_Inbound'],
    ExternalClientApplication: ['sfwa_WhatsApp'],
    ExtlClntAppOauthSettings: ['sfwa_WhatsApp_oauth'],
    ExtlClntAppOauthConfigurablePolicies: ['sfwa_WhatsApp_oauthPlcy'],
    LightningComponentBundle: ['whatsappConversation', 'whatsappComposer'],
    CustomLabels: ['CustomLabels']
};
for (const [type, members] of Object.entries(expected)) {
    const block = manifest.split('<types>').find((t) => t.includes(`<name>${type}</name>`)) || '';
    for (const member of members) {
        if (!block.includes(`<members>${member}</members>`)) {
            problems.push(`package.xml has no ${type} ${member}`);
        }
    }
}
const shippedTests = [];
(function walk(dir) {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
            if (entry.name === '__tests__') shippedTests.push(path.relative(out, full));
            else walk(full);
        }
    }
})(out);
for (const dir of shippedTests) problems.push(`Jest tests would be deployed: ${dir} (check .forceignore)`);
fs.rmSync(out, { recursive: true, force: true });

// 3. Well-formed XML: balanced, properly nested tags and one root element.
function xmlProblem(text) {
    const body = text
        .replace(/^\uFEFF?\s*<\?xml[^>]*\?>/, '')
        .replace(/<!--[\s\S]*?-->/g, '')
        .replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
    const stack = [];
    let roots = 0;
    const tag = /<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
    let last = 0;
    for (const match of body.matchAll(tag)) {
        const between = body.slice(last, match.index);
        if (between.includes('<') || /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(between)) {
            return `bad markup near offset ${last}`;
        }
        last = match.index + match[0].length;
        const [, closing, name, , selfClosing] = match;
        if (closing) {
            const open = stack.pop();
            if (open !== name) return `</${name}> closes <${open ?? 'nothing'}>`;
        } else if (!selfClosing) {
            if (stack.length === 0) roots += 1;
            stack.push(name);
        } else if (stack.length === 0) {
            roots += 1;
        }
    }
    const rest = body.slice(last);
    if (rest.includes('<') || rest.trim() !== '') return 'text after the root element';
    if (stack.length > 0) return `<${stack[stack.length - 1]}> is never closed`;
    if (roots !== 1) return `${roots} root elements`;
    return null;
}

// 4. Field references.
const fieldsOf = {};
for (const object of fs.readdirSync(objectsDir)) {
    const dir = path.join(objectsDir, object, 'fields');
    fieldsOf[object] = new Set(
        fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => f.replace(/\.field-meta\.xml$/, '')) : []
    );
}
const known = new Set(Object.values(fieldsOf).flatMap((set) => [...set]));
const objects = new Set(Object.keys(fieldsOf));
function check(file) {
    const text = fs.readFileSync(file, 'utf8');
    const relative = path.relative(root, file);
    // Qualified references (Object__c.Field__c) must name a field of that object.
    for (const [, object, field] of text.matchAll(/\b(\w+__[ce])\.(\w+__c)\b/g)) {
        if (objects.has(object) && !fieldsOf[object].has(field)) {
            problems.push(`${relative}: ${object}.${field} does not exist`);
        }
    }
    // Any other custom name must be one of the package's fields or objects.
    for (const [name] of text.matchAll(/\b\w+__c\b/g)) {
        if (!known.has(name) && !objects.has(name)) {
            problems.push(`${relative}: ${name} is not a field of this package`);
        }
    }
}
const defaultDir = path.join(source, 'main', 'default');
const scanned = [];
(function walk(dir) {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
            if (entry.name !== 'fields') walk(full);
        } else if (/\.(xml|js|html|cls|trigger)$/.test(entry.name)) {
            scanned.push(full);
        }
    }
})(defaultDir);
scanned.forEach(check);
(function walk(dir) {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.name.endsWith('.xml')) {
            const problem = xmlProblem(fs.readFileSync(full, 'utf8'));
            if (problem) problems.push(`${path.relative(root, full)}: not well-formed XML: ${problem}`);
        }
    }
})(source);

// 5-7. Labels, child components, quick actions.
const lwcChecks = checkLwcReferences(defaultDir, problems);

if (problems.length > 0) {
    console.error(`validate: ${problems.length} problem(s):`);
    for (const problem of [...new Set(problems)]) console.error(`  - ${problem}`);
    process.exit(1);
}
console.log(`validate: converted, XML well-formed, ${scanned.length} files cross-checked against ${known.size} fields`);
console.log(
    `validate: ${lwcChecks.labels} Custom Labels defined and used, ${lwcChecks.components} component reference(s), ` +
        `${lwcChecks.quickActions} LWC quick action(s) checked`
);

/** Every file under `dir` (recursively) whose name passes `keep`. */
function filesUnder(dir, keep) {
    const found = [];
    if (!fs.existsSync(dir)) return found;
    (function walk(current) {
        for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
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
 * Checks 5 to 7 over force-app/main/default (`base`); pushes each problem onto `problems` and returns
 * how many labels, component references and quick actions it checked.
 */
function checkLwcReferences(base, problems) {
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
