/**
 * Jest global setup: every Custom Label in force-app/.../labels/CustomLabels.labels-meta.xml becomes a
 * module `.jest-labels/c.<Name>.js` exporting the label's English value, so component tests see the
 * text a rep sees. `jest.config.js` maps `@salesforce/label/c.<Name>` there; a label the XML does not
 * define has no module, and the component importing it fails to load (the test fails, naming it).
 */
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const labelsFile = path.join(root, 'force-app', 'main', 'default', 'labels', 'CustomLabels.labels-meta.xml');
const outDir = path.join(root, '.jest-labels');

function decode(text) {
    return text
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, '&');
}

/** { name: value } of every label in the XML. */
function readLabels() {
    const xml = fs.readFileSync(labelsFile, 'utf8');
    const labels = {};
    for (const block of xml.match(/<labels>[\s\S]*?<\/labels>/g) || []) {
        const name = /<fullName>([\s\S]*?)<\/fullName>/.exec(block);
        const value = /<value>([\s\S]*?)<\/value>/.exec(block);
        if (name && value) {
            labels[name[1].trim()] = decode(value[1]);
        }
    }
    return labels;
}

module.exports = async function writeLabelModules() {
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir, { recursive: true });
    for (const [name, value] of Object.entries(readLabels())) {
        fs.writeFileSync(path.join(outDir, `c.${name}.js`), `export default ${JSON.stringify(value)};\n`);
    }
};

module.exports.readLabels = readLabels;
