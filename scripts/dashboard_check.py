#!/usr/bin/env python3
"""Prove the Grafana dashboard on a live Prometheus, without Grafana.

Grafana itself is not run (it is not packaged for the machines the tests run on), so
this checks what can be checked of dashboards/tinyprom.json:

Static, against the files:
  * every datasource a panel, target or variable names has a uid (and type) that
    grafana/provisioning/datasources/ provisions, and there is no import-time
    placeholder (`${DS_...}`, `__inputs`);
  * every variable an expression, legend or title uses (`$x`, `${x}`, `[[x]]`) is a
    dashboard variable or one of Grafana's built-ins, and every dashboard variable is
    used;
  * panel ids are unique, every panel has a query, and docker-compose.yml mounts
    dashboards/ where the provisioned dashboards provider looks for it;
  * every latency panel's targets (histogram_quantile over
    http_request_duration_seconds) ask Grafana for exemplars (`"exemplar": true`).

Live, against a Prometheus:
  * the dashboard variables are resolved the way Grafana resolves them
    (`label_values(...)` through the labels API; "All" as the variable's allValue),
  * `$__interval`, `$__rate_interval` and `$__range` are substituted as Grafana does
    for the dashboard's default time range: interval = range / MAX_DATA_POINTS, at
    least the job's scrape interval (the datasource's timeInterval); rate interval =
    max(interval + scrape interval, 4 x scrape interval);
  * every target runs as Grafana runs it (a range query over the dashboard's time
    range with the interval as step, or an instant query) and must return at least
    one series with at least one finite value.

With exemplars=True (a Prometheus started with --enable-feature=exemplar-storage),
every target with `"exemplar": true` also runs as Grafana's exemplar query
(/api/v1/query_exemplars over the same range) and must return at least one exemplar
with a trace_id; otherwise those queries are not run.

Panels marked `"x-tinyprom-needs": "native-histograms"` query native histograms,
which only a Prometheus started with --enable-feature=native-histograms holds: they
are run against `native_prom_url`; when it is None they are only parsed (run on
prom_url, where they find nothing) and reported as unchecked.

Usage:
    python3 scripts/dashboard_check.py --prom http://127.0.0.1:9090 [--native-prom URL]
or, from Python: check_dashboard(prom_url, native_prom_url=None) -> Report.
Needs PyYAML (installed by `make deps`) for the provisioning files.
"""

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "dashboards" / "tinyprom.json"
DATASOURCES_DIR = REPO / "grafana" / "provisioning" / "datasources"
PROVIDERS_DIR = REPO / "grafana" / "provisioning" / "dashboards"
COMPOSE = REPO / "docker-compose.yml"

# Grafana's default maxDataPoints is the panel's width in pixels; a typical panel.
MAX_DATA_POINTS = 1000
NATIVE_MARK = ("x-tinyprom-needs", "native-histograms")
BUILTIN_VARIABLES = {
    "__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms", "__range",
    "__range_s", "__range_ms", "__from", "__to", "__all",
}
VARIABLE_REF = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*?)\s*,\s*)?(\w+)\s*\)\s*$", re.S)
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
# A latency panel's query: a quantile of the request duration histogram.
LATENCY_QUERY = re.compile(r"histogram_quantile\(.*http_request_duration_seconds", re.S)
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class TargetResult:
    """The outcome of one panel target: ok, empty, error or unchecked."""

    panel: str
    ref_id: str
    status: str
    detail: str
    expr: str = ""


@dataclass
class Report:
    """Everything check_dashboard found; `failures` is empty when the dashboard holds."""

    static_problems: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    # Exemplar queries of the targets that ask for them (exemplars=True only).
    exemplars: list = field(default_factory=list)

    @property
    def failures(self):
        return self.static_problems + [f"{t.panel} [{t.ref_id}]: {t.status}: {t.detail}\n      {t.expr}"
                                       for t in self.targets + self.exemplars if t.status in ("empty", "error")]

    def count(self, status):
        return sum(1 for t in self.targets if t.status == status)

    def lines(self):
        out = [f"static: {'ok' if not self.static_problems else 'FAIL'}"]
        out += [f"static FAIL {p}" for p in self.static_problems]
        out += [f"{t.status:9} {t.panel} [{t.ref_id}]: {t.detail}" for t in self.targets]
        out += [f"{t.status:9} {t.panel} [{t.ref_id}] exemplars: {t.detail}" for t in self.exemplars]
        return out

    def summary(self):
        text = (f"{self.count('ok')} queries returned data, {self.count('unchecked')} unchecked (native), "
                f"{self.count('empty') + self.count('error')} failed, {len(self.static_problems)} static problems")
        if self.exemplars:
            ok = sum(1 for t in self.exemplars if t.status == "ok")
            text += f"; {ok} of {len(self.exemplars)} exemplar queries returned trace ids"
        return text


def parse_duration(text):
    m = DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * UNITS[m.group(2)]


def fmt_seconds(seconds):
    return f"{int(math.ceil(seconds))}s"


# --------------------------------------------------------------------------
# static checks


def _walk(node, path="$"):
    """Every (path, dict) in a JSON tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def provisioned_datasources():
    import yaml

    uids = {}
    for f in sorted(DATASOURCES_DIR.glob("*.y*ml")):
        for ds in (yaml.safe_load(f.read_text()) or {}).get("datasources", []):
            uids[ds.get("uid")] = ds.get("type")
    return uids


def all_panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def static_problems(dashboard):
    """What is wrong with the dashboard and its provisioning without asking Prometheus."""
    import yaml

    problems = []
    uids = provisioned_datasources()
    if not uids:
        problems.append(f"no datasource provisioned in {DATASOURCES_DIR.relative_to(REPO)}")
    if "__inputs" in dashboard:
        problems.append("dashboard has __inputs: it needs an import step, provisioning cannot fill it")
    for path, node in _walk(dashboard):
        ds = node.get("datasource")
        if isinstance(ds, dict):
            if ds.get("uid") not in uids:
                problems.append(f"{path}: datasource uid {ds.get('uid')!r} is not provisioned ({sorted(uids)})")
            elif ds.get("type") != uids[ds["uid"]]:
                problems.append(f"{path}: datasource type {ds.get('type')!r}, provisioned as {uids[ds['uid']]!r}")
        elif ds is not None:
            problems.append(f"{path}: datasource {ds!r} is not a {{type, uid}} reference to a provisioned one")
    if "${DS_" in json.dumps(dashboard):
        problems.append("dashboard has a ${DS_...} import placeholder")

    defined = [v["name"] for v in dashboard.get("templating", {}).get("list", [])]
    used = set()
    texts = [(f"variable {v['name']}", json.dumps(v.get("query", ""))) for v in dashboard.get("templating", {}).get("list", [])]
    ids = []
    for p in all_panels(dashboard):
        ids.append(p.get("id"))
        texts.append((f"panel {p.get('title')!r} title", p.get("title", "")))
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            problems.append(f"panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            if not t.get("expr"):
                problems.append(f"panel {p.get('title')!r} [{t.get('refId')}] has no expr")
            texts.append((f"panel {p.get('title')!r} [{t.get('refId')}]", t.get("expr", "") + " " + t.get("legendFormat", "")))
    for where, text in texts:
        for m in VARIABLE_REF.finditer(text):
            name = next(g for g in m.groups() if g)
            used.add(name)
            if name not in defined and name not in BUILTIN_VARIABLES:
                problems.append(f"{where}: ${name} is neither a dashboard variable nor a Grafana built-in")
    problems += [f"variable ${v} is defined but never used" for v in defined if v not in used]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dup or None in ids:
        problems.append(f"panel ids must be unique and present: duplicates {dup}")
    for p in all_panels(dashboard):
        for t in p.get("targets", []):
            if LATENCY_QUERY.search(t.get("expr", "")) and t.get("exemplar") is not True:
                problems.append(f"latency panel {p.get('title')!r} [{t.get('refId')}] does not show exemplars "
                                '("exemplar": true)')

    providers = [p for f in sorted(PROVIDERS_DIR.glob("*.y*ml")) for p in (yaml.safe_load(f.read_text()) or {}).get("providers", [])]
    compose_mounts = {}
    for service in (yaml.safe_load(COMPOSE.read_text()) or {}).get("services", {}).values():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            compose_mounts[target] = source
    for provider in providers:
        path = provider.get("options", {}).get("path")
        if compose_mounts.get(path) != "./dashboards":
            problems.append(f"dashboards provider path {path!r} is not where docker-compose.yml mounts ./dashboards")
    if not providers:
        problems.append(f"no dashboards provider in {PROVIDERS_DIR.relative_to(REPO)}")
    if compose_mounts.get("/etc/grafana/provisioning") != "./grafana/provisioning":
        problems.append("docker-compose.yml does not mount ./grafana/provisioning at /etc/grafana/provisioning")
    return problems


# --------------------------------------------------------------------------
# live checks

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PromAPI:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, params):
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with _opener.open(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            raise RuntimeError(body.get("error") or f"{path} failed: {body}")
        return body["data"]

    def scrape_interval(self, job):
        """The scrape interval of the job's targets: what Grafana's timeInterval should be."""
        intervals = {parse_duration(t["scrapeInterval"]) for t in self.get("targets", {"state": "active"})["activeTargets"]
                     if t["labels"].get("job") == job and t.get("scrapeInterval")}
        if not intervals:
            raise RuntimeError(f"Prometheus has no active target of job {job!r}")
        return max(intervals)


def substitute(text, values):
    def repl(m):
        name = next(g for g in m.groups() if g)
        return values.get(name, m.group(0))
    return VARIABLE_REF.sub(repl, text)


def resolve_variables(prom, dashboard):
    """Dashboard variable -> the value Grafana would put in a query, in definition order."""
    values = {}
    for v in dashboard.get("templating", {}).get("list", []):
        query = v.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        m = LABEL_VALUES.match(substitute(query or "", values))
        if v.get("type") != "query" or not m:
            raise RuntimeError(f"variable ${v['name']}: only label_values(...) query variables are understood")
        params = {"match[]": m.group(1)} if m.group(1) else {}
        options = sorted(prom.get(f"label/{m.group(2)}/values", params))
        if not options:
            raise RuntimeError(f"variable ${v['name']}: {query} has no values on {prom.url}")
        current = v.get("current", {}).get("value")
        if current == "$__all" or current == ["$__all"]:
            values[v["name"]] = v.get("allValue") or "(" + "|".join(re.escape(o) for o in options) + ")"
        else:
            values[v["name"]] = current if current in options else options[0]
    return values


def has_finite_value(result, instant):
    samples = [r["value"] for r in result] if instant else [s for r in result for s in r["values"]]
    return sum(1 for _, v in samples if math.isfinite(float(v))), len(samples)


def run_targets(prom, dashboard, panels, report, exemplars=False):
    values = resolve_variables(prom, dashboard)
    job = values.get("job", "web-app")
    scrape = prom.scrape_interval(job)
    range_s = parse_duration(dashboard["time"]["from"].removeprefix("now-"))
    interval = max(scrape, math.ceil(range_s / MAX_DATA_POINTS))
    rate_interval = max(interval + scrape, 4 * scrape)
    values.update({
        "__interval": fmt_seconds(interval), "__interval_ms": str(interval * 1000),
        "__rate_interval": fmt_seconds(rate_interval), "__rate_interval_ms": str(rate_interval * 1000),
        "__range": fmt_seconds(range_s), "__range_s": str(range_s), "__range_ms": str(range_s * 1000),
    })
    end = time.time()
    for p in panels:
        for t in p.get("targets", []):
            expr = substitute(t.get("expr", ""), values)
            instant = bool(t.get("instant")) and not t.get("range")
            try:
                if instant:
                    data = prom.get("query", {"query": expr, "time": f"{end:.3f}"})
                else:
                    data = prom.get("query_range", {"query": expr, "start": f"{end - range_s:.3f}",
                                                    "end": f"{end:.3f}", "step": str(interval)})
            except (RuntimeError, OSError, ValueError) as e:
                report.targets.append(TargetResult(p["title"], t.get("refId"), "error", str(e), expr))
                continue
            finite, total = has_finite_value(data["result"], instant)
            status = "ok" if finite else "empty"
            detail = (f"{len(data['result'])} series, {finite} finite of {total} samples "
                      f"({'instant' if instant else f'step {interval}s'}, rate interval {rate_interval}s)")
            report.targets.append(TargetResult(p["title"], t.get("refId"), status, detail, expr))
            if exemplars and t.get("exemplar") is True:
                report.exemplars.append(run_exemplar_query(prom, p, t, expr, end - range_s, end))


def run_exemplar_query(prom, panel, target, expr, start, end):
    """The exemplar query Grafana makes for a target: exemplars of the series its
    selectors match, over the dashboard's range; ok when one carries a trace_id."""
    try:
        data = prom.get("query_exemplars", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    except (RuntimeError, OSError, ValueError) as e:
        return TargetResult(panel["title"], target.get("refId"), "error", str(e), expr)
    found = [e for series in data for e in series.get("exemplars", [])]
    traced = [e for e in found if e.get("labels", {}).get("trace_id")]
    status = "ok" if traced else "empty"
    detail = f"{len(data)} series, {len(found)} exemplars, {len(traced)} with a trace_id"
    return TargetResult(panel["title"], target.get("refId"), status, detail, expr)


def check_dashboard(prom_url, native_prom_url=None, dashboard_path=DASHBOARD, exemplars=False):
    """Check the dashboard's files, then run every panel query on the live Prometheus
    at prom_url (native-histogram panels on native_prom_url; unchecked without it),
    and with exemplars=True the exemplar queries too (both must store exemplars)."""
    dashboard = json.loads(Path(dashboard_path).read_text())
    report = Report(static_problems=static_problems(dashboard))
    panels = [p for p in all_panels(dashboard) if p.get("type") != "row"]
    native = [p for p in panels if p.get(NATIVE_MARK[0]) == NATIVE_MARK[1]]
    classic = [p for p in panels if p not in native]
    run_targets(PromAPI(prom_url), dashboard, classic, report, exemplars)
    if native_prom_url:
        run_targets(PromAPI(native_prom_url), dashboard, native, report, exemplars)
    else:
        # Still parsed and run where it cannot return data, so a typo fails here too.
        unchecked = Report()
        run_targets(PromAPI(prom_url), dashboard, native, unchecked)
        for t in unchecked.targets:
            if t.status != "error":
                t.status, t.detail = "unchecked", "needs a Prometheus with native histograms (none given); parses"
        report.targets += unchecked.targets
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prom", required=True, help="base URL of a Prometheus that scrapes tinyprom")
    ap.add_argument("--native-prom", help="base URL of one started with --enable-feature=native-histograms")
    ap.add_argument("--dashboard", default=str(DASHBOARD))
    ap.add_argument("--exemplars", action="store_true",
                    help="also run the exemplar queries (Prometheus with --enable-feature=exemplar-storage)")
    args = ap.parse_args()
    report = check_dashboard(args.prom, args.native_prom, args.dashboard, args.exemplars)
    print("\n".join(report.lines()))
    print(f"dashboard-check: {report.summary()}")
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
