// Tests of scripts/lwc-references.js (validate.js checks 5 to 7) on a package laid out in a temporary folder.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { checkLwcReferences } = require('../lwc-references');

/** A source folder with the given files ({ 'relative/path': text }); returns its path. */
function sourceFolder(files) {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'sfwa-lwc-refs-'));
    for (const [relative, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(base, relative)), { recursive: true });
        fs.writeFileSync(path.join(base, relative), text);
    }
    return base;
}

function label(name, value = 'Text') {
    return `<labels><fullName>${name}</fullName><language>en_US</language><protected>false</protected><shortDescription>${name}</shortDescription><value>${value}</value></labels>`;
}

const labels = (...entries) =>
    `<?xml version="1.0" encoding="UTF-8"?><CustomLabels xmlns="http://soap.sforce.com/2006/04/metadata">${entries.join('')}</CustomLabels>`;

function bundleMeta({ exposed = true, targets = [] } = {}) {
    const list = targets.map((t) => `<target>${t}</target>`).join('');
    return `<LightningComponentBundle><apiVersion>67.0</apiVersion><isExposed>${exposed}</isExposed><targets>${list}</targets></LightningComponentBundle>`;
}

function component(name, js = '', html = '<template></template>', meta = bundleMeta()) {
    return {
        [`lwc/${name}/${name}.js`]: `import { LightningElement } from 'lwc';\n${js}\nexport default class X extends LightningElement {}\n`,
        [`lwc/${name}/${name}.html`]: html,
        [`lwc/${name}/${name}.js-meta.xml`]: meta
    };
}

const quickAction = (lwc) =>
    `<QuickAction><actionSubtype>ScreenAction</actionSubtype><label>Send WhatsApp</label><lightningWebComponent>${lwc}</lightningWebComponent><type>LightningWebComponent</type></QuickAction>`;

function check(files) {
    const base = sourceFolder(files);
    const problems = [];
    try {
        const counts = checkLwcReferences(base, base, problems);
        return { problems, counts };
    } finally {
        fs.rmSync(base, { recursive: true, force: true });
    }
}

test('a package whose labels, children and quick action all resolve has no problem', () => {
    // Arrange
    const files = {
        'labels/CustomLabels.labels-meta.xml': labels(label('WA_Composer_Send')),
        ...component('whatsappComposer', "import SEND from '@salesforce/label/c.WA_Composer_Send';"),
        ...component(
            'whatsappSendAction',
            '',
            '<template><c-whatsapp-composer record-id="x"></c-whatsapp-composer></template>',
            bundleMeta({ targets: ['lightning__RecordAction'] })
        ),
        'quickActions/Contact.Send_WhatsApp.quickAction-meta.xml': quickAction('whatsappSendAction')
    };
    // Act
    const { problems, counts } = check(files);
    // Assert
    assert.deepEqual(problems, []);
    assert.deepEqual(counts, { labels: 1, components: 1, quickActions: 1 });
});

test('an imported label the XML does not define is a problem', () => {
    const { problems } = check({
        'labels/CustomLabels.labels-meta.xml': labels(),
        ...component('whatsappComposer', "import SEND from '@salesforce/label/c.WA_Composer_Send';")
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /imports Custom Label c\.WA_Composer_Send, which .* does not define/);
});

test('a label used only by a test is reported as unused', () => {
    const { problems } = check({
        'labels/CustomLabels.labels-meta.xml': labels(label('WA_Conversation_Empty')),
        ...component('whatsappConversation'),
        'lwc/whatsappConversation/__tests__/x.test.js': "import EMPTY from '@salesforce/label/c.WA_Conversation_Empty';\n"
    });
    assert.deepEqual(problems, ['labels/CustomLabels.labels-meta.xml: label WA_Conversation_Empty is not used by any component']);
});

test('a label defined twice or with an invalid name is a problem', () => {
    const { problems } = check({
        'labels/CustomLabels.labels-meta.xml': labels(label('WA_A'), label('WA_A'), label('WA__B')),
        ...component('whatsappComposer', "import A from '@salesforce/label/c.WA_A';\nimport B from '@salesforce/label/c.WA__B';")
    });
    assert.ok(problems.some((p) => /label WA_A is defined 2 times/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /label name WA__B is not a valid API name/.test(p)), problems.join('\n'));
});

test('a child component or c/ import that does not exist is a problem', () => {
    const { problems } = check({
        ...component('whatsappConversation', "import Gone from 'c/whatsappGone';", '<template><c-whatsapp-composer></c-whatsapp-composer></template>')
    });
    assert.deepEqual(problems, [
        'lwc/whatsappConversation/whatsappConversation.html: <c-whatsapp-composer> has no component lwc/whatsappComposer',
        'lwc/whatsappConversation/whatsappConversation.js: imports c/whatsappGone, which is not a component in lwc/'
    ]);
});

test('a quick action whose LWC does not target lightning__RecordAction, or does not exist, is a problem', () => {
    const { problems } = check({
        ...component('whatsappSendAction', '', '<template></template>', bundleMeta({ targets: ['lightning__RecordPage'] })),
        'quickActions/Contact.Send_WhatsApp.quickAction-meta.xml': quickAction('whatsappSendAction'),
        'quickActions/Lead.Send_WhatsApp.quickAction-meta.xml': quickAction('whatsappMissing')
    });
    assert.deepEqual(problems, [
        'lwc/whatsappSendAction/whatsappSendAction.js-meta.xml: no lightning__RecordAction target, yet quickActions/Contact.Send_WhatsApp.quickAction-meta.xml uses it',
        'quickActions/Lead.Send_WhatsApp.quickAction-meta.xml: names LWC whatsappMissing, which does not exist'
    ]);
});
