#!/usr/bin/env bash
# make container-check: what can be checked of the container setup without a Docker
# engine, in a second. `make container-test` builds the image and runs it (and the
# compose service) on a real engine; `make static-test` runs the binary the image
# holds alone in an empty root as the image's user.
#
# Checks: docker-compose.yml parses and publishes the app on 8080 -> 8000, mounts the
# Prometheus config and rules it names (which exist), and waits for the app's health
# check; the Prometheus config it mounts passes `promtool check config` (rules
# included); the Dockerfile's final stage is FROM scratch with a non-root USER,
# EXPOSE 8000 and a HEALTHCHECK that runs the binary's own --health-check.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in python3 promtool; do
    command -v "$tool" >/dev/null || { echo "container-check: $tool is missing (make deps)" >&2; exit 1; }
done
# PyYAML parses the compose file. Until scripts/deps.sh installs it, fetch it here the
# way deps.sh fetches prometheus_client.
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "container-check: installing PyYAML with pip" >&2
    python3 -m pip install --quiet pyyaml || {
        echo "container-check: PyYAML is missing; run: python3 -m pip install pyyaml" >&2
        exit 1
    }
fi

python3 - <<'PY'
import os, re, sys
import yaml

failures = []
def check(what, ok):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

# ${VAR:-default} as compose resolves it when VAR is unset: what users get.
compose = yaml.safe_load(re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", open("docker-compose.yml").read()))
services = compose.get("services", {})
app, prom = services.get("web-app", {}), services.get("prometheus", {})
check("compose has services web-app and prometheus", bool(app) and bool(prom))
check("web-app is built from this Dockerfile", app.get("build") == ".")
check("web-app publishes 8080 -> 8000", "8080:8000" in app.get("ports", []))
check("web-app runs read-only with no capabilities",
      app.get("read_only") is True and app.get("cap_drop") == ["ALL"])
check("prometheus waits for the app to be healthy",
      prom.get("depends_on", {}).get("web-app", {}).get("condition") == "service_healthy")
mounts = {}
for volume in prom.get("volumes", []):
    source, target = volume.split(":")[:2]
    mounts[target] = source
config = mounts.get("/etc/prometheus/prometheus.yml")
check("prometheus mounts a config file that exists", bool(config) and os.path.isfile(config))
check("prometheus mounts rules/ beside its config",
      mounts.get("/etc/prometheus/rules") == "./rules" and os.path.isdir("rules"))
if config and os.path.isfile(config):
    scrape = yaml.safe_load(open(config))
    targets = [t for job in scrape.get("scrape_configs", [])
               for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    check("the config scrapes the app by its compose service name", "web-app:8000" in targets)

dockerfile = open("Dockerfile").read().replace("\\\n", " ")  # join continued lines
lines = [l.strip() for l in dockerfile.splitlines() if l.strip() and not l.startswith("#")]
text = "\n".join(lines)
final = text[text.rfind("\nFROM ") + 1:] if "\nFROM " in text else text
check("Dockerfile is multi-stage", len(re.findall(r"^FROM ", text, re.M)) >= 2)
check("final stage is FROM scratch", final.splitlines()[0].split()[1] == "scratch")
user = re.search(r"^USER (\S+)", final, re.M)
check("final stage runs as a non-root USER",
      bool(user) and user.group(1).split(":")[0] not in ("0", "root"))
check("final stage EXPOSEs 8000", re.search(r"^EXPOSE 8000\b", final, re.M) is not None)
check("HEALTHCHECK runs the binary's --health-check",
      re.search(r'^HEALTHCHECK .*CMD \["/tinyprom", "--health-check"\]', final, re.M) is not None)
sys.exit(1 if failures else 0)
PY

config=$(python3 -c 'import yaml; v=yaml.safe_load(open("docker-compose.yml"))["services"]["prometheus"]["volumes"]; print([x.split(":")[0] for x in v if ":/etc/prometheus/prometheus.yml" in x][0])')
promtool check config "$config"
echo "container-check: all checks passed (make container-test builds and runs the image)"
