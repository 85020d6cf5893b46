#!/usr/bin/env python3
"""Soak test: wrk drives /synthetic and /up while /metrics is scraped every second.

Checks, on every scrape: it parses, every counter (and histogram count, sum and
bucket) never decreases, every histogram is consistent (cumulative buckets, +Inf equal
to the count), no restart happened; at the end: resident memory is flat (the last
tenth of the run against the tenth after warm-up). Prints a summary; exits 1 on any
violation.

Environment: TINYPROM_BIN (default target/release/tinyprom), SOAK_SECONDS (default 60).
"""
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BIN = os.environ.get("TINYPROM_BIN", "target/release/tinyprom")
SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))


def launch():
    proc = subprocess.Popen(
        [BIN, "--web.listen-address=127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    match = re.search(r"listening on http://(\S+)", line)
    if not match:
        proc.kill()
        sys.exit(f"soak: no start-up line from {BIN}: {line!r}")
    log = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    return proc, match.group(1), log


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        return r.read().decode()


def monotonic_values(text):
    """Counter-like samples (name+labels -> value), histograms, RSS, restarts."""
    values, histograms, rss, restarts = {}, {}, None, None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + repr(sorted(s.labels.items()))
            if family.type in ("counter", "histogram"):
                values[key] = s.value
            if family.type == "histogram" and s.name.endswith("_bucket"):
                labels = {k: v for k, v in s.labels.items() if k != "le"}
                h = histograms.setdefault(repr(sorted(labels.items())), {"buckets": []})
                h["buckets"].append((float(s.labels["le"]), s.value))
            if family.type == "histogram" and s.name.endswith("_count"):
                histograms.setdefault(repr(sorted(s.labels.items())), {"buckets": []})["count"] = s.value
            if s.name == "process_resident_memory_bytes":
                rss = s.value
            if s.name == "tinyprom_restarts_total":
                restarts = s.value
    return values, histograms, rss, restarts


def main():
    proc, addr, log = launch()
    wrk = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{c}", f"-d{SECONDS}s", f"http://{addr}{path}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path, c in (("/synthetic", 32), ("/up", 8))
    ]
    violations, rss_series, scrapes = [], [], 0
    previous = {}
    start = time.time()
    while time.time() - start < SECONDS:
        time.sleep(1)
        try:
            text = scrape(addr)
            values, histograms, rss, restarts = monotonic_values(text)
        except Exception as e:  # a scrape that fails or does not parse
            violations.append(f"scrape {scrapes}: {e}")
            continue
        scrapes += 1
        for key, v in values.items():
            if key in previous and v < previous[key]:
                violations.append(f"scrape {scrapes}: {key} decreased {previous[key]} -> {v}")
        previous = values
        for key, h in histograms.items():
            counts = [c for _, c in sorted(h["buckets"])]
            if any(b < a for a, b in zip(counts, counts[1:])):
                violations.append(f"scrape {scrapes}: {key} buckets not cumulative")
            if counts and "count" in h and counts[-1] != h["count"]:
                violations.append(f"scrape {scrapes}: {key} +Inf {counts[-1]} != count {h['count']}")
        if restarts:
            violations.append(f"scrape {scrapes}: tinyprom_restarts_total is {restarts}")
        if rss is not None:
            rss_series.append(rss)
    reports = [w.communicate(timeout=SECONDS + 30)[0] for w in wrk]
    proc.terminate()
    code = proc.wait(timeout=10)
    if code != 0:
        violations.append(f"exit status {code} after SIGTERM")
    tenth = max(1, len(rss_series) // 10)
    warm = sorted(rss_series[tenth : 2 * tenth])
    last = sorted(rss_series[-tenth:])
    early = warm[len(warm) // 2] if warm else 0
    late = last[len(last) // 2] if last else 0
    if early and late > early * 1.2 + 4 * 1024 * 1024:
        violations.append(f"RSS grew from {early / 2**20:.1f} MiB to {late / 2**20:.1f} MiB")
    requests = [re.search(r"(\d+) requests in", r) for r in reports]
    print(f"soak: {SECONDS}s against {addr}")
    for (path, _), m, r in zip((("/synthetic", 0), ("/up", 0)), requests, reports):
        rate = re.search(r"Requests/sec:\s+(\S+)", r)
        print(f"  {path}: {m.group(1) if m else '?'} requests, {rate.group(1) if rate else '?'} req/s")
    print(f"  scrapes: {scrapes}, all parsed and consistent: {not violations}")
    if rss_series:
        print(
            f"  RSS MiB: after warm-up {early / 2**20:.1f}, at the end {late / 2**20:.1f}, "
            f"max {max(rss_series) / 2**20:.1f}"
        )
    if any("panicked" in line for line in log):
        violations.append("a panic was logged")
    for v in violations[:20]:
        print(f"  VIOLATION {v}")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
