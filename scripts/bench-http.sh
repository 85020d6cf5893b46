#!/usr/bin/env bash
# make bench-http: tinyprom's HTTP server against peers serving the same app, on
# loopback, in one run:
#   plain     a tiny_http server with the same worker pool and no metrics, answering
#             /up only (examples/plain_tiny_http.rs);
#   axum      the same app (/up, /synthetic, /metrics, the RED histogram
#             http_request_duration_seconds{method,url,code}) on axum 0.8 and
#             metrics-exporter-prometheus 0.18 (benches/peer-axum, its own crate, built
#             here into PEER_TARGET_DIR; needs cargo to reach crates.io once);
#   go        the same app on Go net/http and client_golang's promhttp (benches/peer-go),
#             built offline from Debian's packages golang-go and
#             golang-github-prometheus-client-golang-dev (not installed by `make deps`:
#             `apt-get install golang-go golang-github-prometheus-client-golang-dev`);
#   static    the statically linked container binary (STATIC_BIN, from `make static`).
# A peer whose toolchain or build is missing is skipped with a message saying why.
#
# wrk runs are interleaved (every server on /up -c16, every server on /up -c64, every
# server on /metrics -c4, then the next round) so drift on a shared machine hits every
# column alike; the tables show medians with the range. Each run also reads, from
# /proc, the server's CPU time (utime + stime of every process of the server: the
# supervisor and its serving child for tinyprom) and its voluntary context switches
# (the sum over its threads), before and after, and divides the difference by the
# requests wrk counted. Ratios are to axum, each the median of per-round ratios.
# tinyprom also serves /metrics a second time as "tinyprom-noproc", started with
# --no-process-metrics: the scrape CPU with process metrics over the scrape CPU without.
#
# Also measured: idle RSS, peak RSS and threads under load, and the time from spawning
# each server to its first 200 on /up. tinyprom serves from a child of its supervisor
# process: RSS and threads are the serving child's, and the idle table adds the
# supervisor's RSS and the proportional set size (PSS) of both together, which is what
# they cost a container (pages they share are counted once).
#
# Each wrk row also shows the connections in service: req/s times wrk's mean latency
# (Little's law). wrk reports latency only for the requests that were answered, so a
# server that leaves most of the connections waiting (plain tiny_http does: its pool
# of connection threads loses wake-ups when many connections arrive at once) reports
# the low latency of the few it serves; one that serves all of them has a mean latency
# of connections / throughput.
#
# Last, tinyprom alone holds BENCH_HTTP_IDLE [5000] idle keep-alive connections (each
# has been answered once) with --web.max-connections raised and the open-files limit
# raised, and reports the serving process's RSS and threads while they are held and the
# latency of fresh-connection GET /up meanwhile (targets: <= 32 MiB, <= 32 threads,
# p99 < 20 ms).
#
# Settings (environment): BENCH_HTTP_DURATION seconds per wrk run [5],
# BENCH_HTTP_ROUNDS [3], BENCH_HTTP_THREADS wrk threads [2], BENCH_HTTP_STARTS start-up
# samples [20], TINYPROM_BIN [target/release/tinyprom], PLAIN_BIN
# [target/release/examples/plain_tiny_http], STATIC_BIN [dist/tinyprom],
# PEER_TARGET_DIR [$CARGO_TARGET_DIR or target, then /peers], SKIP_BUILD=1 to use the
# binaries as they are (the peers' included), BENCH_HTTP_PEERS [axum go] to choose them.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_HTTP_DURATION:-5}
rounds=${BENCH_HTTP_ROUNDS:-3}
wrk_threads=${BENCH_HTTP_THREADS:-2}
starts=${BENCH_HTTP_STARTS:-20}
idle_connections=${BENCH_HTTP_IDLE:-5000}
tinyprom_bin=${TINYPROM_BIN:-target/release/tinyprom}
plain_bin=${PLAIN_BIN:-target/release/examples/plain_tiny_http}
static_bin=${STATIC_BIN:-dist/tinyprom}
peer_dir=${PEER_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/peers}
case $peer_dir in /*) ;; *) peer_dir=$PWD/$peer_dir ;; esac
wanted_peers=${BENCH_HTTP_PEERS:-axum go}
# The wrk runs of a round: endpoint and connections.
loads=("/up 16" "/up 64" "/metrics 4")

for tool in wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "bench-http: $tool is missing (make deps)" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin tinyprom --example plain_tiny_http
fi

# The peers. Each is built here, or skipped with the reason; never fatal.
mkdir -p "$peer_dir"
axum_bin=$peer_dir/release/peer-axum
go_bin=$peer_dir/peer-go
peer_axum() {
    if [ -n "${SKIP_BUILD:-}" ]; then
        [ -x "$axum_bin" ] || { echo "bench-http: skipping axum: $axum_bin is not built" >&2; return 1; }
        return 0
    fi
    command -v cargo >/dev/null || { echo "bench-http: skipping axum: cargo is missing" >&2; return 1; }
    CARGO_TARGET_DIR=$peer_dir cargo build --release --quiet --manifest-path benches/peer-axum/Cargo.toml ||
        { echo "bench-http: skipping axum: its build failed (it needs crates.io once for axum, tokio and metrics-exporter-prometheus)" >&2; return 1; }
}
peer_go() {
    if [ -n "${SKIP_BUILD:-}" ]; then
        [ -x "$go_bin" ] || { echo "bench-http: skipping go: $go_bin is not built" >&2; return 1; }
        return 0
    fi
    command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/prometheus/client_golang ] ||
        { echo "bench-http: skipping go: needs Debian's golang-go and golang-github-prometheus-client-golang-dev" >&2; return 1; }
    (cd benches/peer-go && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$peer_dir/go-cache" \
        GOFLAGS= go build -o "$go_bin" main.go) ||
        { echo "bench-http: skipping go: its build failed" >&2; return 1; }
}

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME BIN [FLAG...]: runs BIN on a free loopback port; sets $addr and $pid.
start() {
    local name=$1 bin=$2
    shift 2
    "$bin" --web.listen-address=127.0.0.1:0 "$@" 2>"$tmp/$name.err" >/dev/null &
    pid=$!
    pids+=("$pid")
    addr=""
    for _ in $(seq 1 500); do # at most 5 s
        addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$tmp/$name.err" | head -n1)
        [ -n "$addr" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    echo "bench-http: $name did not start:" >&2
    cat "$tmp/$name.err" >&2
    exit 1
}

# status_field PID FIELD: a number from /proc/PID/status (kB for memory fields).
status_field() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# pss PID...: total proportional set size in kB.
pss() {
    local total=0 kb pid
    for pid in "$@"; do
        kb=$(awk '$1 == "Pss:" { print $2 }' "/proc/$pid/smaps_rollup")
        total=$((total + kb))
    done
    echo "$total"
}

# serving_pid PID TRIES: the process that serves, i.e. PID's child if it has one (tinyprom's
# supervisor forks it), else PID itself.
serving_pid() {
    local child="" i
    for i in $(seq 1 "$2"); do # at most $2 x 10 ms for the fork
        child=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{ print $1 }')
        [ -n "$child" ] && break
        sleep 0.01
    done
    echo "${child:-$1}"
}

# usage PID...: "CPU-ticks voluntary-switches" of these processes, all their threads.
# CPU from /proc/PID/stat (utime + stime, which keep the time of threads that ended);
# switches summed over /proc/PID/task/*/status (a thread that ended takes its count
# with it: every server here keeps its threads for the whole run).
usage() {
    local pid ticks=0 switches=0 t
    for pid in "$@"; do
        t=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
        ticks=$((ticks + t))
        t=$(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '$1 == "voluntary_ctxt_switches:" { s += $2 } END { print s + 0 }')
        switches=$((switches + t))
    done
    echo "$ticks $switches"
}

servers=(tinyprom plain)
bins=("$tinyprom_bin" "$plain_bin")
for peer in $wanted_peers; do
    case $peer in
        axum) peer_axum && servers+=(axum) && bins+=("$axum_bin") ;;
        go) peer_go && servers+=(go) && bins+=("$go_bin") ;;
        *) echo "bench-http: unknown peer $peer (axum, go)" >&2; exit 2 ;;
    esac
done
if [ -x "$static_bin" ]; then
    servers+=(static)
    bins+=("$static_bin")
else
    echo "bench-http: $static_bin not found (make static); measuring without it" >&2
fi
declare -A addrs server_pids top_pids
for i in "${!servers[@]}"; do
    start "${servers[$i]}" "${bins[$i]}"
    addrs[${servers[$i]}]=$addr
    top_pids[${servers[$i]}]=$pid
    case ${servers[$i]} in tinyprom | static) wait_fork=100 ;; *) wait_fork=1 ;; esac
    server_pids[${servers[$i]}]=$(serving_pid "$pid" "$wait_fork")
done
# tinyprom once more without process metrics, for /metrics only.
start tinyprom-noproc "$tinyprom_bin" --no-process-metrics
addrs[tinyprom-noproc]=$addr
top_pids[tinyprom-noproc]=$pid
server_pids[tinyprom-noproc]=$(serving_pid "$pid" 100)
sleep 0.2
for name in "${servers[@]}"; do
    # One request each first, so idle means "has served", not "never touched".
    curl -s --max-time 5 -o /dev/null "http://${addrs[$name]}/up" || true
    p=${server_pids[$name]} top=${top_pids[$name]}
    if [ "$p" = "$top" ]; then
        parent_rss=0 all_pss=$(pss "$p")
    else
        parent_rss=$(status_field "$top" VmRSS) all_pss=$(pss "$top" "$p")
    fi
    echo "$name $(status_field "$p" VmRSS) $(status_field "$p" Threads) $parent_rss $all_pss" >>"$tmp/idle"
done

# run SERVER ENDPOINT CONNECTIONS: one wrk run; appends "round server endpoint
# connections req/s p50 p99 threads mean cpu-us/request switches/request" with
# latencies in ms and the peak thread count seen during the run.
run() {
    local server=$1 endpoint=$2 connections=$3 p=${server_pids[$1]} top=${top_pids[$1]}
    local out="$tmp/wrk.out" max_threads=0 t procs=("${server_pids[$1]}")
    [ "$p" = "$top" ] || procs+=("$top")
    local before after
    before=$(usage "${procs[@]}")
    wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" --latency "http://${addrs[$server]}$endpoint" >"$out" &
    local wrk_pid=$!
    pids+=("$wrk_pid")
    while kill -0 "$wrk_pid" 2>/dev/null; do # ends with wrk, after $duration s
        t=$(status_field "$p" Threads || echo 0)
        [ "${t:-0}" -gt "$max_threads" ] && max_threads=$t
        sleep 0.2
    done
    wait "$wrk_pid"
    after=$(usage "${procs[@]}")
    awk -v r="$round" -v s="$server" -v e="$endpoint" -v c="$connections" -v th="$max_threads" \
        -v before="$before" -v after="$after" -v hz="$(getconf CLK_TCK)" '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /s$/) return v * 1000
            return v
        }
        $1 == "Latency" && $2 != "Distribution" { mean = ms($2) }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        $2 == "requests" && $3 == "in" { n = $1 }
        $0 ~ /Non-2xx|Socket errors/ { errors = errors " " $0 }
        END {
            split(before, b, " "); split(after, a, " ")
            cpu = n ? (a[1] - b[1]) / hz * 1e6 / n : 0
            sw = n ? (a[2] - b[2]) / n : 0
            printf "%s %s %s %s %s %s %s %s %s %.3f %.4f%s\n", r, s, e, c, rps, p50, p99, th, mean, cpu, sw, (errors ? " #" errors : "")
        }
    ' "$out" >>"$tmp/runs"
}

cut -d' ' -f1-3 /proc/loadavg >"$tmp/load-before"
echo "bench-http: ${servers[*]}; $rounds rounds of ${duration}s wrk runs (-t$wrk_threads) on ${loads[*]}, interleaved..." >&2
for round in $(seq 1 "$rounds"); do
    for load in "${loads[@]}"; do
        read -r endpoint connections <<<"$load"
        for name in "${servers[@]}" tinyprom-noproc; do
            # plain tiny_http answers /up only; the second tinyprom is for /metrics.
            [ "$name" = plain ] && [ "$endpoint" != /up ] && continue
            [ "$name" = tinyprom-noproc ] && [ "$endpoint" != /metrics ] && continue
            run "$name" "$endpoint" "$connections"
        done
    done
    echo "bench-http: round $round of $rounds done" >&2
done
for name in "${servers[@]}"; do
    echo "$name $(status_field "${server_pids[$name]}" VmHWM)" >>"$tmp/peak"
done
cut -d' ' -f1-3 /proc/loadavg >"$tmp/load-after"

# Start-up: spawn, then poll GET /up until a 200; the clock starts before the spawn.
python3 - "$starts" "${servers[@]}" -- "${bins[@]}" >"$tmp/startup" <<'PY'
import socket, subprocess, sys, time

samples = int(sys.argv[1])
args = sys.argv[2:]
names, binaries = args[: args.index("--")], args[args.index("--") + 1 :]

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def first_answer(binary):
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = start + 5
        while time.perf_counter() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if c.recv(12).startswith(b"HTTP/1.1 200"):
                        return (time.perf_counter() - start) * 1000
            except OSError:
                time.sleep(0.0002)
        raise SystemExit(f"{binary} gave no 200 on /up within 5 s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

for name, binary in zip(names, binaries):
    times = sorted(first_answer(binary) for _ in range(samples))
    print(name, times[len(times) // 2], times[0], times[-1])
PY

# 5,000 idle keep-alive connections held against a fresh tinyprom.
ulimit -n $((idle_connections * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$tinyprom_bin" --web.listen-address=127.0.0.1:0 --web.max-connections=$((idle_connections + 1000)) \
    --web.read-timeout=60s 2>"$tmp/idle-server.err" >/dev/null &
idle_top=$!
pids+=("$idle_top")
for _ in $(seq 1 500); do
    idle_addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$tmp/idle-server.err" | head -n1)
    [ -n "$idle_addr" ] && break
    sleep 0.01
done
idle_pid=$(serving_pid "$idle_top" 100)
python3 - "$idle_addr" "$idle_pid" "$idle_connections" >"$tmp/idle-flood" <<'PY'
import socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
pid, wanted = sys.argv[2], int(sys.argv[3])
request = b"GET /up HTTP/1.1\r\nHost: b\r\n\r\n"

def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

held = []
for _ in range(wanted):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(request)
    if not s.recv(4096).startswith(b"HTTP/1.1 200"):
        raise SystemExit("no 200 while opening the idle connections")
    held.append(s)
time.sleep(0.5)
rss, threads = status("VmRSS"), status("Threads")
latencies = []
for _ in range(500):
    t0 = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=5) as c:
        c.sendall(b"GET /up HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        c.recv(4096)
    latencies.append((time.perf_counter() - t0) * 1000)
latencies.sort()
still = sum(1 for s in held[:100] if not s.sendall(request) and s.recv(4096).startswith(b"HTTP/1.1 200"))
print(len(held), rss, threads, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)],
      status("VmHWM"), still)
PY
kill "$idle_top" 2>/dev/null || true

python3 - "$tmp" "$wrk_threads" "$duration" "$rounds" <<'PY'
import os, statistics, sys

tmp, wrk_threads, duration, rounds = sys.argv[1:]
runs = {}  # (server, load) -> [(rps, p50, p99, threads, in service, cpu us, switches, conns)]
by_round = {}  # (server, load) -> {round: (rps, p99, cpu us, switches)}
notes = []
loads = []
servers = []
for line in open(os.path.join(tmp, "runs")):
    head, _, note = line.partition("#")
    rnd, server, endpoint, conns, rps, p50, p99, threads, mean, cpu, sw = head.split()
    load = f"{endpoint} -c{conns}"
    loads += [load] if load not in loads else []
    servers += [server] if server not in servers else []
    runs.setdefault((server, load), []).append(
        (float(rps), float(p50), float(p99), int(threads), float(rps) * float(mean) / 1000,
         float(cpu), float(sw), int(conns)))
    by_round.setdefault((server, load), {})[rnd] = (float(rps), float(p99), float(cpu), float(sw))
    if note.strip():
        notes.append(f"{server} {load}: {note.strip()}")

def med(xs):
    return statistics.median(xs)

def ratios(server, load, field, base="axum"):
    """This server's figure over the base's in the same round, for every round."""
    mine, theirs = by_round.get((server, load), {}), by_round.get((base, load), {})
    return sorted(mine[r][field] / theirs[r][field] for r in mine if r in theirs and theirs[r][field] > 0)

def ratio(server, load, field, base="axum"):
    """The median over rounds of this server's figure over the base's in the same round."""
    rs = ratios(server, load, field, base)
    return med(rs) if rs else None

def x(v):
    return f"{v:.2f}x" if v is not None else "–"

cpu = "unknown CPU"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
print("## tinyprom HTTP benchmark\n")
load_avg = [open(os.path.join(tmp, f)).read().strip() for f in ("load-before", "load-after")]
print(f"Machine: {cpu}, {os.cpu_count()} CPUs, wrk and the servers on the same CPUs; "
      f"load average {load_avg[0]} before and {load_avg[1]} after. wrk -t{wrk_threads}, "
      f"{rounds} interleaved rounds of {duration} s runs (median, min–max). CPU: the server's "
      "utime+stime per request; switches: its voluntary context switches per request; "
      "÷ axum: the median of the per-round ratios to axum.\n")
print("| load | server | req/s | min–max | ÷ axum | p50 ms | p99 ms | p99 ÷ axum | CPU µs/req | CPU ÷ axum "
      "| switches/req | switches ÷ axum | threads under load | connections in service |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for load in loads:
    for server in servers:
        rs = runs.get((server, load))
        if not rs:
            continue
        rps = [r[0] for r in rs]
        print(f"| {load} | {server} | {med(rps):,.0f} | {min(rps):,.0f}–{max(rps):,.0f} | "
              f"{x(ratio(server, load, 0))} | {med([r[1] for r in rs]):.3f} | "
              f"{med([r[2] for r in rs]):.3f} | {x(ratio(server, load, 1))} | "
              f"{med([r[5] for r in rs]):.1f} | {x(ratio(server, load, 2))} | "
              f"{med([r[6] for r in rs]):.3f} | {x(ratio(server, load, 3))} | "
              f"{max(r[3] for r in rs)} | {med([r[4] for r in rs]):.1f} of {rs[0][7]} |")
for note in notes:
    print(f"\nNote: {note}")
print("\nConnections in service: req/s × wrk's mean latency (Little's law). wrk times only the "
      "requests that were answered; a server that serves all N connections has a mean "
      "latency of N ÷ req/s, and its p99 cannot be far below that.")

idle = {l.split()[0]: l.split()[1:] for l in open(os.path.join(tmp, "idle"))}
peak = {l.split()[0]: l.split()[1] for l in open(os.path.join(tmp, "peak"))}
mib = lambda kb: f"{int(kb) / 1024:.2f} MiB"
start = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(os.path.join(tmp, "startup"))}
print("\n| server | idle RSS | peak RSS under load | idle threads | supervisor RSS | PSS, all processes, idle | start-up to first 200 on /up, ms (min–max) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in idle:
    rss, threads, parent_rss, all_pss = idle[name]
    s = start[name]
    parent = mib(parent_rss) if int(parent_rss) else "none"
    print(f"| {name} | {mib(rss)} | {mib(peak[name])} | {threads} | {parent} | {mib(all_pss)} | "
          f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f}) |")

print()
scrape = ratio("tinyprom", "/metrics -c4", 2, base="tinyprom-noproc")
if scrape is not None:
    with_pm = med([r[5] for r in runs[("tinyprom", "/metrics -c4")]])
    without = med([r[5] for r in runs[("tinyprom-noproc", "/metrics -c4")]])
    each = ratios("tinyprom", "/metrics -c4", 2, base="tinyprom-noproc")
    print(f"Process metrics: a tinyprom scrape costs {scrape:.2f}x the server CPU with them "
          f"as without (--no-process-metrics), the median of per-round ratios "
          f"({', '.join(f'{r:.2f}x' for r in each)}; target ≤ 1.3x); medians over the rounds "
          f"{with_pm:.1f} µs with them, {without:.1f} µs without.\n")
targets = [("/up -c64", 0, "throughput", "≥ 0.85x"), ("/up -c16", 0, "throughput", "≥ 0.70x"),
           ("/up -c64", 2, "server CPU per request", "≤ 1.3x"), ("/up -c64", 1, "p99", "≤ 1.0x")]
if ("axum", "/up -c64") in runs:
    print("tinyprom ÷ axum, medians of per-round ratios: " + "; ".join(
        f"{load} {what} {x(ratio('tinyprom', load, field))} (target {target})"
        for load, field, what, target in targets) + ".\n")
for name in ("tinyprom", "static"):
    if (name, "/up -c64") not in runs or ("plain", "/up -c64") not in runs:
        continue
    up = med([r[0] for r in runs[(name, "/up -c64")]])
    p99 = med([r[2] for r in runs[(name, "/up -c64")]])
    print(f"{name}: /up -c64 throughput is {x(ratio(name, '/up -c64', 0, base='plain'))} the plain "
          "tiny_http server's (median of per-round ratios; target ≥ 0.7x: the gate relays every "
          f"request through a private socket); p99 {p99:.2f} ms (target ≤ 3 ms); peak RSS "
          f"{mib(peak[name])} (target ≤ 5 MiB); /up at {up:,.0f} req/s is {up / 1300:.0f}x the "
          "seed article's Flask app (about 1,300 req/s on this kind of machine, the issue's "
          "figure; target ≥ 30x).\n")

held, rss, threads, p50, p99, hwm, still = open(os.path.join(tmp, "idle-flood")).read().split()
print(f"Idle keep-alive connections: {int(held):,} held open (each answered once) by the "
      f"release binary: serving process RSS {mib(rss)} (peak {mib(hwm)}; target ≤ 32 MiB), "
      f"{threads} threads (target ≤ 32); 500 fresh-connection GET /up meanwhile: p50 "
      f"{float(p50):.2f} ms, p99 {float(p99):.2f} ms (target < 20 ms); {still} of the first "
      "100 held connections answered again afterwards.")
PY
