#!/usr/bin/env bash
# Validate the Prometheus config, the rule files and run the rule unit tests;
# validate the Alertmanager config and the routes of the rules' severities.
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
if ! command -v amtool >/dev/null 2>&1; then
    echo "check-rules: amtool not found; run 'make deps' (Debian/Ubuntu: apt-get install prometheus-alertmanager)" >&2
    exit 1
fi

set -x
promtool check config prometheus.yml
promtool check rules rules/*.rules.yml
promtool test rules rules/*.test.yml
amtool check-config alertmanager.yml
# Each severity the rules use reaches its receiver (exit 1 on a mismatch).
amtool config routes test --config.file=alertmanager.yml --verify.receivers=page \
    alertname=TargetDown job=web-app severity=page
amtool config routes test --config.file=alertmanager.yml --verify.receivers=page \
    alertname=TinypromErrorBudgetBurn job=web-app slo=availability-98-30d severity=page
amtool config routes test --config.file=alertmanager.yml --verify.receivers=ticket \
    alertname=TinypromErrorBudgetBurn job=web-app slo=availability-98-30d severity=ticket
# Every alert carries a severity alertmanager.yml routes (page or ticket), and every
# burn-rate alert the `slo` its inhibition and grouping use.
python3 - <<'PY'
import sys, yaml
bad = []
for group in yaml.safe_load(open("rules/tinyprom.rules.yml"))["groups"]:
    for rule in group["rules"]:
        if "alert" not in rule:
            continue
        labels = rule.get("labels", {})
        if labels.get("severity") not in ("page", "ticket"):
            bad.append(f"{rule['alert']}: severity {labels.get('severity')!r} is neither page nor ticket")
        if "burn" in rule["alert"].lower() and not labels.get("slo"):
            bad.append(f"{rule['alert']}: a burn-rate alert without an slo label")
print("\n".join(bad) or "alert labels: every alert has severity page or ticket; burn-rate alerts have slo")
sys.exit(1 if bad else 0)
PY
# The compose Alertmanager reads this file and the compose Prometheus sends to it.
python3 - <<'PY'
import sys, yaml
services = yaml.safe_load(open("docker-compose.yml"))["services"]
am = services.get("alertmanager", {})
config = next((a.split("=", 1)[1] for a in am.get("command", []) if a.startswith("--config.file=")), None)
mounted = {v.split(":")[1]: v.split(":")[0] for v in am.get("volumes", [])}
targets = [t for a in yaml.safe_load(open("prometheus.compose.yml")).get("alerting", {}).get("alertmanagers", [])
           for sc in a.get("static_configs", []) for t in sc.get("targets", [])]
ok = mounted.get(config) == "./alertmanager.yml" and targets == ["alertmanager:9093"]
print(f"compose: alertmanager reads {mounted.get(config)} as {config}; prometheus.compose.yml alerts {targets}")
sys.exit(0 if ok else 1)
PY
