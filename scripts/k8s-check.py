#!/usr/bin/env python3
"""make k8s-check: the manifests in deploy/kubernetes/, checked offline.

* Deployment and Service against the Kubernetes API schemas that the PyPI package
  kubernetes-validate ships (strict: an unknown field fails), and a copy with a
  misspelt field must fail, so the validator is known to be looking.
* PodMonitor and PrometheusRule are Prometheus Operator custom resources, whose
  schemas kubernetes-validate does not have: checked structurally here against the
  fields of monitoring.coreos.com/v1 they use, and against the Deployment (the
  selector matches its pods, the port is one of its named ports).
* The PrometheusRule equals what scripts/gen-prometheusrule.py makes of
  rules/tinyprom.rules.yml, and its spec passes `promtool check rules`.
* The Deployment keeps the promises the README makes: probes on /up, memory limit
  at most 64Mi, non-root 65534, read-only root, no privilege escalation, every
  capability dropped, RuntimeDefault seccomp, and a termination grace period that
  covers the preStop sleep plus --web.shutdown-timeout.
"""

import copy
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

try:
    import kubernetes_validate
except ImportError:
    sys.exit("k8s-check: the Python package kubernetes-validate is missing (make deps)")

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "deploy" / "kubernetes"
K8S_VERSION = kubernetes_validate.latest_version()
MEMORY_LIMIT_MAX = 64 * 1024 * 1024

failures = []


def check(what, ok):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def load(name):
    docs = [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]
    check(f"{name} holds one object", len(docs) == 1)
    return docs[0]


def schema_valid(obj):
    """None when obj passes strict schema validation, else the error."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        return None
    except kubernetes_validate.ValidationError as err:
        return err.message


def quantity_bytes(text):
    """A Kubernetes memory quantity (e.g. 32Mi, 64M, 1048576) in bytes."""
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(text))
    if not match:
        raise ValueError(f"unsupported memory quantity {text!r}")
    scale = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(match.group(1)) * scale[match.group(2)]


def seconds(duration):
    """A Go-style duration as tinyprom's flags take it (500ms, 5s, 1m) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r}")
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def check_schemas(deployment, service):
    for obj in (deployment, service):
        error = schema_valid(obj)
        check(f"{obj['kind']} passes the Kubernetes {K8S_VERSION} schema (strict)"
              + (f": {error}" if error else ""), error is None)
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    check("a Deployment with a misspelt field fails the schema", schema_valid(broken) is not None)


def check_deployment(deployment):
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security, pod_security = container.get("securityContext", {}), pod.get("securityContext", {})
    for probe in ("livenessProbe", "readinessProbe"):
        get = container.get(probe, {}).get("httpGet", {})
        check(f"{probe} is an HTTP GET of /up on the http port",
              get.get("path") == "/up" and get.get("port") == "http")
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    check(f"memory limit {limits['memory']} is at most 64Mi",
          quantity_bytes(limits["memory"]) <= MEMORY_LIMIT_MAX)
    check("memory and cpu are requested and limited",
          {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits))
    check("runs as non-root uid/gid 65534",
          pod_security.get("runAsNonRoot") is True and pod_security.get("runAsUser") == 65534
          and pod_security.get("runAsGroup") == 65534)
    check("seccomp profile RuntimeDefault",
          pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    check("read-only root file system", security.get("readOnlyRootFilesystem") is True)
    check("no privilege escalation", security.get("allowPrivilegeEscalation") is False)
    check("every capability dropped", security.get("capabilities", {}).get("drop") == ["ALL"])
    args = dict(a.split("=", 1) for a in container.get("args", []) if "=" in a)
    shutdown = seconds(args.get("--web.shutdown-timeout", "5s"))
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(f"grace period {grace}s covers preStop {pre_stop}s + shutdown timeout {shutdown:g}s",
          grace > pre_stop + shutdown)
    return {p["name"] for p in container.get("ports", [])}


def check_service(service, pod_labels):
    selector = service["spec"]["selector"]
    check("Service selects the Deployment's pods", selector.items() <= pod_labels.items())
    check("Service targets the named port http",
          [p.get("targetPort") for p in service["spec"]["ports"]] == ["http"])


def check_pod_monitor(monitor, pod_labels, port_names):
    check("PodMonitor is monitoring.coreos.com/v1",
          monitor.get("apiVersion") == "monitoring.coreos.com/v1" and monitor.get("kind") == "PodMonitor")
    check("PodMonitor has a name", bool(monitor.get("metadata", {}).get("name")))
    spec = monitor.get("spec", {})
    check("PodMonitor has only fields of its schema used here",
          set(spec) <= {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel"})
    check("PodMonitor selects the Deployment's pods",
          spec.get("selector", {}).get("matchLabels", {}).items() <= pod_labels.items())
    endpoints = spec.get("podMetricsEndpoints", [])
    check("PodMonitor scrapes /metrics on a named port of the pods",
          bool(endpoints) and all(e.get("port") in port_names and e.get("path") == "/metrics"
                                  for e in endpoints))
    durations = [e[k] for e in endpoints for k in ("interval", "scrapeTimeout") if k in e]
    check("PodMonitor intervals are Prometheus durations",
          all(re.fullmatch(r"\d+(ms|s|m|h)", d) for d in durations))


def check_prometheus_rule(rule):
    check("PrometheusRule is monitoring.coreos.com/v1",
          rule.get("apiVersion") == "monitoring.coreos.com/v1" and rule.get("kind") == "PrometheusRule")
    check("PrometheusRule has a name and nothing but spec.groups",
          bool(rule.get("metadata", {}).get("name")) and list(rule.get("spec", {})) == ["groups"])
    generated = subprocess.run([sys.executable, str(REPO / "scripts" / "gen-prometheusrule.py"), "--check"],
                               capture_output=True, text=True)
    sys.stderr.write(generated.stderr)
    check("prometheusrule.yaml is what gen-prometheusrule.py makes of rules/tinyprom.rules.yml",
          generated.returncode == 0)
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yml") as spec:
        yaml.safe_dump(rule["spec"], spec)
        spec.flush()
        promtool = subprocess.run(["promtool", "check", "rules", spec.name], capture_output=True, text=True)
    print(promtool.stdout.strip().replace(spec.name, "PrometheusRule spec"))
    sys.stderr.write(promtool.stderr)
    check("promtool check rules accepts the PrometheusRule's groups", promtool.returncode == 0)


def main():
    deployment, service = load("deployment.yaml"), load("service.yaml")
    monitor, rule = load("podmonitor.yaml"), load("prometheusrule.yaml")
    check_schemas(deployment, service)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = check_deployment(deployment)
    check_service(service, pod_labels)
    check_pod_monitor(monitor, pod_labels, port_names)
    check_prometheus_rule(rule)
    if failures:
        print(f"k8s-check: {len(failures)} check(s) failed")
        return 1
    print("k8s-check: all checks passed (PodMonitor/PrometheusRule structurally: no CRD schemas offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
