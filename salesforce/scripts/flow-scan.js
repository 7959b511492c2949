#!/usr/bin/env node
/*
 * Lightning Flow Scanner over every Flow in force-app, offline, with the pinned
 * @flow-scanner/lightning-flow-scanner-core (no sf plugin, no network).
 *
 * Every rule runs, the beta ones too (betaMode: e.g. a description on every element), and any
 * finding of any severity fails the run. The only way to accept a finding is an exception in
 * flow-scanner.json beside package.json: `exceptions.<Flow API name>.<Rule name>` lists the
 * element names (or "*") to let through, and `justifications` under the same keys must say why
 * in words; an exception without a justification is itself a failure.
 *
 *   node scripts/flow-scan.js        # or: npm run --silent scan:flows
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parse, scan } = require('@flow-scanner/lightning-flow-scanner-core');

const root = path.resolve(__dirname, '..');
const flowsDir = path.join(root, 'force-app', 'main', 'default', 'flows');
const configFile = path.join(root, 'flow-scanner.json');

function loadConfig() {
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    const exceptions = config.exceptions || {};
    const justifications = config.justifications || {};
    const unjustified = [];
    for (const [flow, rules] of Object.entries(exceptions)) {
        for (const rule of Object.keys(rules)) {
            const why = justifications[flow] && justifications[flow][rule];
            if (typeof why !== 'string' || why.trim().length < 20) {
                unjustified.push(`${flow} / ${rule}: exception without a justification in flow-scanner.json`);
            }
        }
    }
    return { exceptions, unjustified };
}

async function main() {
    const { exceptions, unjustified } = loadConfig();
    const files = fs
        .readdirSync(flowsDir)
        .filter((name) => name.endsWith('.flow-meta.xml'))
        .map((name) => path.join(flowsDir, name));
    if (files.length === 0) {
        console.error('flow-scan: no flows found');
        process.exit(1);
    }
    const parsed = await parse(files);
    const problems = [...unjustified];
    for (const flow of parsed) {
        if (flow.errorMessage) problems.push(`${path.basename(flow.uri)}: cannot be parsed: ${flow.errorMessage}`);
    }
    const results = scan(parsed, { betaMode: true, exceptions });
    for (const result of results) {
        for (const rule of result.ruleResults) {
            if (rule.errorMessage) problems.push(`${result.flow.name} / ${rule.ruleName}: rule failed to run: ${rule.errorMessage}`);
            if (!rule.occurs) continue;
            for (const detail of rule.details) {
                problems.push(`${result.flow.name} / ${rule.ruleName} (${rule.severity}): ${detail.name} [${detail.type}]`);
            }
        }
    }
    if (problems.length > 0) {
        console.error(`flow-scan: ${problems.length} finding(s):`);
        for (const problem of problems) console.error(`  - ${problem}`);
        process.exit(1);
    }
    const rules = results.length > 0 ? results[0].ruleResults.length : 0;
    console.log(`flow-scan: ${results.length} flows, ${rules} rules, no findings`);
}

main().catch((error) => {
    console.error(`flow-scan: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
});
