#!/usr/bin/env python3
"""End-to-end push test: examples/pushgateway pushes to a real Pushgateway, and a real
Prometheus scrapes the gateway with honor_labels.

Starts a Pushgateway (Debian package prometheus-pushgateway, persistence off) on a
free loopback port and runs the example against it twice: in the text format with
grouping labels instance="batch-1" and dir="/var/lib/tinyprom" (a value with `/`,
sent in base64 form), and in protobuf with instance="batch-2". The gateway's own
/api/v1/metrics must then hold both groups, each with the example's counter and
histogram. Then a Prometheus on another free port scrapes the gateway every second
with honor_labels: true, and its HTTP API must show:

  * the counter (500) and the histogram (count 5, sum 0.15, its buckets) of both
    groups under job="tinyprom_example" with their grouping labels,
  * no pushed series under the scrape job's own name (honor_labels kept the pushed
    job),
  * the gateway's target up.

A DELETE of the batch-2 group (curl, as an operator would) must remove it from the
gateway while batch-1 stays. The library's PUT/POST/DELETE semantics are checked in
detail by tests/push.rs.

Standard library only. Usage (from the repo root): make push-test, or
    PUSH_EXAMPLE_BIN=target/release/examples/pushgateway python3 scripts/push_test.py
Environment: PUSH_EXAMPLE_BIN, PUSHGATEWAY_BIN (default prometheus-pushgateway or
pushgateway on PATH), PROMETHEUS_BIN, PROMTOOL_BIN. Every process and the temporary
directory are removed on success, failure, Ctrl-C and SIGTERM.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scrape_test import (  # noqa: E402  (the scrape test's harness, reused)
    built_binary,
    HOST,
    Prom,
    check,
    free_ports,
    http_get,
    run_main,
    wait_until,
)

TOTAL_BUDGET_SECONDS = 90
JOB = "tinyprom_example"
GROUPS = {
    "batch-1": {
        "args": ["instance=batch-1", "dir=/var/lib/tinyprom"],
        "labels": {"dir": "/var/lib/tinyprom"},
        # base64url of the value with `/`, as the gateway's URL scheme has it
        "path": f"/metrics/job/{JOB}/instance/batch-1/dir@base64/L3Zhci9saWIvdGlueXByb20=",
    },
    "batch-2": {"args": ["instance=batch-2", "--protobuf"], "labels": {}, "path": f"/metrics/job/{JOB}/instance/batch-2"},
}
# What the example records: 5 batches of 100 rows taking 0.01 .. 0.05 s.
ROWS = 500
BATCHES = 5
SECONDS = 0.15
BUCKETS = {"0.01": 1, "0.025": 2, "0.05": 5, "0.1": 5, "+Inf": 5}


def log(msg):
    print(f"push-test: {msg}", flush=True)


def binary(env, names, hint):
    path = os.environ.get(env) or next((shutil.which(n) for n in names if shutil.which(n)), None)
    check(path, f"{names[0]} not found; {hint}")
    return path


def example_binary():
    return built_binary("PUSH_EXAMPLE_BIN", "target/release/examples/pushgateway",
                        "cargo build --release --example pushgateway")


def gateway_groups(base):
    """The gateway's groups as {instance: (group labels, {metric name: metric})}."""
    _, body = http_get(f"{base}/api/v1/metrics", timeout=5)
    data = json.loads(body)
    check(data.get("status") == "success", f"gateway API: {body[:300]}")
    groups = {}
    for group in data["data"]:
        labels = group["labels"]
        groups[labels.get("instance", "")] = (labels, group)
    return groups


def delete_group(base, path):
    req = urllib.request.Request(f"{base}{path}", method="DELETE")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as resp:
        return resp.status


def main(h):
    gateway = binary("PUSHGATEWAY_BIN", ["prometheus-pushgateway", "pushgateway"],
                     "run `make deps` (Debian package: prometheus-pushgateway)")
    prometheus = binary("PROMETHEUS_BIN", ["prometheus"], "run `make deps` (Debian package: prometheus)")
    promtool = binary("PROMTOOL_BIN", ["promtool"], "run `make deps` (Debian package: prometheus)")
    example = example_binary()
    h.tmp = tempfile.mkdtemp(prefix="tinyprom-push-test.")
    gw_port, prom_port = free_ports(2)
    gw_addr, prom_addr = f"{HOST}:{gw_port}", f"{HOST}:{prom_port}"
    gw_base = f"http://{gw_addr}"

    # 1. The gateway; Debian's build persists to a fixed file unless told otherwise.
    gw = h.spawn("pushgateway", [gateway, f"--web.listen-address={gw_addr}", "--persistence.file="])
    wait_until("the Pushgateway", lambda: http_get(f"{gw_base}/-/ready")[0] == 200, 15,
               procs=[("pushgateway", gw)])
    log(f"pushgateway ready on {gw_addr}")

    # 2. The example, once per group; it prints the group's URL.
    for instance, group in GROUPS.items():
        res = subprocess.run([str(example), gw_base, *group["args"]], capture_output=True, text=True, timeout=30)
        check(res.returncode == 0, f"example ({instance}) failed with {res.returncode}:\n{res.stdout}{res.stderr}")
        log(f"example: {res.stdout.strip()}")
        check(res.stdout.strip() == f"pushed to {gw_base}{group['path']}", f"{instance}: {res.stdout!r}")

    groups = gateway_groups(gw_base)
    check(set(groups) == set(GROUPS), f"gateway groups: {sorted(groups)}")
    for instance, group in GROUPS.items():
        labels, metrics = groups[instance]
        check(labels == {"job": JOB, "instance": instance, **group["labels"]},
              f"{instance}: group labels {labels}")
        rows = metrics["tinyprom_example_rows_total"]
        check(rows["type"] == "COUNTER" and float(rows["metrics"][0]["value"]) == ROWS, f"{instance}: {rows}")
        hist = metrics["tinyprom_example_batch_duration_seconds"]["metrics"][0]
        check(int(hist["count"]) == BATCHES and abs(float(hist["sum"]) - SECONDS) < 1e-9, f"{instance}: {hist}")
    log("the gateway holds both groups with the example's counter and histogram")

    # 3. Prometheus scrapes the gateway, keeping the pushed job and grouping labels.
    cfg = Path(h.tmp) / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: pushgateway\n"
        "    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['{gw_addr}']\n"
    )
    res = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True, text=True, timeout=30)
    check(res.returncode == 0, f"config invalid:\n{res.stdout}{res.stderr}")
    prom_proc = h.spawn("prometheus", [
        prometheus,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={Path(h.tmp) / 'data'}",
        f"--web.listen-address={prom_addr}",
    ])
    P = Prom(prom_port)
    procs = [("pushgateway", gw), ("prometheus", prom_proc)]
    wait_until("Prometheus' first scrape of the gateway",
               lambda: P.query('up{job="pushgateway"} == 1'), 60, interval=0.5, procs=procs)
    rows = wait_until("the pushed counters in Prometheus",
                      lambda: (lambda r: r if len(r) == 2 else None)(
                          P.query(f'tinyprom_example_rows_total{{job="{JOB}"}}')),
                      30, interval=0.5, procs=procs)
    for metric, value in rows:
        instance = metric.get("instance")
        check(instance in GROUPS, f"unexpected series {metric}")
        want = {"__name__": "tinyprom_example_rows_total", "job": JOB, "instance": instance, **GROUPS[instance]["labels"]}
        check(metric == want, f"series labels {metric}, expected {want}")
        check(value == ROWS, f"{metric}: {value}, expected {ROWS}")
    for instance in GROUPS:
        sel = f'job="{JOB}",instance="{instance}"'
        check(P.scalar(f"tinyprom_example_batch_duration_seconds_count{{{sel}}}") == BATCHES, f"{instance}: count")
        total = P.scalar(f"tinyprom_example_batch_duration_seconds_sum{{{sel}}}")
        check(abs(total - SECONDS) < 1e-9, f"{instance}: sum {total}")
        for le, n in BUCKETS.items():
            got = P.scalar(f'tinyprom_example_batch_duration_seconds_bucket{{{sel},le="{le}"}}')
            check(got == n, f"{instance}: bucket le={le} is {got}, expected {n}")
    check(P.query('tinyprom_example_rows_total{job="pushgateway"}') == [],
          "pushed series under the scrape job's name: honor_labels was not honoured")
    log("Prometheus has both groups' series under job=tinyprom_example with their grouping labels")

    # 4. DELETE one group: the other stays.
    status = delete_group(gw_base, f"/metrics/job/{JOB}/instance/batch-2")
    check(status in (200, 202), f"DELETE answered {status}")
    # 202 Accepted: the gateway removes the group after answering.
    wait_until("the deleted group to go", lambda: set(gateway_groups(gw_base)) == {"batch-1"}, 5,
               interval=0.05, procs=[("pushgateway", gw)])
    log("PASS")


if __name__ == "__main__":
    run_main(main, TOTAL_BUDGET_SECONDS, log)
