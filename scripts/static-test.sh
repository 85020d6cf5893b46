#!/usr/bin/env bash
# make static-test: the static binary must run alone in an empty root directory as an
# unprivileged user, which is what a `FROM scratch` image with `USER 65534` gives it.
#
# Copies STATIC_BIN [dist/tinyprom] into an empty temporary directory, starts it there
# with `chroot --userspec=65534:65534` on a loopback port, and checks: it runs as uid
# 65534; /up answers 200; /metrics serves the RED, scrape and build metrics but no
# process_* (there is no /proc in the empty root); `--health-check` from inside the
# root exits 0 against it and 1 against a closed port; SIGTERM stops it cleanly. The
# binary's size against the issue's 1.6 MiB budget is reported, not enforced.
# chroot needs root: anyone else gets a clear skip message and exit status 0.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${STATIC_BIN:-dist/tinyprom}
if [ "$(id -u)" -ne 0 ]; then
    echo "static-test: SKIPPED (chroot needs root; run as root to test $bin in an empty root)"
    exit 0
fi
for tool in chroot curl; do
    command -v "$tool" >/dev/null || { echo "static-test: $tool is missing" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "static-test: $bin not found (make static)" >&2; exit 1; }
if ldd "$bin" >/dev/null 2>&1; then
    echo "static-test: FAIL: $bin is dynamically linked:" >&2
    ldd "$bin" >&2
    exit 1
fi

work=$(mktemp -d)
root="$work/root"
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

mkdir "$root"
cp "$bin" "$root/tinyprom"
chmod 755 "$root" "$root/tinyprom"
. scripts/checks.sh

chroot --userspec=65534:65534 "$root" /tinyprom --web.listen-address=127.0.0.1:0 \
    2>"$work/stderr" >/dev/null &
pid=$!
addr=""
for _ in $(seq 1 500); do # at most 5 s
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/stderr" | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
if [ -z "$addr" ]; then
    echo "static-test: FAIL: the binary did not start in the empty root:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
echo "static-test: $bin ($(stat -c %s "$bin") bytes) listening on $addr in an empty root"

check "runs as uid 65534" grep -Eq '^Uid:[[:space:]]+65534[[:space:]]' "/proc/$pid/status"
# The supervisor forks its serving child without exec, so it works with nothing to
# exec; the child must be there and unprivileged too.
child=""
for _ in $(seq 1 100); do # at most 1 s
    child=$(awk '{ print $1 }' "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    [ -n "$child" ] && break
    sleep 0.01
done
check "the serving child runs, as uid 65534" \
    grep -Eq '^Uid:[[:space:]]+65534[[:space:]]' "/proc/${child:-0}/status"
check "the root holds nothing but the binary" test "$(ls -A "$root")" = tinyprom

up=$(curl -s --max-time 5 -w ' %{http_code}' "http://$addr/up" || true)
check "/up answers 200 'I am running!'" test "$up" = "I am running! 200"

curl -s --max-time 5 -o "$work/metrics" -w '%{http_code}' "http://$addr/metrics" >"$work/code" || true
check "/metrics answers 200" test "$(cat "$work/code")" = 200
for family in http_request_duration_seconds http_requests_in_flight tinyprom_scrapes_total tinyprom_build_info; do
    check "/metrics has $family" grep -q "^# TYPE $family " "$work/metrics"
done
check "/metrics counted the /up request" \
    grep -q '^http_request_duration_seconds_count{method="GET",url="/up",code="200"} 1$' "$work/metrics"
check "/metrics has no process_* without /proc" bash -c "! grep -q '^process_' '$work/metrics'"

check "--health-check exits 0 against the running server" \
    chroot --userspec=65534:65534 "$root" /tinyprom --health-check "--web.listen-address=$addr"
# A port that was free a moment ago: bind to 0, read it, close.
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
set +e
chroot --userspec=65534:65534 "$root" /tinyprom --health-check \
    "--web.listen-address=127.0.0.1:$closed" 2>/dev/null
status=$?
set -e
check "--health-check exits 1 against a closed port" test "$status" -eq 1

kill -TERM "$pid"
stopped=""
for _ in $(seq 1 500); do # at most 5 s
    if ! kill -0 "$pid" 2>/dev/null; then
        stopped=yes
        break
    fi
    sleep 0.01
done
status=1
if [ -n "$stopped" ]; then
    set +e
    wait "$pid"
    status=$?
    set -e
fi
pid=""
check "SIGTERM stops it with status 0 within 5 s" test "$status" -eq 0

if [ "$failures" -ne 0 ]; then
    echo "static-test: $failures check(s) failed; stderr of the server:"
    cat "$work/stderr"
    exit 1
fi
echo "static-test: all checks passed"
size=$(stat -c %s "$bin")
budget=$((16 * 1024 * 1024 / 10)) # 1.6 MiB, the issue's target: reported, not enforced
if [ "$size" -le "$budget" ]; then
    echo "static-test: size $size bytes, within the 1.6 MiB budget ($budget) by $((budget - size))"
else
    echo "static-test: NOTE: size $size bytes is over the 1.6 MiB budget ($budget) by $((size - budget))"
fi
