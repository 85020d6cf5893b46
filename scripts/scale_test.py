#!/usr/bin/env python3
"""make scale-test: the scale-out path, run. Four replicas, Prometheus, VictoriaMetrics.

Users outgrow one Prometheus long before they outgrow tinyprom; the usual next step
keeps Prometheus scraping and remote-writes everything to a long-term store. Here:

  * four tinyprom replicas on free loopback ports, listed in a file_sd targets file
    (how users add replicas without touching the config);
  * Prometheus (temporary TSDB, loopback) scrapes them through file_sd_configs and
    remote-writes every sample to VictoriaMetrics, stamped collector="prometheus"
    (an external label);
  * VictoriaMetrics (temporary storage, loopback) also scrapes the same replicas
    itself, from the same targets file.

After a bounded wrk load on /synthetic stops, both have ingested the final values,
and at one evaluation timestamp the test checks that Prometheus, the copy it wrote to
VictoriaMetrics and VictoriaMetrics' own scrape agree within 1% on the /synthetic
request total (also equal to the replicas' own counters), the availability SLI and
the p99; that neither has a scrape, parse or remote-write error; and that a replica
removed from the targets file leaves `up` on both, with nothing restarted.

Standard library only; reuses the process harness of scripts/scrape_test.py.
Env: TINYPROM_BIN (default target/release/tinyprom), PROMETHEUS_BIN, VICTORIA_METRICS_BIN.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scrape_test import (  # noqa: E402  (the harness lives beside this script)
    HOST,
    Prom,
    TestFailure,
    check,
    free_ports,
    http_get,
    run_main,
    tinyprom_binary,
    wait_until,
)

REPO = Path(__file__).resolve().parent.parent
REPLICAS = 4
LOAD_SECONDS = 4
WRK_CONNECTIONS = 4  # per replica; /synthetic sleeps 1-50 ms, so about 40 req/s each
TOLERANCE = 0.01  # relative agreement required between the stores
TOTAL_BUDGET_SECONDS = 150
JOB = "tinyprom"

TOTAL = f'sum(http_request_duration_seconds_count{{job="{JOB}",url="/synthetic"{{sel}}}})'
GOOD = f'sum(http_request_duration_seconds_count{{job="{JOB}",url="/synthetic",code!~"5.."{{sel}}}})'
# Over the whole test (the counters' final values), so both stores answer from the
# same samples rather than from rate windows placed on different scrape timestamps.
P99 = f'histogram_quantile(0.99, sum by (le) (http_request_duration_seconds_bucket{{job="{JOB}",url="/synthetic"{{sel}}}}))'


def log(msg):
    print(f"scale-test: {msg}", flush=True)


def expr(template, selector):
    """Fill the extra label matcher (e.g. ',collector="prometheus"') into a query."""
    return template.replace("{sel}", selector)


def write_targets(path, addrs):
    """Replace the file_sd targets file atomically (readers never see half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": addrs, "labels": {}}], indent=2) + "\n")
    tmp.replace(path)


def replica_counters(addrs):
    """The /synthetic totals the replicas themselves report (all codes, non-5xx)."""
    total = good = 0
    pattern = re.compile(r'^http_request_duration_seconds_count\{([^}]*)\} (\S+)$', re.M)
    for addr in addrs:
        _, text = http_get(f"http://{addr}/metrics")
        for labels, value in pattern.findall(text):
            if 'url="/synthetic"' in labels:
                total += float(value)
                if not re.search(r'code="5\d\d"', labels):
                    good += float(value)
    return total, good


def metric_sum(text, name, label_filter=""):
    """Sum of the samples of one metric in an exposition text, 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label_filter in line:
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


def relative_gap(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def spawn_wrk(h, addrs):
    wrk = shutil.which("wrk")
    check(wrk, "wrk not found; run `make deps`")
    return [h.spawn(f"wrk-{i + 1}", [wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{LOAD_SECONDS}s",
                                     "--timeout", "5s", f"http://{addr}/synthetic"])
            for i, addr in enumerate(addrs)]


def main(h):
    t_begin = time.monotonic()
    tinyprom = tinyprom_binary()
    prometheus = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    vmetrics = os.environ.get("VICTORIA_METRICS_BIN") or shutil.which("victoria-metrics")
    check(prometheus, "prometheus not found; run `make deps` (Debian package: prometheus)")
    check(vmetrics, "victoria-metrics not found; run `make deps` (Debian package: victoria-metrics)")
    h.tmp = tempfile.mkdtemp(prefix="tinyprom-scale-test.")
    tmp = Path(h.tmp)
    prom_port, vm_port, *app_ports = free_ports(2 + REPLICAS)
    prom_addr, vm_addr = f"{HOST}:{prom_port}", f"{HOST}:{vm_port}"
    app_addrs = [f"{HOST}:{p}" for p in app_ports]

    replicas = [(f"tinyprom-{i + 1}", h.spawn(f"tinyprom-{i + 1}", [str(tinyprom), "--web.listen-address", a]))
                for i, a in enumerate(app_addrs)]
    targets = tmp / "targets.json"
    write_targets(targets, app_addrs)
    scrape_job = f"""\
  - job_name: {JOB}
    scrape_interval: 1s
    scrape_timeout: 1s
    file_sd_configs:
      - files: ["{targets}"]
"""
    (tmp / "prometheus.yml").write_text(f"""\
global:
  external_labels:
    collector: prometheus
scrape_configs:
{scrape_job}remote_write:
  - url: http://{vm_addr}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
""")
    (tmp / "vmscrape.yml").write_text(f"scrape_configs:\n{scrape_job}")
    vm = h.spawn("victoria-metrics", [
        vmetrics, f"-httpListenAddr={vm_addr}", f"-storageDataPath={tmp / 'vm-data'}",
        f"-promscrape.config={tmp / 'vmscrape.yml'}", "-promscrape.fileSDCheckInterval=1s",
        # Data is visible to queries 1 s after ingestion, not the default 30 s.
        "-search.latencyOffset=1s", "-search.disableCache", "-retentionPeriod=1d",
    ])
    prom = h.spawn("prometheus", [
        prometheus, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'prom-data'}",
        f"--web.listen-address={prom_addr}",
    ])
    servers = replicas + [("prometheus", prom), ("victoria-metrics", vm)]
    for name, proc in replicas:
        addr = app_addrs[int(name.rsplit("-", 1)[1]) - 1]
        wait_until(f"{name} /up", lambda a=addr: http_get(f"http://{a}/up")[0] == 200, timeout=10, procs=servers)
    wait_until("Prometheus ready", lambda: http_get(f"http://{prom_addr}/-/ready")[0] == 200,
               timeout=30, procs=servers)
    wait_until("VictoriaMetrics ready", lambda: http_get(f"http://{vm_addr}/health")[0] == 200,
               timeout=30, procs=servers)
    P, V = Prom(prom_port), Prom(vm_port)
    log(f"4 replicas on {', '.join(app_addrs)}; Prometheus {prom_addr} remote-writing to VictoriaMetrics {vm_addr}")

    def up_instances(store, selector=""):
        return sorted(m["instance"] for m, v in store.query(f'up{{job="{JOB}"{selector}}}') if v == 1)

    views = {"Prometheus": (P, ""), "VictoriaMetrics (remote-written)": (V, ',collector="prometheus"'),
             "VictoriaMetrics (own scrape)": (V, ',collector=""')}
    for view, (store, selector) in views.items():
        wait_until(f"{view}: up == 1 for all four replicas",
                   lambda s=store, sel=selector: up_instances(s, sel) == sorted(app_addrs),
                   timeout=30, interval=0.5, procs=servers)
    log("every replica is up in Prometheus and in both VictoriaMetrics views")

    load_start = time.monotonic()
    wrks = spawn_wrk(h, app_addrs)
    for proc in wrks:
        proc.wait(timeout=LOAD_SECONDS + 30)
    wrk_requests = 0
    for i in range(REPLICAS):
        text = (tmp / f"wrk-{i + 1}.log").read_text()
        found = re.search(r"(\d+) requests in", text)
        check(found, f"wrk-{i + 1} printed no summary:\n{text}")
        wrk_requests += int(found.group(1))
    log(f"load: wrk sent {wrk_requests} /synthetic requests in {time.monotonic() - load_start:.1f}s")

    # Quiesced: the replicas' counters no longer move; wait until every view holds them.
    # Requests wrk left in flight finish after it exits: read until two reads agree.
    readings = [replica_counters(app_addrs)]

    def counters_settled():
        time.sleep(0.5)
        readings.append(replica_counters(app_addrs))
        return readings[-1] == readings[-2]

    wait_until("the replicas' counters to settle", counters_settled, timeout=10, interval=0.1, procs=servers)
    truth_total, truth_good = readings[-1]
    check(truth_total >= wrk_requests, f"replicas count {truth_total} requests, fewer than wrk's {wrk_requests}")
    for view, (store, selector) in views.items():
        seen = []

        def holds_final(s=store, sel=selector):
            seen.append(s.query(expr(TOTAL, sel)))
            return seen[-1] == [({}, truth_total)]

        try:
            wait_until(f"{view}: /synthetic total == {truth_total:.0f}", holds_final,
                       timeout=30, interval=0.5, procs=servers)
        except TestFailure as err:
            raise TestFailure(f"{err}; last seen {seen[-1] if seen else 'nothing'}") from None
    # One evaluation timestamp for every query, a moment ago (within what every view holds).
    at = time.time() - 0.5
    time.sleep(1.5)
    figures = {}
    for view, (store, selector) in views.items():
        figures[view] = {
            "total": store.scalar(expr(TOTAL, selector), at),
            "availability": store.scalar(expr(GOOD, selector), at) / store.scalar(expr(TOTAL, selector), at),
            "p99": store.scalar(expr(P99, selector), at),
        }
    reference = figures["Prometheus"]
    check(reference["total"] == truth_total,
          f"Prometheus has {reference['total']} requests at the evaluation time, the replicas {truth_total}")
    check(abs(reference["availability"] - truth_good / truth_total) < 1e-9,
          f"Prometheus availability {reference['availability']} != replicas' {truth_good / truth_total}")
    check(0.01 < reference["p99"] <= 0.5, f"p99 {reference['p99']} outside (0.01, 0.5]")
    for view, values in figures.items():
        for name, value in values.items():
            gap = relative_gap(value, reference[name])
            check(gap <= TOLERANCE, f"{view} {name} = {value} differs from Prometheus' {reference[name]} by {gap:.2%}")
    log("at one timestamp, Prometheus and both VictoriaMetrics views agree within 1%:")
    for view, values in figures.items():
        log(f"  {view:34} total {values['total']:.0f}, availability {values['availability']:.4f}, "
            f"p99 {values['p99'] * 1000:.2f} ms")

    # Zero scrape, parse and remote-write errors.
    for view, store in (("Prometheus", P), ("VictoriaMetrics", V)):
        active = store.api("targets")["activeTargets"]
        bad = [f"{t['labels'].get('instance')}: {t.get('health')} {t.get('lastError')}"
               for t in active if t.get("health") != "up" or t.get("lastError")]
        check(len(active) == REPLICAS and not bad, f"{view} targets: {len(active)} active, errors {bad}")
    _, prom_metrics = http_get(f"http://{prom_addr}/metrics")
    for name in ("prometheus_remote_storage_samples_failed_total", "prometheus_remote_storage_samples_dropped_total",
                 "prometheus_target_scrapes_exceeded_sample_limit_total",
                 "prometheus_target_scrapes_sample_out_of_order_total",
                 "prometheus_target_scrapes_sample_duplicate_timestamp_total"):
        check(metric_sum(prom_metrics, name) == 0, f"Prometheus {name} = {metric_sum(prom_metrics, name)}")
    sent = metric_sum(prom_metrics, "prometheus_remote_storage_samples_total")
    check(sent > 0, "Prometheus remote-wrote no samples")
    _, vm_metrics = http_get(f"http://{vm_addr}/metrics")
    for name, label in (("vm_promscrape_scrapes_failed_total", ""), ("vm_rows_invalid_total", ""),
                        ("vm_http_request_errors_total", 'path="/api/v1/write"'),
                        ("vm_protoparser_unmarshal_errors_total", "")):
        check(metric_sum(vm_metrics, name, label) == 0, f"VictoriaMetrics {name}{label} = {metric_sum(vm_metrics, name, label)}")
    check(metric_sum(vm_metrics, "vm_promscrape_scrapes_total") > 0, "VictoriaMetrics scraped nothing")
    log(f"no scrape, parse or write errors ({sent:.0f} samples remote-written)")

    # A replica leaves the targets file: it leaves `up` everywhere, nothing restarts.
    removed, kept = app_addrs[-1], sorted(app_addrs[:-1])
    pids = {name: proc.pid for name, proc in servers}
    removed_at = time.monotonic()
    write_targets(targets, kept)
    for view, store in (("Prometheus", P), ("VictoriaMetrics", V)):
        wait_until(f"{view}: {removed} gone from the targets",
                   lambda s=store: sorted(t["labels"]["instance"] for t in s.api("targets")["activeTargets"]) == kept,
                   timeout=30, interval=0.5, procs=servers)
    for view, (store, selector) in views.items():
        wait_until(f"{view}: {removed} gone from up",
                   lambda s=store, sel=selector: up_instances(s, sel) == kept, timeout=30, interval=0.5, procs=servers)
    check(all(proc.poll() is None and proc.pid == pids[name] for name, proc in servers),
          "a process exited or was replaced while the replica was removed")
    log(f"{removed} left up in Prometheus and both VictoriaMetrics views {time.monotonic() - removed_at:.1f}s "
        f"after leaving the targets file; nothing restarted (it still runs, undiscovered)")
    log(f"PASS in {time.monotonic() - t_begin:.1f}s")


if __name__ == "__main__":
    run_main(main, TOTAL_BUDGET_SECONDS, log)
