#!/usr/bin/env bash
# Validate the Prometheus config, the rule files and run the rule unit tests.
# Usage: scripts/check-rules.sh   (from anywhere; runs from the repo root)
#
# Rule files are rules/*.rules.yml; promtool unit tests are rules/*.test.yml
# (a test file is not a rule file, so it must not be passed to `check rules`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "check-rules: promtool not found; run 'make deps' (Debian/Ubuntu: apt-get install prometheus)" >&2
    exit 1
fi

set -x
promtool check config prometheus.yml
promtool check rules rules/*.rules.yml
promtool test rules rules/*.test.yml
