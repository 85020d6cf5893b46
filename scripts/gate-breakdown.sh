#!/usr/bin/env bash
# Where a request's cost goes in the serving process, by thread role, under wrk on /up.
# The release binary serves with --no-supervisor, so the serving process is the one
# started here and its main thread is the gate's loop.
#
#   scripts/gate-breakdown.sh threads [CONNECTIONS] [SECONDS]
#       CPU time (utime + stime) and voluntary and involuntary context switches per
#       request of each role (gate, tiny_http's accept thread, tiny_http's connection
#       threads, the workers), from /proc/PID/task/*/{stat,status} before and after
#       one wrk run; and how busy the machine's CPUs were meanwhile (/proc/stat).
#   scripts/gate-breakdown.sh strace [CONNECTIONS] [SECONDS]
#       system calls per request of each role: strace -f follows every thread during
#       one wrk run (strace slows the server a lot, so calls per request, not time).
#   scripts/gate-breakdown.sh callgrind [CONNECTIONS] [SECONDS]
#       instructions per request of each thread under valgrind --tool=callgrind
#       --separate-threads=yes (valgrind runs one thread at a time, so how requests
#       batch differs from a native run), and the gate thread's costliest functions
#       (inclusive).
#
# A thread's role is told by its name (tinyprom-worker-N), by being the main thread
# (the gate), or, for tiny_http's unnamed threads, by the system call it waits in once
# warm and idle: accept (its accept thread) or anything else (a connection thread:
# one per private connection from the gate, plus idle pool threads).
# Defaults: 64 connections, 5 s (callgrind: 16 connections, 10 s). wrk -t2.
# TINYPROM_BIN [$CARGO_TARGET_DIR or target, then /release/tinyprom], SKIP_BUILD=1 to use it as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-threads}
case $mode in
    threads | strace) connections=${2:-64} seconds=${3:-5} ;;
    callgrind) connections=${2:-16} seconds=${3:-10} ;;
    *) echo "usage: $0 threads|strace|callgrind [CONNECTIONS] [SECONDS]" >&2; exit 2 ;;
esac
bin=${TINYPROM_BIN:-${CARGO_TARGET_DIR:-target}/release/tinyprom}
for tool in wrk python3 $([ "$mode" = threads ] || echo "$mode" | sed 's/callgrind/valgrind/'); do
    command -v "$tool" >/dev/null || { echo "gate-breakdown: $tool is missing" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bin tinyprom
fi

tmp=$(mktemp -d)
server=""
cleanup() {
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    [ -z "$server" ] || wait "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

case $mode in
    threads) "$bin" --web.listen-address=127.0.0.1:0 --no-supervisor 2>"$tmp/err" >/dev/null & ;;
    strace) strace -f -qq -o "$tmp/trace" "$bin" --web.listen-address=127.0.0.1:0 --no-supervisor 2>"$tmp/err" >/dev/null & ;;
    callgrind) valgrind -q --tool=callgrind --separate-threads=yes --callgrind-out-file="$tmp/cg.%p" \
        "$bin" --web.listen-address=127.0.0.1:0 --no-supervisor 2>"$tmp/err" >/dev/null & ;;
esac
server=$!
addr=""
for _ in $(seq 1 600); do # at most 30 s (valgrind starts slowly)
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$tmp/err" | head -n1)
    [ -n "$addr" ] && break
    sleep 0.05
done
[ -n "$addr" ] || { echo "gate-breakdown: the server did not start:" >&2; cat "$tmp/err" >&2; exit 1; }
# The serving process: the one started here, or strace's child.
pid=$server
[ "$mode" != strace ] || pid=$(awk '{ print $1 }' "/proc/$server/task/$server/children")

# Warm up (lanes connected, pools grown), then let every thread settle where it waits.
wrk -t2 -c"$connections" -d1s "http://$addr/up" >/dev/null
sleep 0.5
roles() {
    local t tid
    for t in /proc/"$pid"/task/*; do
        tid=${t##*/}
        if [ "$tid" = "$pid" ]; then
            echo "$tid gate"
        elif grep -q '^tinyprom-worker' "$t/comm"; then
            echo "$tid worker"
        else
            case $(awk '{ print $1 }' "$t/syscall") in
                43 | 288) echo "$tid accept" ;; # accept, accept4
                *) echo "$tid connection" ;;
            esac
        fi
    done
}
roles >"$tmp/roles"
snapshot() { # tid utime stime voluntary involuntary
    local t
    for t in /proc/"$pid"/task/*; do
        echo "${t##*/} $(sed 's/.*) //' "$t/stat" | awk '{ print $12, $13 }') $(awk '$1 == "voluntary_ctxt_switches:" { v = $2 } $1 == "nonvoluntary_ctxt_switches:" { n = $2 } END { print v, n }' "$t/status")"
    done
}
[ "$mode" != threads ] || { snapshot >"$tmp/before"; head -n1 /proc/stat >"$tmp/cpu-before"; }
[ "$mode" != strace ] || wc -l <"$tmp/trace" >"$tmp/trace-start"
wrk -t2 -c"$connections" -d"${seconds}s" "http://$addr/up" >"$tmp/wrk"
[ "$mode" != threads ] || { snapshot >"$tmp/after"; head -n1 /proc/stat >"$tmp/cpu-after"; }
requests=$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$tmp/wrk")
rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$tmp/wrk")
[ "$mode" != strace ] || wc -l <"$tmp/trace" >"$tmp/trace-end"
kill "$pid"
wait "$server" 2>/dev/null || true
server=""

echo "gate-breakdown $mode: wrk -t2 -c$connections -d${seconds}s on /up: $requests requests, $rps req/s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$mode" "$tmp" "$requests" "$(getconf CLK_TCK)" <<'PY'
import collections, glob, os, re, subprocess, sys

mode, tmp, requests, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
role = dict(l.split() for l in open(os.path.join(tmp, "roles")))
order = ["gate", "accept", "connection", "worker"]
count = collections.Counter(role.values())

if mode == "threads":
    def read(name):
        return {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(os.path.join(tmp, name))}
    before, after = read("before"), read("after")
    sums = collections.defaultdict(lambda: [0, 0, 0, 0])
    for tid, a in after.items():
        b = before.get(tid, [0, 0, 0, 0])
        r = role.get(tid, "connection")
        for i in range(4):
            sums[r][i] += a[i] - b[i]
    cpu = [[int(x) for x in open(os.path.join(tmp, f)).read().split()[1:]] for f in ("cpu-before", "cpu-after")]
    delta = [a - b for a, b in zip(cpu[1], cpu[0])]
    busy = 1 - (delta[3] + delta[4]) / sum(delta)
    print("| role | threads | CPU µs/request | of it user | of it system | voluntary switches/request | involuntary switches/request |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    us = lambda ticks: f"{ticks / hz * 1e6 / requests:.2f}"
    total = [0, 0, 0, 0]
    for r in order + ["all"]:
        s = total if r == "all" else sums[r]
        if r != "all":
            total = [t + x for t, x in zip(total, s)]
        threads = len(role) if r == "all" else count[r]
        print(f"| {r} | {threads} | {us(s[0] + s[1])} | {us(s[0])} | {us(s[1])} | "
              f"{s[2] / requests:.3f} | {s[3] / requests:.3f} |")
    print(f"\nThe machine's CPUs were {busy * 100:.0f}% busy during the run (wrk included).")
elif mode == "strace":
    start, end = (int(open(os.path.join(tmp, f)).read()) for f in ("trace-start", "trace-end"))
    calls = collections.defaultdict(collections.Counter)
    line_re = re.compile(r"^(\d+)\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")
    with open(os.path.join(tmp, "trace")) as f:
        for n, line in enumerate(f):
            if n < start or n >= end:
                continue
            if "resumed>" in line and "<..." in line:
                continue  # the second half of an interrupted call, counted at its start
            m = line_re.match(line)
            if m:
                calls[role.get(m.group(1), "connection")][m.group(2)] += 1
    print("| role | system calls/request | of which |")
    print("|---|---:|---|")
    for r in order:
        c = calls[r]
        top = ", ".join(f"{name} {k / requests:.2f}" for name, k in c.most_common(6))
        print(f"| {r} | {sum(c.values()) / requests:.2f} | {top} |")
    print(f"| all | {sum(sum(c.values()) for c in calls.values()) / requests:.2f} | |")
else:
    files = sorted(glob.glob(os.path.join(tmp, "cg.*")))
    per_role = collections.defaultdict(lambda: [0, 0, None])  # instructions, threads, busiest file
    for path in files:
        text = open(path, errors="replace").read()
        totals = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if not totals:
            continue
        pid_thread = re.search(r"-(\d+)$", path)
        thread = int(pid_thread.group(1)) if pid_thread else 1
        if thread == 1:
            r = "gate"
        elif "tinyprom::http::request::" in text or "worker" in text:
            r = "worker"
        elif "ClientConnection" in text:
            r = "connection"
        elif "accept" in text:
            r = "accept"
        else:
            r = "other"
        ir = int(totals.group(1))
        entry = per_role[r]
        entry[0] += ir
        entry[1] += 1
        if entry[2] is None or ir > entry[2][0]:
            entry[2] = (ir, path)
    print("| role | threads | instructions/request |")
    print("|---|---:|---:|")
    for r in order + ["other"]:
        if r in per_role:
            print(f"| {r} | {per_role[r][1]} | {per_role[r][0] / requests:,.0f} |")
    print(f"| all | {sum(e[1] for e in per_role.values())} | "
          f"{sum(e[0] for e in per_role.values()) / requests:,.0f} |")

    def costliest(role, path, lines):
        out = subprocess.run(["callgrind_annotate", "--inclusive=yes", path],
                             capture_output=True, text=True).stdout
        print(f"\nThe {role} thread's costliest functions (the busiest thread of its role), "
              "inclusive, instructions per request of all requests:\n")
        shown, total = 0, None
        for line in out.splitlines():
            m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)(?: \[.*\])?$", line)
            if not m or shown >= lines:
                continue
            ir = int(m.group(1).replace(",", ""))
            total = total or ir
            # Leave out the wrappers around the thread's loop (main, thread start).
            if ir > total * 0.97:
                continue
            name = re.sub(r"^[^:]*:(?!:)", "", m.group(2))
            print(f"    {ir / requests:>10,.0f}  {name[:120]}")
            shown += 1

    for r, lines in (("gate", 30), ("connection", 12), ("worker", 12)):
        if r in per_role:
            costliest(r, per_role[r][2][1], lines)
PY
