#!/usr/bin/env bash
# make bench-http: tinyprom's HTTP server against a plain tiny_http server with the
# same worker pool and no metrics (examples/plain_tiny_http.rs), on loopback.
#
# wrk runs are interleaved (plain /up, tinyprom /up, tinyprom /metrics, then again)
# so drift on a shared machine hits every column alike; the tables show medians with
# the range. Also measured: idle RSS, peak RSS and threads under load, and the time
# from spawning each server to its first 200 on /up. tinyprom serves from a child of
# its supervisor process: RSS and threads are the serving child's, and the idle table
# adds the supervisor's RSS and the proportional set size (PSS) of both together,
# which is what they cost a container (pages they share are counted once).
#
# The statically linked container binary (STATIC_BIN, from `make static`) is measured
# as a third server when it exists.
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
# Settings (environment): BENCH_HTTP_DURATION seconds per wrk run [4],
# BENCH_HTTP_ROUNDS [5], BENCH_HTTP_CONNECTIONS [64], BENCH_HTTP_THREADS wrk threads
# [2], BENCH_HTTP_STARTS start-up samples [20], TINYPROM_BIN [target/release/tinyprom],
# PLAIN_BIN [target/release/examples/plain_tiny_http], STATIC_BIN [dist/tinyprom],
# SKIP_BUILD=1 to use the binaries as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_HTTP_DURATION:-4}
rounds=${BENCH_HTTP_ROUNDS:-5}
connections=${BENCH_HTTP_CONNECTIONS:-64}
wrk_threads=${BENCH_HTTP_THREADS:-2}
starts=${BENCH_HTTP_STARTS:-20}
idle_connections=${BENCH_HTTP_IDLE:-5000}
tinyprom_bin=${TINYPROM_BIN:-target/release/tinyprom}
plain_bin=${PLAIN_BIN:-target/release/examples/plain_tiny_http}
static_bin=${STATIC_BIN:-dist/tinyprom}

for tool in wrk python3; do
    command -v "$tool" >/dev/null || { echo "bench-http: $tool is missing (make deps)" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin tinyprom --example plain_tiny_http
fi

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

# start NAME BIN: runs BIN on a free loopback port; sets $addr and $pid.
start() {
    local name=$1 bin=$2
    "$bin" --web.listen-address=127.0.0.1:0 2>"$tmp/$name.err" >/dev/null &
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

# serving_pid PID: the process that serves, i.e. PID's child if it has one (tinyprom's
# supervisor forks it), else PID itself (the plain server).
serving_pid() {
    local child=""
    for _ in $(seq 1 100); do # at most 1 s for the fork
        child=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{ print $1 }')
        [ -n "$child" ] && break
        sleep 0.01
    done
    echo "${child:-$1}"
}

servers=(plain tinyprom)
bins=("$plain_bin" "$tinyprom_bin")
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
    server_pids[${servers[$i]}]=$(serving_pid "$pid")
done
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

# run SERVER ENDPOINT URL: one wrk run; appends "round server endpoint req/s p50 p99
# threads mean" with latencies in ms and the peak thread count seen during the run.
run() {
    local server=$1 endpoint=$2 url=$3 p=${server_pids[$1]}
    local out="$tmp/wrk.out" max_threads=0 t
    wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" --latency "$url" >"$out" &
    local wrk_pid=$!
    pids+=("$wrk_pid")
    while kill -0 "$wrk_pid" 2>/dev/null; do # ends with wrk, after $duration s
        t=$(status_field "$p" Threads || echo 0)
        [ "${t:-0}" -gt "$max_threads" ] && max_threads=$t
        sleep 0.2
    done
    wait "$wrk_pid"
    awk -v r="$round" -v s="$server" -v e="$endpoint" -v th="$max_threads" '
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
        $0 ~ /Non-2xx|Socket errors/ { errors = errors " " $0 }
        END { printf "%s %s %s %s %s %s %s %s%s\n", r, s, e, rps, p50, p99, th, mean, (errors ? " #" errors : "") }
    ' "$out" >>"$tmp/runs"
}

cut -d' ' -f1-3 /proc/loadavg >"$tmp/load-before"
echo "bench-http: $rounds rounds of ${duration}s wrk runs (-t$wrk_threads -c$connections), interleaved..." >&2
for round in $(seq 1 "$rounds"); do
    for name in "${servers[@]}"; do
        run "$name" /up "http://${addrs[$name]}/up"
    done
    for name in "${servers[@]}"; do
        [ "$name" = plain ] || run "$name" /metrics "http://${addrs[$name]}/metrics"
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
idle_pid=$(serving_pid "$idle_top")
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

python3 - "$tmp" "$connections" "$wrk_threads" "$duration" "$rounds" <<'PY'
import os, statistics, sys

tmp, connections, wrk_threads, duration, rounds = sys.argv[1:]
runs = {}
by_round = {}
notes = []
for line in open(os.path.join(tmp, "runs")):
    head, _, note = line.partition("#")
    rnd, server, endpoint, rps, p50, p99, threads, mean = head.split()
    runs.setdefault((server, endpoint), []).append(
        (float(rps), float(p50), float(p99), int(threads), float(rps) * float(mean) / 1000))
    by_round.setdefault((server, endpoint), {})[rnd] = float(rps)
    if note.strip():
        notes.append(f"{server} {endpoint}: {note.strip()}")

def med(xs):
    return statistics.median(xs)

cpu = "unknown CPU"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
print("## tinyprom HTTP benchmark\n")
load = [open(os.path.join(tmp, f)).read().strip() for f in ("load-before", "load-after")]
print(f"Machine: {cpu}, {os.cpu_count()} CPUs, wrk and the server on the same CPUs; "
      f"load average {load[0]} before and {load[1]} after. wrk -t{wrk_threads} "
      f"-c{connections}, {rounds} interleaved runs of {duration} s each (median, min–max).\n")
print("| server | endpoint | req/s | min–max | p50 ms | p99 ms | threads under load | connections in service |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for (server, endpoint), rs in runs.items():
    rps = [r[0] for r in rs]
    print(f"| {server} | {endpoint} | {med(rps):,.0f} | {min(rps):,.0f}–{max(rps):,.0f} | "
          f"{med([r[1] for r in rs]):.3f} | {med([r[2] for r in rs]):.3f} | {max(r[3] for r in rs)} | "
          f"{med([r[4] for r in rs]):.1f} of {connections} |")
for note in notes:
    print(f"\nNote: {note}")
print(f"\nConnections in service: req/s × wrk's mean latency (Little's law). wrk times only the "
      f"requests that were answered; a server that serves all {connections} connections has a "
      f"mean latency of {connections} ÷ req/s ({int(connections) / 30:.2f} ms at 30,000 req/s), "
      "and its p99 cannot be far below that.")

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

# Each round's tinyprom run is compared with the plain run just before it, so load
# that comes and goes on a shared machine cancels out of the ratio.
plain = by_round[("plain", "/up")]
print()
for name in ("tinyprom", "static"):
    if (name, "/up") not in runs:
        continue
    mine = by_round[(name, "/up")]
    ratios = sorted(mine[r] / plain[r] for r in mine if r in plain)
    up = med([r[0] for r in runs[(name, "/up")]])
    p99 = med([r[2] for r in runs[(name, "/up")]])
    print(f"{name}: /up throughput is {med(ratios):.2f}x the plain tiny_http server's "
          f"(median of per-round ratios, range {ratios[0]:.2f}x to {ratios[-1]:.2f}x; "
          f"target ≥ 0.7x: the gate relays every request through a private socket); "
          f"p99 {p99:.2f} ms (target ≤ 3 ms); peak RSS {mib(peak[name])} (target ≤ 5 MiB); "
          f"/up at {up:,.0f} req/s is {up / 1300:.0f}x the seed article's Flask app (about "
          "1,300 req/s on this kind of machine, the issue's figure; target ≥ 30x).\n")

held, rss, threads, p50, p99, hwm, still = open(os.path.join(tmp, "idle-flood")).read().split()
print(f"Idle keep-alive connections: {int(held):,} held open (each answered once) by the "
      f"release binary: serving process RSS {mib(rss)} (peak {mib(hwm)}; target ≤ 32 MiB), "
      f"{threads} threads (target ≤ 32); 500 fresh-connection GET /up meanwhile: p50 "
      f"{float(p50):.2f} ms, p99 {float(p99):.2f} ms (target < 20 ms); {still} of the first "
      "100 held connections answered again afterwards.")
PY
