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
const { checkLwcReferences } = require('./lwc-references');
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
        'WhatsApp_Outbound__e.Business_Number_Id__c',
        'WhatsApp_Message__c.Account__c',
        'WhatsApp_Message__c.Media_File_Id__c'
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
    LightningComponentBundle: ['whatsappConversation', 'whatsappComposer', 'whatsappSendAction'],
    QuickAction: ['Contact.Send_WhatsApp', 'Lead.Send_WhatsApp', 'Case.Send_WhatsApp', 'Account.Send_WhatsApp'],
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
const lwcChecks = checkLwcReferences(defaultDir, root, problems);

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
