#!/usr/bin/env node
/*
 * SLDS linter (@salesforce-ux/slds-linter) over the Lightning Web Components' CSS and HTML, failing
 * on any finding. The linter's own `lint` command exits 0 when it finds only warnings, and almost
 * everything it reports is a warning (hard-coded colours, sizes and fonts that should be SLDS styling
 * hooks, deprecated SLDS classes and tokens), so this script runs it through its Node API (the same
 * Stylelint and ESLint rules and configs as the command; `fix` off) and counts errors and warnings
 * alike. It also fails when it finds no file to lint, so a wrong path cannot pass silently.
 *
 *   npm run lint:slds            # all of force-app/**\/lwc
 *   node scripts/slds-lint.mjs 'force-app/**\/lwc/whatsappComposer/**'
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lint } from '@salesforce-ux/slds-linter/executor';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const directory = process.argv[2] || 'force-app/**/lwc/**';

/** The CSS and HTML files under every lwc folder of force-app (what the default run must cover). */
function lwcMarkupAndStyles() {
    const found = [];
    (function walk(dir, inLwc) {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(full, inLwc || entry.name === 'lwc');
            else if (inLwc && /\.(css|html)$/.test(entry.name) && !full.includes(`${path.sep}__tests__${path.sep}`)) {
                found.push(full);
            }
        }
    })(path.join(root, 'force-app'), false);
    return found;
}

/**
 * The Stylelint rules report `{"message": "...", "suggestions": [...]} (rule)`: keep the sentence, on
 * one line (the suggested hooks are numbered on lines of their own).
 */
function readable(message) {
    let text = String(message);
    const json = /^(\{[\s\S]*\})\s*\([\w/-]+\)\.?$/.exec(text.trim());
    if (json) {
        try {
            text = JSON.parse(json[1]).message ?? text;
        } catch {
            // Not JSON after all: print it as it came.
        }
    }
    return text.replace(/\s*\(slds\/[\w-]+\)\s*$/, '').replace(/\s*\n\s*/g, ' ');
}

const results = await lint({ directory, fix: false });
const findings = results.flatMap((result) =>
    [...result.errors.map((e) => ({ ...e, level: 'error' })), ...result.warnings.map((w) => ({ ...w, level: 'warning' }))].map(
        (entry) => ({ ...entry, file: path.relative(root, path.resolve(root, result.filePath)) })
    )
);

if (process.argv[2] === undefined) {
    // Every component's CSS and HTML was linted (the linter reports each file it read, findings or not).
    const linted = new Set(results.map((result) => path.resolve(root, result.filePath)));
    const missed = lwcMarkupAndStyles().filter((file) => !linted.has(file));
    if (missed.length > 0) {
        console.error(`slds-lint: the linter skipped ${missed.map((f) => path.relative(root, f)).join(', ')}`);
        process.exit(1);
    }
}
if (results.length === 0) {
    console.error(`slds-lint: the linter found no CSS or HTML file in ${directory}`);
    process.exit(1);
}

if (findings.length > 0) {
    console.error(`slds-lint: ${findings.length} finding(s) in ${directory}:`);
    for (const f of findings) {
        console.error(`  ${f.file}:${f.line}:${f.column} ${f.level} ${readable(f.message)} (${f.ruleId})`);
    }
    process.exit(1);
}
console.log(`slds-lint: ${results.length} file(s) in ${directory}, no finding`);
