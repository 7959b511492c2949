#!/usr/bin/env bash
# CI for the Salesforce package. Needs Node >= 20.18.1 and npm 10 or 11 (no global installs) and only
# the npm registry. Exits non-zero on the first failure. No org is involved: Apex is parsed, not run.
#  1. install the pinned tools (package-lock.json);
#  2. test:scripts: the checkers below that are this package's own code pass their tests (node --test);
#  3. validate: `sf project convert source`, well-formed XML, custom fields named anywhere exist,
#     Custom Labels imported exist and defined ones are used, `c-*` children and `c/` imports exist,
#     LWC quick actions target lightning__RecordAction (scripts/validate.js, scripts/lwc-references.js);
#  4. lint: ESLint with @salesforce/eslint-config-lwc (recommended) over the LWC and their Jest tests,
#     zero findings; an inline disable only with its reason (`// eslint-disable-next-line rule -- why`)
#     and only where it suppresses something (eslint.config.js);
#  5. lint:slds: the SLDS linter (@salesforce-ux/slds-linter) over the LWC CSS and HTML, zero
#     findings, warnings included (scripts/slds-lint.mjs);
#  6. lint:colours: no hard-coded colour in LWC CSS or inline styles except as the fallback of an SLDS
#     styling hook, `var(--slds-…, #hex)` (scripts/css-colours.js; catches what the SLDS linter misses);
#  7. scan:flows: Lightning Flow Scanner, zero findings or an exception justified in flow-scanner.json;
#  8. check:apex: the Apex parses;
#  9. test:unit: the LWC Jest tests, with axe-core (@sa11y/jest `toBeAccessible`) where they check it.
#
#   salesforce/scripts/ci.sh                      # from anywhere
#   NPM_CONFIG_CACHE=/tmp/x salesforce/scripts/ci.sh   # choose the npm cache
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export SF_DISABLE_AUTOUPDATE=true SF_AUTOUPDATE_DISABLE=true SF_DISABLE_TELEMETRY=true
export CI=true
# Keep the update notifier and funding/audit chatter out of CI logs.
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

command -v node >/dev/null || { echo "salesforce ci: node is not installed (need >= 20.18.1)" >&2; exit 1; }
command -v npm >/dev/null || { echo "salesforce ci: npm is not installed" >&2; exit 1; }
# The CLI's HTTP stack (undici 7, pinned in package.json overrides) needs Node 20.18.1 or later.
if ! node -e '
  const [a, b, c] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1);
'; then
    echo "salesforce ci: Node $(node --version) is too old; need >= 20.18.1" >&2
    exit 1
fi
echo "salesforce ci: node $(node --version), npm $(npm --version)"

# --ignore-scripts: no dependency needs its install scripts, and npm 10 and 11 then behave alike.
# --engine-strict=false: the newest CLI declares Node >= 22 but runs on 20 with the undici override.
npm ci --ignore-scripts --engine-strict=false --no-audit --no-fund --loglevel=error

npm run --silent test:scripts
npm run --silent validate
npm run --silent lint
echo "eslint: LWC and their tests, no finding"
npm run --silent lint:slds
npm run --silent lint:colours
npm run --silent scan:flows
npm run --silent check:apex
npm run --silent test:unit
