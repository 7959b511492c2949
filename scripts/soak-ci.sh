#!/usr/bin/env bash
# CI's short soak (issue 10): the daemon killed and restarted under traffic, reconcile off, judged by
# the simulators' own records. Exits non-zero on any duplicate, lost record, missing write-back,
# window violation or wrong failure. Called from .ci/run; the long runs are in README.md.
#   SOAK_RECORDS (300), SOAK_KILLS (5), SOAK_SEED (7) override the defaults.
# The dev profile: CI builds it for the tests anyway (a cold release build took ~25 minutes on a loaded
# 2 cores), and 20 records a second are far below what a debug daemon handles.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --bin sfwa --example soak
exec target/debug/examples/soak kill-loop \
    --records "${SOAK_RECORDS:-300}" --kills "${SOAK_KILLS:-5}" --seed "${SOAK_SEED:-7}" \
    --reconcile off --rate 20 --settle 75
