#!/usr/bin/env bash
# End-to-end scrape test: two tinyprom replicas + a real Prometheus on free
# loopback ports, bounded load, assertions through the Prometheus HTTP API.
# The work is done by scripts/scrape_test.py (Python 3 standard library only),
# which starts and cleans up every process and temp directory itself; this
# wrapper forwards Ctrl-C/SIGTERM to it and waits for its cleanup.
#
# Usage: scripts/scrape-test.sh   (after `cargo build --release`; `make scrape-test` does both)
# Env:   TINYPROM_BIN (default target/release/tinyprom), PROMETHEUS_BIN, PROMTOOL_BIN
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in python3 prometheus promtool; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ $tool == python3 || -z ${PROMETHEUS_BIN:-} ]]; then
        echo "scrape-test: $tool not found; run 'make deps'" >&2
        exit 1
    fi
done

child=""
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tinyprom-scrape-test.XXXXXX")
cleanup() {
    trap - EXIT INT TERM HUP
    if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

SCRAPE_TEST_TMPDIR=$tmp python3 scripts/scrape_test.py "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
