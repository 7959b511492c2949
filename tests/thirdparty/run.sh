#!/usr/bin/env bash
# Third-party Salesforce clients (jsforce, the official CometD client) against sfwa's org simulator,
# unchanged. Needs cargo, Node 20+ and npm. Called by .ci/run; run it from anywhere:
#   bash tests/thirdparty/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

# The simulator is `sfwa sim` itself: its first stdout line is the connection JSON. (For the org
# alone: SIM_CMD=(target/debug/examples/org_sim) with BUILD_CMD=(cargo build --locked --examples).)
SIM_CMD=(target/debug/sfwa sim --salesforce-addr 127.0.0.1:0 --whatsapp-addr 127.0.0.1:0 --state-dir)
BUILD_CMD=(cargo build --locked --bin sfwa)

echo "== building the simulator"
"${BUILD_CMD[@]}"

state_dir="$(mktemp -d)"
sim_out="$state_dir/stdout"
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$state_dir"
}
trap cleanup EXIT

echo "== starting the simulator"
"${SIM_CMD[@]}" "$state_dir/state" >"$sim_out" 2>"$state_dir/stderr" &
sim_pid=$!
sim_json=""
for _ in $(seq 1 300); do # up to 30 s (RSA key generation on first start)
  sim_json="$(head -n 1 "$sim_out" 2>/dev/null || true)"
  if [[ "$sim_json" == *'"salesforce_url"'* && "$sim_json" == *'}' ]]; then break; fi
  sim_json=""
  if ! kill -0 "$sim_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$sim_json" ]; then
  echo "the simulator printed no connection line; its stderr:" >&2
  cat "$state_dir/stderr" >&2 || true
  exit 1
fi
echo "$sim_json" | sed -E 's/"(client_secret|access_token|app_secret)":"[^"]*"/"\1":"…"/g'

echo "== npm ci"
(cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)

echo "== jsforce and the CometD client against the org simulator"
status=0
(cd "$here" && SIM_JSON="$sim_json" timeout 120 node jsforce_check.mjs) || status=$?
if [ "$status" -ne 0 ]; then
  echo "== simulator stderr (last 50 lines)" >&2
  tail -n 50 "$state_dir/stderr" >&2 || true
fi
exit "$status"
