#!/usr/bin/env bash
# make slow-test: slowhttptest's three slow attacks against the release binary, each
# while a probe checks that a fresh client is still served.
#
#   slowloris   (-H): heads sent a line every few seconds, never finished
#   slow body   (-B): a POST whose body trickles in
#   slow read   (-X): requests whose responses are read a few bytes at a time
#
# For each: slowhttptest's own verdict (its final "Exit status" and whether it ever
# saw the service unavailable), and the probe's count of fresh GET /up answered within
# 1 s out of one per second. It fails if a probe goes unanswered or the serving process
# was restarted. Settings: SLOW_SECONDS per attack [20], SLOW_CONNECTIONS [500],
# TINYPROM_BIN [target/release/tinyprom].
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SLOW_SECONDS:-20}
connections=${SLOW_CONNECTIONS:-500}
bin=${TINYPROM_BIN:-target/release/tinyprom}
for tool in slowhttptest curl; do
    command -v "$tool" >/dev/null || { echo "slow-test: $tool is missing (make deps)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "slow-test: $bin not found (make build)" >&2; exit 1; }

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 4096 2>/dev/null || true
"$bin" --web.listen-address=127.0.0.1:0 --web.read-timeout=5s \
    --web.max-connections=$((connections * 2)) 2>"$work/stderr" >/dev/null &
pid=$!
addr=""
for _ in $(seq 1 500); do # at most 5 s
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/stderr" | head -n1)
    [ -n "$addr" ] && break
    sleep 0.01
done
[ -n "$addr" ] || { echo "slow-test: tinyprom did not start" >&2; cat "$work/stderr" >&2; exit 1; }
echo "slow-test: tinyprom on $addr; $connections connections per attack, ${seconds}s each"

failures=0
attack() { # attack NAME SLOWHTTPTEST-ARGS...
    local name=$1
    shift
    slowhttptest "$@" -c "$connections" -l "$seconds" -u "http://$addr/up" \
        >"$work/$name.out" 2>&1 &
    local tester=$! answered=0 probes=0
    sleep 2
    while kill -0 "$tester" 2>/dev/null && [ "$probes" -lt $((seconds + 10)) ]; do
        probes=$((probes + 1))
        if curl -s -m 1 -o /dev/null "http://$addr/up"; then
            answered=$((answered + 1))
        fi
        sleep 1
    done
    wait "$tester" || true
    local verdict unavailable
    sed 's/\x1b\[[0-9;]*m//g' "$work/$name.out" >"$work/$name.txt"
    verdict=$(grep -a 'Exit status' "$work/$name.txt" | tail -n1 | sed 's/.*Exit status: *//')
    unavailable=$(grep -ac 'service available:.*NO' "$work/$name.txt" || true)
    echo "slow-test: $name: slowhttptest: \"${verdict:-no verdict}\"; it saw the service unavailable in $unavailable of its reports; fresh /up answered within 1 s: $answered of $probes"
    if [ "$answered" -ne "$probes" ] || [ "$probes" -eq 0 ]; then
        failures=$((failures + 1))
    fi
}
attack slowloris -H -i 5 -r 200 -t GET -x 24 -p 3
attack slow-body -B -i 5 -r 200 -s 8192 -t POST -x 10 -p 3
attack slow-read -X -r 200 -w 512 -y 1024 -n 5 -z 32 -k 3 -p 3

restarts=$(curl -s -m 2 "http://$addr/metrics" | awk '$1 == "tinyprom_restarts_total" { print $2 }')
echo "slow-test: tinyprom_restarts_total ${restarts:-unknown}"
[ "${restarts:-1}" = "0" ] || failures=$((failures + 1))
if [ "$failures" -ne 0 ]; then
    echo "slow-test: FAIL ($failures)"
    exit 1
fi
echo "slow-test: PASS: every fresh client was served during all three attacks, no restart"
