#!/usr/bin/env python3
"""End-to-end scrape test: two tinyprom replicas scraped by a real Prometheus.

Starts two tinyprom replicas and a Prometheus server on free loopback ports,
with a Prometheus config derived from the top-level prometheus.yml (targets
pointed at the replicas, 1s scrape and rule evaluation intervals, the same
rule files) and a temporary TSDB. Drives a bounded load on /synthetic and /up
across both replicas, then checks through the Prometheus HTTP API that:

  * up{job="web-app"} is 1 for both replicas,
  * the article's p99 query returns a value in (0.01, 0.1],
  * the availability SLI for /synthetic is near 7/8,
  * the /synthetic _count held by Prometheus equals the requests sent,
  * every rule evaluates with health "ok" and no target has a scrape error,
  * Prometheus negotiated OpenMetrics and gzip (tinyprom's own counters).

A second Prometheus with --enable-feature=native-histograms scrapes the same
replicas at the same time (the native run, see the functions under "native
histograms" below) and checks that:

  * the replicas served it protobuf (tinyprom_scrapes_total{format="protobuf"}),
  * the native p99 of /synthetic is within 5% of 0.050 s (uniform 1-50 ms),
    in total and per replica; on a machine loaded enough that the clients saw
    a p99 above 0.050 s, the upper limit is 5% over what they saw (see
    native_p99_limits),
  * the native histograms' count equals the /synthetic requests sent, in total
    and per replica, and its native recording rules evaluate.

Prometheus 2.42 keeps only the native part of a histogram that has one, so the
classic checks above run on the Prometheus without the feature.

Standard library only. Usage (from the repo root, after cargo build --release):

    scripts/scrape-test.sh            # or: python3 scripts/scrape_test.py

Environment: TINYPROM_BIN (default target/release/tinyprom), PROMETHEUS_BIN
(default: prometheus on PATH), PROMTOOL_BIN (default: promtool on PATH).
Every child process and the temporary directory are removed on success,
failure, Ctrl-C and SIGTERM.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_CWD = Path.cwd()
HOST = "127.0.0.1"

# Load shape: bounded request counts, paced over LOAD_SECONDS so that the load
# spans several 1s scrapes.
REPLICAS = 2
SYNTHETIC_PER_REPLICA = 800
UP_PER_REPLICA = 100
THREADS_PER_REPLICA = 4
LOAD_SECONDS = 8.0

TOTAL_BUDGET_SECONDS = 110  # hard stop, well under the 2 minute limit
SYNTHETIC_CODES = {200, 400, 401, 500}
SEED_P99_QUERY = (
    'histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{job="web-app"}[1m])) by (le))'
)
SYNTHETIC_COUNT_QUERY = 'sum(http_request_duration_seconds_count{job="web-app",url="/synthetic"})'
# Native histograms: the true p99 of /synthetic's uniform 1-50 ms delays is 0.050 s.
NATIVE_P99_TARGET = 0.050
NATIVE_P99_TOLERANCE = 0.05


class TestFailure(Exception):
    pass


class Aborted(BaseException):
    """Raised from signal handlers (Ctrl-C, SIGTERM, overall timeout)."""

    def __init__(self, msg, rc):
        super().__init__(msg)
        self.rc = rc


def log(msg):
    print(f"scrape-test: {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


# --------------------------------------------------------------------------
# processes and temp dirs


class Harness:
    def __init__(self):
        self.procs = []  # (name, Popen, logpath)
        self.tmp = None
        self.stop = threading.Event()

    def spawn(self, name, argv):
        logpath = Path(self.tmp) / f"{name}.log"
        logf = open(logpath, "wb")
        # tinyprom also reads TINYPROM_* settings from the environment; keep
        # the children hermetic so only the flags below apply.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TINYPROM_")}
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group; we signal it ourselves
            preexec_fn=_die_with_parent,
        )
        logf.close()
        self.procs.append((name, proc, logpath))
        return proc

    def log_tail(self, name, lines=15):
        for n, _, path in self.procs:
            if n == name:
                try:
                    text = path.read_text(errors="replace").splitlines()
                except OSError:
                    return ""
                return "\n".join("    " + l for l in text[-lines:])
        return ""

    def cleanup(self):
        self.stop.set()
        for _, proc, _ in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _signal_group(proc, sig):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def _die_with_parent():
    # Linux: have the child killed if this script dies without cleaning up
    # (e.g. SIGKILL). Best effort, ignored elsewhere.
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def free_ports(n):
    """n distinct free loopback ports (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# HTTP helpers (loopback only; bypass any proxy settings from the env)

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url, timeout=3):
    with _opener.open(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def wait_until(what, fn, timeout, interval=0.2, procs=()):
    """Poll fn() until it returns a truthy value; bounded in time and count."""
    deadline = time.monotonic() + timeout
    last_err = None
    for _ in range(int(timeout / interval) + 2):
        for name, proc in procs:
            if proc.poll() is not None:
                raise TestFailure(f"{name} exited with code {proc.returncode} while waiting for {what}")
        try:
            result = fn()
            if result:
                return result
        except (OSError, http.client.HTTPException, ValueError) as e:
            last_err = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TestFailure(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_err})" if last_err else ""))


class Prom:
    def __init__(self, port):
        self.base = f"http://{HOST}:{port}"

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            status, body = http_get(url, timeout=5)
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            raise TestFailure(f"Prometheus API {path} {params} -> HTTP {e.code}: {body[:300]}")
        data = json.loads(body)
        if data.get("status") != "success":
            raise TestFailure(f"Prometheus API {path} {params} failed: {body[:300]}")
        return data["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        check(data["resultType"] == "vector", f"{expr}: expected a vector, got {data['resultType']}")
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def scalar(self, expr, at=None):
        res = self.query(expr, at)
        check(len(res) == 1, f"{expr}: expected exactly one series, got {len(res)}: {res}")
        return res[0][1]


# --------------------------------------------------------------------------
# config derivation


def derive_config(src_text, prom_addr, app_addrs):
    """Rewrite the shipped prometheus.yml for the test.

    Only intervals, targets and rule file paths change; everything else is
    kept verbatim so that the shipped file is what gets tested.
    """
    text = src_text

    text, n = re.subn(r"(?m)^(\s*scrape_interval:\s*)\S+", r"\g<1>1s", text)
    check(n >= 1, "prometheus.yml: no scrape_interval found")
    text, n_to = re.subn(r"(?m)^(\s*scrape_timeout:\s*)\S+", r"\g<1>1s", text)
    text, n = re.subn(r"(?m)^(\s*evaluation_interval:\s*)\S+", r"\g<1>1s", text)
    if n == 0:
        text, n = re.subn(r"(?m)^global:\s*$", "global:\n  evaluation_interval: 1s", text)
        check(n == 1, "prometheus.yml: no global section to set evaluation_interval in")

    text, n = re.subn(r"""(["']?)localhost:9090\1""", f'"{prom_addr}"', text)
    check(n == 1, f"prometheus.yml: expected one localhost:9090 target, found {n}")
    app_targets = ", ".join(f'"{a}"' for a in app_addrs)
    text, n = re.subn(r"""(["']?)localhost:8000\1""", app_targets, text)
    check(n == 1, f"prometheus.yml: expected one localhost:8000 target, found {n}")

    # Make rule_files entries absolute (they are relative to the config file).
    lines = text.splitlines()
    out, in_rules, n_rules = [], False, 0
    for line in lines:
        if re.match(r"^rule_files:\s*$", line):
            in_rules = True
        elif in_rules and re.match(r"^\S", line):
            in_rules = False
        elif in_rules:
            m = re.match(r"""^(\s*-\s*)(["']?)([^"'#\s]+)\2(\s*(#.*)?)$""", line)
            if m:
                path = m.group(3)
                if not os.path.isabs(path):
                    path = str(REPO / path)
                line = f'{m.group(1)}"{path}"'
                n_rules += 1
        out.append(line)
    check(n_rules >= 1, "prometheus.yml: no rule_files entries found")
    return "\n".join(out) + "\n", n_rules


# --------------------------------------------------------------------------
# load


class LoadStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = Counter()  # (replica_addr, path, code) -> n
        self.errors = []
        self.max_latency = 0.0
        self.synthetic = {}  # replica_addr -> client-side latencies of /synthetic

    def add(self, addr, path, code, latency):
        with self.lock:
            self.codes[(addr, path, code)] += 1
            self.max_latency = max(self.max_latency, latency)
            if path == "/synthetic":
                self.synthetic.setdefault(addr, []).append(latency)

    def synthetic_p99(self, addr=None):
        """The p99 of /synthetic's latency as the clients measured it."""
        with self.lock:
            xs = sorted(x for a, v in self.synthetic.items() if addr in (None, a) for x in v)
        return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else 0.0

    def total(self, path=None, addr=None, good=None):
        n = 0
        for (a, p, c), v in self.codes.items():
            if path is not None and p != path:
                continue
            if addr is not None and a != addr:
                continue
            if good is not None and (c < 500) != good:
                continue
            n += v
        return n


def load_worker(h, addr, plan, t0, stats):
    """Send the planned requests on one keep-alive connection, paced evenly."""
    host, port = addr.split(":")
    conn = None
    step = LOAD_SECONDS / max(1, len(plan))
    try:
        for i, path in enumerate(plan):
            if h.stop.is_set():
                return
            delay = t0 + i * step - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            start = time.monotonic()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace").strip()
            latency = time.monotonic() - start
            if path == "/synthetic":
                if resp.status not in SYNTHETIC_CODES or body != str(resp.status):
                    raise TestFailure(f"{addr}{path}: unexpected answer {resp.status} {body!r}")
            elif resp.status != 200 or body != "I am running!":
                raise TestFailure(f"{addr}{path}: unexpected answer {resp.status} {body!r}")
            stats.add(addr, path, resp.status, latency)
            if resp.will_close:
                conn.close()
                conn = None
    except Exception as e:  # every request must complete
        with stats.lock:
            stats.errors.append(f"{addr}: {type(e).__name__}: {e}")
    finally:
        if conn is not None:
            conn.close()


def run_load(h, addrs):
    stats = LoadStats()
    threads = []
    t0 = time.monotonic() + 0.1
    for addr in addrs:
        for t in range(THREADS_PER_REPLICA):
            # Split this replica's requests across its threads; interleave /up.
            n_syn = SYNTHETIC_PER_REPLICA // THREADS_PER_REPLICA + (t < SYNTHETIC_PER_REPLICA % THREADS_PER_REPLICA)
            n_up = UP_PER_REPLICA // THREADS_PER_REPLICA + (t < UP_PER_REPLICA % THREADS_PER_REPLICA)
            # Spread the /up requests evenly between the /synthetic ones.
            plan = sorted([((k + 0.5) / n_syn, "/synthetic") for k in range(n_syn)]
                          + [((k + 0.5) / n_up, "/up") for k in range(n_up)])
            plan = [path for _, path in plan]
            th = threading.Thread(target=load_worker, args=(h, addr, plan, t0, stats), daemon=True)
            threads.append(th)
    wall_start = time.time()
    for th in threads:
        th.start()
    deadline = time.monotonic() + LOAD_SECONDS + 30
    for th in threads:
        while th.is_alive():
            th.join(timeout=0.5)
            if time.monotonic() > deadline:
                h.stop.set()
                raise TestFailure("load did not finish in time")
    wall_end = time.time()
    if stats.errors:
        raise TestFailure(f"{len(stats.errors)} load thread(s) failed, first: {stats.errors[0]}")
    return stats, wall_start, wall_end


# --------------------------------------------------------------------------
# content coding


def check_gzip_negotiated(P):
    """Prometheus sends Accept-Encoding: gzip; every scrape body must have gone out
    gzip-compressed (tinyprom counts body bytes by coding), none uncompressed."""
    gzip_bytes = P.scalar('sum(tinyprom_scrape_bytes_total{job="web-app",encoding="gzip"})')
    identity_bytes = P.scalar(
        'sum(tinyprom_scrape_bytes_total{job="web-app",encoding="identity"}) or vector(0)')
    check(gzip_bytes > 0 and identity_bytes == 0,
          f"scrape body bytes by coding: gzip {gzip_bytes}, identity {identity_bytes}; "
          "expected Prometheus to get every scrape gzip-compressed")
    return gzip_bytes


# native histograms: a second Prometheus with the feature on, same replicas


def start_prometheus(h, prometheus, promtool, name, addr, app_addrs, flags=()):
    """Start a Prometheus called name on addr with a config derived from the shipped
    prometheus.yml (checked by promtool first) and the extra flags; returns the
    process and the number of rule files the config loads."""
    cfg_text, n_rules = derive_config((REPO / "prometheus.yml").read_text(), addr, app_addrs)
    cfg = Path(h.tmp) / f"{name}.yml"
    cfg.write_text(cfg_text)
    res = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True, text=True, timeout=30)
    check(res.returncode == 0, f"derived config for {name} invalid:\n{res.stdout}{res.stderr}\n{cfg_text}")
    proc = h.spawn(name, [
        prometheus,
        *flags,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={Path(h.tmp) / ('data-' + name)}",
        f"--web.listen-address={addr}",
    ])
    return proc, n_rules


def start_native_prometheus(h, prometheus, promtool, app_addrs):
    """Start Prometheus with --enable-feature=native-histograms on a free port,
    configured like the classic one; returns (Prom, name and process, address)."""
    (port,) = free_ports(1)
    addr = f"{HOST}:{port}"
    proc, _ = start_prometheus(h, prometheus, promtool, "prometheus-native", addr, app_addrs,
                               flags=("--enable-feature=native-histograms",))
    return Prom(port), ("prometheus-native", proc), addr


def native_p99_limits(client_p99):
    """Where the native p99 of /synthetic must lie, given the p99 the clients saw.

    What the server records for a request lies between its delay (uniform 1-50 ms,
    whose p99 is 0.050 s) and what the client measured (the server's time plus
    loopback and the client's own). So the true p99 of the recorded latencies lies
    between 0.050 s and the clients' p99, and the native estimate must be within 5%
    of that range: 0.050 s +-5% on a quiet machine (the clients' p99 is then about
    0.050 s too), and on a loaded one, where the machine adds to some requests, no
    more than 5% over what the clients saw. An estimate off by more than its bucket
    width still fails either way."""
    lo = NATIVE_P99_TARGET * (1 - NATIVE_P99_TOLERANCE)
    hi = max(NATIVE_P99_TARGET, client_p99) * (1 + NATIVE_P99_TOLERANCE)
    return lo, hi


def check_native(N, procs, stats, app_addrs, sent_syn):
    """The native run's assertions; returns lines for the summary."""
    syn = 'http_request_duration_seconds{job="web-app",url="/synthetic"}'
    count_query = f"histogram_count(sum({syn}))"
    seen = []

    def native_count_matches():
        res = N.query(count_query)
        seen.append(res[0][1] if res else None)
        return len(res) == 1 and res[0][1] == sent_syn

    try:
        wait_until(f"{count_query} == {sent_syn}", native_count_matches, timeout=15, interval=0.25, procs=procs)
    except TestFailure as e:
        raise TestFailure(f"{e}; last value seen: {seen[-1] if seen else 'none'}") from None
    per_instance = {m["instance"]: v for m, v in N.query(f"histogram_count(sum by (instance) ({syn}))")}
    for addr in app_addrs:
        check(per_instance.get(addr) == stats.total("/synthetic", addr),
              f"native: {addr} counts {per_instance.get(addr)} /synthetic requests, "
              f"sent {stats.total('/synthetic', addr)}")

    protobuf = N.scalar('sum(tinyprom_scrapes_total{job="web-app",format="protobuf"}) or vector(0)')
    check(protobuf >= 2, f"native: {protobuf} protobuf scrapes counted; expected Prometheus to negotiate protobuf")
    # The classic series are gone here (2.42 keeps only the native part).
    classic = N.query('http_request_duration_seconds_bucket{job="web-app"}')
    check(not classic, f"native: classic buckets stored too ({len(classic)} series); not Prometheus 2.42?")

    lo, hi = native_p99_limits(stats.synthetic_p99())
    p99 = N.scalar(f"histogram_quantile(0.99, sum(rate({syn}[2m])))")
    check(lo <= p99 <= hi, f"native p99 of /synthetic = {p99:.5f}s, expected {lo:.5f} to {hi:.5f} "
          f"({NATIVE_P99_TARGET} +-5%; the clients' p99 was {stats.synthetic_p99():.5f}s)")
    p99_by = {m["instance"]: v for m, v in N.query(
        f"histogram_quantile(0.99, sum by (instance) (rate({syn}[2m])))")}
    limits_by = {a: native_p99_limits(stats.synthetic_p99(a)) for a in app_addrs}
    check(sorted(p99_by) == sorted(app_addrs)
          and all(limits_by[a][0] <= v <= limits_by[a][1] for a, v in p99_by.items()),
          f"native p99 per replica = {p99_by}, expected within {limits_by}")

    def native_rules():
        res = N.query('job_url:http_request_duration_seconds:native_p99_rate1m{job="web-app",url="/synthetic"}')
        return res or None

    rec = wait_until("the native p99 recording rule", native_rules, timeout=10, interval=0.5, procs=procs)[0][1]
    check(lo * 0.9 <= rec <= hi * 1.1, f"recorded native p99 of /synthetic = {rec}")
    frac = N.scalar('job_url:sli_latency_100ms:native_ratio_rate5m{job="web-app",url="/synthetic"}')
    # Every delay is <= 50 ms; a loaded machine may add more than 50 ms to a few.
    check(frac >= 0.98, f"native latency SLI of /synthetic (<= 0.1s) = {frac}")
    return [
        f"native run           {protobuf:.0f} protobuf scrapes; histogram_count {sent_syn} == sent "
        f"(per replica {', '.join(f'{int(v)}' for v in per_instance.values())})",
        f"native p99           {p99:.4f}s (per replica {', '.join(f'{v:.4f}' for v in p99_by.values())}; "
        f"rule {rec:.4f}s) within {lo:.4f}-{hi:.4f}s (clients' p99 {stats.synthetic_p99():.4f}s); "
        f"latency SLI {frac:.4f}",
    ]


# --------------------------------------------------------------------------


def main(h):
    t_begin = time.monotonic()
    tinyprom = Path(os.environ.get("TINYPROM_BIN", "target/release/tinyprom"))
    if not tinyprom.is_absolute():
        tinyprom = (START_CWD / tinyprom).resolve()
    check(tinyprom.is_file() and os.access(tinyprom, os.X_OK),
          f"tinyprom binary not found at {tinyprom}; run `cargo build --release` (or set TINYPROM_BIN)")
    prometheus = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    promtool = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool")
    check(prometheus and promtool, "prometheus/promtool not found; run `make deps` (Debian package: prometheus)")
    version = subprocess.run([prometheus, "--version"], capture_output=True, text=True, timeout=10)
    prom_version = (version.stdout or version.stderr).splitlines()[0].strip()
    log(f"using {prom_version}")

    # The shell wrapper passes a directory it removes itself, as a second line
    # of defence should this script be killed without a chance to clean up.
    h.tmp = tempfile.mkdtemp(prefix="tinyprom-scrape-test.", dir=os.environ.get("SCRAPE_TEST_TMPDIR") or None)
    prom_port, *app_ports = free_ports(1 + REPLICAS)
    prom_addr = f"{HOST}:{prom_port}"
    app_addrs = [f"{HOST}:{p}" for p in app_ports]

    # 1. replicas
    replicas = []
    for i, addr in enumerate(app_addrs):
        proc = h.spawn(f"tinyprom-{i + 1}", [str(tinyprom), "--web.listen-address", addr])
        replicas.append((f"tinyprom-{i + 1}", proc))
    for (name, proc), addr in zip(replicas, app_addrs):
        wait_until(f"{name} /up on {addr}",
                   lambda a=addr: http_get(f"http://{a}/up") == (200, "I am running!"),
                   timeout=10, procs=[(name, proc)])
    log(f"replicas up on {', '.join(app_addrs)}")

    # 2. Prometheus with a config derived from the shipped prometheus.yml
    prom, n_rules = start_prometheus(h, prometheus, promtool, "prometheus", prom_addr, app_addrs)
    N, native_proc, native_addr = start_native_prometheus(h, prometheus, promtool, app_addrs)
    procs = replicas + [("prometheus", prom), native_proc]
    for addr in (prom_addr, native_addr):
        wait_until(f"Prometheus /-/ready on {addr}", lambda a=addr: http_get(f"http://{a}/-/ready")[0] == 200,
                   timeout=30, procs=procs)
    P = Prom(prom_port)
    log(f"prometheus ready on {prom_addr} ({n_rules} rule file(s), 1s scrape/eval)")

    def both_up():
        res = P.query('up{job="web-app"}')
        return sorted(m["instance"] for m, v in res if v == 1) == sorted(app_addrs)

    wait_until('up{job="web-app"} == 1 for both replicas', both_up, timeout=15, interval=0.3, procs=procs)
    wait_until("the native Prometheus scraping both replicas",
               lambda: len([v for _, v in N.query('up{job="web-app"}') if v == 1]) == REPLICAS,
               timeout=15, interval=0.3, procs=procs)

    # 3. bounded load
    n_syn = SYNTHETIC_PER_REPLICA * REPLICAS
    n_up = UP_PER_REPLICA * REPLICAS
    log(f"load: {n_syn} x /synthetic + {n_up} x /up over {LOAD_SECONDS:.0f}s, "
        f"{THREADS_PER_REPLICA} keep-alive clients per replica")
    stats, load_start, load_end = run_load(h, app_addrs)
    sent_syn = stats.total("/synthetic")
    check(sent_syn == n_syn and stats.total("/up") == n_up,
          f"not all requests completed: /synthetic {sent_syn}/{n_syn}, /up {stats.total('/up')}/{n_up}")
    load_secs = load_end - load_start
    log(f"load done in {load_secs:.1f}s, all {sent_syn + n_up} requests completed "
        f"(max client latency {stats.max_latency * 1000:.0f} ms)")

    # 4. final scrape: Prometheus' /synthetic count must settle at exactly what was sent
    seen = []

    def count_matches():
        res = P.query(SYNTHETIC_COUNT_QUERY)
        if len(res) != 1:
            return False
        v = res[0][1]
        seen.append(v)
        if v > sent_syn:
            raise TestFailure(f"Prometheus counts {v:.0f} /synthetic requests, more than the {sent_syn} sent")
        return v == sent_syn

    try:
        wait_until(f"{SYNTHETIC_COUNT_QUERY} == {sent_syn}", count_matches, timeout=15, interval=0.25, procs=procs)
    except TestFailure as e:
        raise TestFailure(f"{e}; last value seen: {seen[-1] if seen else 'none'}") from None
    time.sleep(2.2)  # two more scrapes: the value must stay put
    final = P.scalar(SYNTHETIC_COUNT_QUERY)
    check(final == sent_syn, f"/synthetic count moved after settling: {final} != {sent_syn}")
    per_instance = {m["instance"]: v for m, v in P.query(
        'sum by (instance) (http_request_duration_seconds_count{job="web-app",url="/synthetic"})')}
    for addr in app_addrs:
        check(per_instance.get(addr) == stats.total("/synthetic", addr),
              f"{addr}: Prometheus has {per_instance.get(addr)} /synthetic requests, sent {stats.total('/synthetic', addr)}")

    native_summary = check_native(N, procs, stats, app_addrs, sent_syn)

    # 5. assertions through the HTTP API
    up = {m["instance"]: v for m, v in P.query('up{job="web-app"}')}
    check(sorted(up) == sorted(app_addrs) and all(v == 1 for v in up.values()), f'up{{job="web-app"}} = {up}')

    scrapes = {m["instance"]: v for m, v in P.query(
        f'count_over_time(up{{job="web-app"}}[{max(1, int(load_secs))}s])', at=load_end)}
    check(all(scrapes.get(a, 0) >= 3 for a in app_addrs), f"load spanned too few scrapes: {scrapes}")

    p99 = P.scalar(SEED_P99_QUERY)
    check(0.01 < p99 <= 0.1, f"p99 = {p99}, expected in (0.01, 0.1]")
    p99_rec = P.scalar('job:http_request_duration_seconds:p99_rate1m{job="web-app"}')
    check(0.01 < p99_rec <= 0.1, f"recorded p99 = {p99_rec}, expected in (0.01, 0.1]")

    sli_syn = P.scalar('job_url:sli_availability:ratio_rate5m{job="web-app",url="/synthetic"}')
    check(abs(sli_syn - 7 / 8) <= 0.05, f"/synthetic availability SLI = {sli_syn:.4f}, expected ~0.875")
    sli_job = P.scalar('job:sli_availability:ratio_rate5m{job="web-app"}')
    check(0.8 <= sli_job <= 1.0, f"job availability SLI = {sli_job:.4f}")
    # Exact SLI from the final counters vs what the clients saw.
    good = P.scalar('sum(http_request_duration_seconds_count{job="web-app",url="/synthetic",code!~"5.."})')
    client_good = stats.total("/synthetic", good=True)
    check(good == client_good, f"Prometheus counts {good:.0f} non-5xx /synthetic answers, clients saw {client_good}")
    prom_by_code = {m["code"]: int(v) for m, v in P.query(
        'sum by (code) (http_request_duration_seconds_count{job="web-app",url="/synthetic"})')}
    client_by_code = Counter()
    for (a, p, c), v in stats.codes.items():
        if p == "/synthetic":
            client_by_code[str(c)] += v
    check(prom_by_code == dict(client_by_code),
          f"per-code counts differ: Prometheus {prom_by_code}, clients {dict(client_by_code)}")
    lat_sli = P.scalar('job_url:sli_latency_100ms:ratio_rate5m{job="web-app",url="/synthetic"}')
    check(0 <= lat_sli <= 1, f"latency SLI = {lat_sli}")

    def rules_evaluated():
        groups = P.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return (groups, rules) if rules and all(r.get("health") != "unknown" for r in rules) else None

    groups, rules = wait_until("every rule to be evaluated", rules_evaluated, timeout=10, interval=0.5, procs=procs)
    bad = [f"{g['name']}/{r.get('name')}: {r.get('health')} {r.get('lastError', '')}"
           for g in groups for r in g["rules"] if r.get("health") != "ok" or r.get("lastError")]
    check(not bad, "unhealthy rules:\n  " + "\n  ".join(bad))

    targets = P.api("targets", state="active")["activeTargets"]
    check(len(targets) == 1 + REPLICAS, f"expected {1 + REPLICAS} active targets, got {len(targets)}")
    bad = [f"{t['labels'].get('job')}/{t['labels'].get('instance')}: {t['health']} {t['lastError']}"
           for t in targets if t.get("lastError") or t.get("health") != "up"]
    check(not bad, "targets with scrape errors:\n  " + "\n  ".join(bad))

    # Prometheus asks for OpenMetrics first; tinyprom counts scrapes by the format it
    # served, so the OpenMetrics path is proven to parse in Prometheus itself.
    om_scrapes = P.scalar('sum(tinyprom_scrapes_total{job="web-app",format="openmetrics"})')
    text_scrapes = P.scalar('sum(tinyprom_scrapes_total{job="web-app",format="text"}) or vector(0)')
    check(om_scrapes >= 2 and text_scrapes == 0,
          f"scrapes by format: openmetrics {om_scrapes}, text {text_scrapes}; expected Prometheus to negotiate OpenMetrics")
    gzip_bytes = check_gzip_negotiated(P)

    alerts = P.api("alerts")["alerts"]
    check(not any(a["labels"].get("alertname") == "TargetDown" for a in alerts), f"TargetDown is active: {alerts}")
    alert_desc = sorted(f"{a['labels'].get('alertname')}[{a['labels'].get('severity')},"
                        f"{a['labels'].get('long_window', '')}/{a['labels'].get('short_window', '')}]={a['state']}"
                        for a in alerts)

    # --- dashboard hook: every query of dashboards/tinyprom.json on these live
    # Prometheus servers (scripts/dashboard_check.py): the classic panels on the classic
    # one, the native-histogram panels on the one with the feature on.
    from dashboard_check import check_dashboard

    dashboard = check_dashboard(P.base, native_prom_url=N.base)
    check(not dashboard.failures, "dashboard check failed:\n  " + "\n  ".join(dashboard.failures))
    log(f"dashboard: {dashboard.summary()}")
    # --- end of dashboard hook

    # 6. summary
    sent_500 = client_by_code.get("500", 0)
    log("PASS")
    print(f"""
  prometheus           {prom_version}
  replicas             {', '.join(app_addrs)}; prometheus on {prom_addr}
  load                 {sent_syn} /synthetic + {n_up} /up in {load_secs:.1f}s, spanning {int(min(scrapes.values()))}+ scrapes per replica
  /synthetic answers   {dict(sorted(client_by_code.items()))} (5xx share {sent_500 / sent_syn:.4f})
  _count in Prometheus {final:.0f} == {sent_syn} sent (per replica {', '.join(f'{int(v)}' for v in per_instance.values())})
  up{{job="web-app"}}    1 for both replicas; {len(targets)} targets, no scrape errors
  p99 (seed query)     {p99:.4f}s  (recorded rule {p99_rec:.4f}s) in (0.01, 0.1]
  availability SLI     /synthetic {sli_syn:.4f} (~7/8 = 0.875; exact from counters {good / sent_syn:.4f}), job {sli_job:.4f}
  latency SLI <=0.1s   /synthetic {lat_sli:.4f}
  scrape format        {om_scrapes:.0f} OpenMetrics scrapes counted by the replicas (0 text)
  scrape coding        gzip: {gzip_bytes:.0f} compressed body bytes, {gzip_bytes / om_scrapes:.0f} a scrape (0 uncompressed)
{chr(10).join('  ' + line for line in native_summary)}
  rules                {len(groups)} groups, {len(rules)} rules, all health ok
  alerts               {', '.join(alert_desc) if alert_desc else 'none active'}
  dashboard            {dashboard.summary()}
  duration             {time.monotonic() - t_begin:.1f}s
""", flush=True)


def run_main(test_main, budget_seconds, log_line):
    """Runs test_main(harness) from the repo root within budget_seconds (SIGALRM), turns
    Ctrl-C/SIGTERM/SIGHUP into a clean abort, prints the children's last log lines on a
    failure, always cleans up, and exits with the test's status. Shared by the
    end-to-end tests in this folder."""

    def raise_aborted(signum, _frame):
        if signum == signal.SIGALRM:
            raise Aborted(f"overall time budget of {budget_seconds}s exceeded", 1)
        raise Aborted(f"aborted by {signal.Signals(signum).name}", 128 + signum)

    os.chdir(REPO)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, raise_aborted)
    signal.alarm(budget_seconds)
    harness = Harness()
    rc = 0
    try:
        test_main(harness)
    except (TestFailure, Aborted) as e:
        rc = e.rc if isinstance(e, Aborted) else 1
        log_line(f"FAIL: {e}")
        for name, _, _ in (harness.procs if isinstance(e, TestFailure) else []):
            tail = harness.log_tail(name)
            if tail:
                print(f"--- last lines of {name} log ---\n{tail}", file=sys.stderr)
    finally:
        # No more interruptions while cleaning up.
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        harness.cleanup()
        log_line(f"cleaned up {len(harness.procs)} process(es) and the temp dir")
    sys.exit(rc)


def built_binary(variable, default, build):
    """The executable named by the environment `variable` (else `default`), resolved
    against the start directory; `build` is the command that makes it."""
    path = Path(os.environ.get(variable, default))
    if not path.is_absolute():
        path = (START_CWD / path).resolve()
    check(path.is_file() and os.access(path, os.X_OK),
          f"{path.name} not found at {path}; run `{build}` (or set {variable})")
    return path


def tinyprom_binary():
    """TINYPROM_BIN (default target/release/tinyprom), resolved against the start directory."""
    return built_binary("TINYPROM_BIN", "target/release/tinyprom", "cargo build --release")


if __name__ == "__main__":
    run_main(main, TOTAL_BUDGET_SECONDS, log)
