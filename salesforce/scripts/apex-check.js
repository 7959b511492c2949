#!/usr/bin/env node
/*
 * Offline syntax check of the package's Apex (classes and triggers) with the pinned
 * @apexdevtools/apex-parser, the ANTLR grammar of the Apex language: a typo fails here rather
 * than at deploy. It checks syntax only; names and types are checked by the org when the class
 * compiles (see README: run WhatsAppPublishOutboundTest in a sandbox or scratch org).
 *
 *   node scripts/apex-check.js        # or: npm run --silent check:apex
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { ApexParserFactory, ApexErrorListener } = require('@apexdevtools/apex-parser');

const root = path.resolve(__dirname, '..');
const sourceDir = path.join(root, 'force-app', 'main', 'default');

class Collect extends ApexErrorListener {
    constructor(file, problems) {
        super();
        this.file = file;
        this.problems = problems;
    }
    apexSyntaxError(line, column, message) {
        this.problems.push(`${this.file}:${line}:${column}: ${message}`);
    }
}

const files = [];
for (const [dir, suffix] of [
    ['classes', '.cls'],
    ['triggers', '.trigger']
]) {
    const full = path.join(sourceDir, dir);
    if (!fs.existsSync(full)) continue;
    for (const name of fs.readdirSync(full)) {
        if (name.endsWith(suffix)) files.push(path.join(full, name));
    }
}
const problems = [];
for (const file of files) {
    const relative = path.relative(root, file);
    const source = fs.readFileSync(file, 'utf8');
    if (!fs.existsSync(`${file}-meta.xml`)) problems.push(`${relative}: no ${path.basename(file)}-meta.xml beside it`);
    const { parser } = ApexParserFactory.createLexerAndParser(source, new Collect(relative, problems));
    if (file.endsWith('.trigger')) parser.triggerUnit();
    else parser.compilationUnit();
}
if (files.length === 0) problems.push('no Apex found');
if (problems.length > 0) {
    console.error(`apex-check: ${problems.length} problem(s):`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
}
console.log(`apex-check: ${files.length} Apex files parse`);
