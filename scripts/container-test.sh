#!/usr/bin/env bash
# make container-test: the image built and run on a real Docker engine, as users run it.
#
# 1. An engine: the one DOCKER_HOST (or the default socket) names when it answers;
#    otherwise, as root, a dockerd started here with its data, state, socket and log in
#    a temporary directory, stopped again at the end (also on failure or Ctrl-C).
# 2. The image, offline: Dockerfile.runtime around the binary `make static` left in
#    dist/ (no build stage, so nothing to pull, with any Docker client: see
#    Dockerfile.runtime). Its final stage is checked to be Dockerfile's, line for line.
# 3. `docker run --read-only --cap-drop ALL --security-opt no-new-privileges
#    --memory 32m --cpus 0.5`, published on 127.0.0.1 only. Checks: the engine reports
#    it healthy through the image's own HEALTHCHECK; /up and /metrics answer through
#    the published port; a real Prometheus scrapes it there (up == 1, no scrape error);
#    every process runs as uid 65534; a bounded wrk load ends with OOMKilled false;
#    `docker stop` ends it with exit code 0 well under the stop timeout.
# 4. docker-compose.yml: `docker-compose config` accepts it, and its web-app service
#    (only that one: the others need a registry pull) comes up healthy and goes down.
#
# Reports the image size against the 1.7 MB budget (fails over it), the time to
# healthy, the memory under the limit, the stop time and the test's duration.
#
# Env: STATIC_BIN [dist/tinyprom]; TINYPROM_SKIP_DOCKER=1 skips the test knowingly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${TINYPROM_SKIP_DOCKER:-} == 1 ]]; then
    echo "container-test: SKIPPED (TINYPROM_SKIP_DOCKER=1): no image was built or run"
    exit 0
fi

started_at=$(date +%s.%N)
bin=${STATIC_BIN:-dist/tinyprom}
image_budget=1700000 # bytes: 1.7 MB
stop_timeout=10      # seconds docker stop waits before SIGKILL
load_seconds=5

for tool in docker docker-compose curl wrk prometheus python3; do
    command -v "$tool" >/dev/null || { echo "container-test: $tool is missing (make deps)" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "container-test: $bin not found (make static)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tinyprom-ct.XXXXXX")
tag="tinyprom-container-test:$$"
container="tinyprom-ct-$$"
project="tinyprom-ct-$$"
dockerd_pid=""
bridge_was_there=""
prometheus_pid=""
compose_up=""
image_built=""

elapsed() { # seconds since $1 (a date +%s.%N), one decimal
    awk -v s="$1" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'
}

compose() {
    TINYPROM_IMAGE=$tag TINYPROM_PUBLISH=127.0.0.1::8000 \
        docker-compose --ansi never -f docker-compose.yml -p "$project" "$@"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n $prometheus_pid ]]; then
        kill "$prometheus_pid" 2>/dev/null || true
        wait "$prometheus_pid" 2>/dev/null || true
    fi
    if [[ -n $compose_up ]]; then
        compose down --timeout 5 >/dev/null 2>&1 || true
    fi
    docker rm -f "$container" >/dev/null 2>&1 || true
    if [[ -n $image_built ]]; then
        docker image rm "$tag" >/dev/null 2>&1 || true
    fi
    if [[ -n $dockerd_pid ]]; then
        kill -TERM "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do # at most 20 s
            kill -0 "$dockerd_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
        # dockerd creates the default bridge and leaves it behind; remove it if it
        # was not there before.
        if [[ -z $bridge_was_there ]] && ip link show docker0 >/dev/null 2>&1; then
            ip link delete docker0 2>/dev/null || true
        fi
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

. scripts/checks.sh
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- 1. the engine -------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
    echo "container-test: using the engine that answers at ${DOCKER_HOST:-the default socket}"
else
    if [[ $(id -u) -ne 0 ]]; then
        echo "container-test: FAIL: no Docker engine answers at ${DOCKER_HOST:-the default socket}" \
            "and starting dockerd needs root (TINYPROM_SKIP_DOCKER=1 skips this test)" >&2
        exit 1
    fi
    command -v dockerd >/dev/null || {
        echo "container-test: FAIL: no engine answers and dockerd is not installed (make deps)" >&2
        exit 1
    }
    ip link show docker0 >/dev/null 2>&1 && bridge_was_there=yes
    # Everything the daemon keeps lives in $work: nothing of an installed engine is
    # touched, and removing $work removes it all.
    dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
        --host "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    export DOCKER_HOST="unix://$work/docker.sock"
    engine_start=$(date +%s.%N)
    for _ in $(seq 1 150); do # at most 30 s
        docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! docker info >/dev/null 2>&1; then
        if kill -0 "$dockerd_pid" 2>/dev/null; then
            why="dockerd runs but did not answer within 30 s"
        else
            why="dockerd exited"
        fi
        echo "container-test: FAIL: no engine could be started: $why; the last lines of its log:" >&2
        tail -n 15 "$work/dockerd.log" >&2
        echo "container-test: (TINYPROM_SKIP_DOCKER=1 skips this test)" >&2
        exit 1
    fi
    echo "container-test: started dockerd (pid $dockerd_pid) in $(elapsed "$engine_start") s;" \
        "storage driver $(docker info -f '{{.Driver}}')"
fi
echo "container-test: client $(docker version -f '{{.Client.Version}}'), engine $(docker version -f '{{.Server.Version}}')"

# --- 2. the image --------------------------------------------------------------------
# The final stage of Dockerfile (after its last FROM) must be Dockerfile.runtime's,
# but for where the binary comes from.
final_stage() { # final_stage FILE: the instructions from the last FROM on, comments dropped
    awk '/^FROM /{ buf = "" } !/^#/ && NF { buf = buf $0 "\n" } END { printf "%s", buf }' "$1" |
        sed -e 's|^COPY --from=build /src/dist/tinyprom |COPY dist/tinyprom |'
}
check "Dockerfile.runtime is Dockerfile's final stage, the binary's source aside" \
    test "$(final_stage Dockerfile)" = "$(final_stage Dockerfile.runtime)"
check "Dockerfile.runtime has a single stage" test "$(grep -c '^FROM ' Dockerfile.runtime)" -eq 1

# Any builder builds a one-stage Dockerfile offline. A client told to use BuildKit
# (DOCKER_BUILDKIT=1) that has no buildx plugin refuses to build at all: then the
# legacy builder (DOCKER_BUILDKIT=0) is asked instead.
build_start=$(date +%s.%N)
builder="the client's default builder"
if ! docker build --quiet -f Dockerfile.runtime -t "$tag" . >"$work/build.log" 2>&1; then
    builder="the legacy builder"
    if ! grep -qi buildx "$work/build.log" ||
        ! DOCKER_BUILDKIT=0 docker build --quiet -f Dockerfile.runtime -t "$tag" . >>"$work/build.log" 2>&1; then
        echo "container-test: FAIL: docker build -f Dockerfile.runtime failed:" >&2
        cat "$work/build.log" >&2
        exit 1
    fi
fi
image_built=yes
echo "container-test: built $tag from Dockerfile.runtime with $builder in $(elapsed "$build_start") s"
image_size=$(docker image inspect -f '{{.Size}}' "$tag")
bin_size=$(stat -c %s "$bin")
check "image size $image_size bytes is within the 1.7 MB budget ($image_budget bytes)" \
    test "$image_size" -le "$image_budget"
check "the image holds the binary and nothing else ($bin_size bytes)" test "$image_size" -eq "$bin_size"
check "the image runs as 65534:65534" test "$(docker image inspect -f '{{.Config.User}}' "$tag")" = 65534:65534
check "the image's HEALTHCHECK runs the binary's --health-check" \
    test "$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$tag")" = '["CMD","/tinyprom","--health-check"]'

# --- 3. docker run, as users run it ----------------------------------------------------
run_start=$(date +%s.%N)
docker run --detach --name "$container" \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    --memory 32m --cpus 0.5 --stop-timeout "$stop_timeout" \
    --publish 127.0.0.1::8000 "$tag" >/dev/null
# The compose service's health check runs meanwhile (part 4 waits for it).
compose_config_ok=""
if compose config --quiet 2>"$work/compose-config.err"; then
    compose_config_ok=yes
    compose_up=yes
    compose up --detach --no-build --no-deps web-app >"$work/compose-up.log" 2>&1 || true
fi

published=$(docker port "$container" 8000/tcp | head -n1)
check "the engine applied the limits: read-only root, no capabilities, no-new-privileges, 32 MiB, 0.5 CPU" \
    test "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' "$container")" \
    = "true [ALL] [no-new-privileges] 33554432 500000000"
check "the port is published on 127.0.0.1 only" \
    test "$(docker port "$container" 8000/tcp | grep -vc '^127\.0\.0\.1:')" -eq 0
up=""
for _ in $(seq 1 100); do # at most 10 s
    up=$(curl -s --max-time 2 -w ' %{http_code}' "http://$published/up" || true)
    [[ $up == "I am running! 200" ]] && break
    sleep 0.1
done
check "/up answers 200 through $published" test "$up" = "I am running! 200"
curl -s --max-time 5 -o "$work/metrics" "http://$published/metrics" || true
check "/metrics answers with the RED histogram" \
    grep -q '^# TYPE http_request_duration_seconds histogram' "$work/metrics"
check "/metrics has process_* (the container has /proc)" grep -q '^process_resident_memory_bytes ' "$work/metrics"

docker top "$container" -eo uid,pid,args >"$work/top"
check "every process in the container runs as uid 65534 ($(($(wc -l <"$work/top") - 1)) processes)" \
    awk 'NR > 1 { n++; if ($1 != 65534) bad = 1 } END { exit (n >= 1 && !bad) ? 0 : 1 }' "$work/top"

# A real Prometheus scrapes the published port.
prom_port=$(free_port)
prom_host=${published%:*}
prom_target_port=${published##*:}
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: container
    static_configs:
      - targets: ["$prom_host:$prom_target_port"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!

healthy=""
for _ in $(seq 1 150); do # at most 30 s: three 5 s intervals and some
    status=$(docker inspect -f '{{.State.Health.Status}}' "$container")
    [[ $status == healthy ]] && { healthy=$(elapsed "$run_start"); break; }
    sleep 0.2
done
check "the engine reports the container healthy (its HEALTHCHECK), after ${healthy:-never} s" test -n "$healthy"

prom_query() { # prom_query PROMQL: the first sample's value, or empty
    curl -s --max-time 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" |
        python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
scraped=""
for _ in $(seq 1 100); do # at most 20 s
    scraped=$(prom_query 'up{job="container"}')
    [[ $scraped == 1 ]] && break
    sleep 0.2
done
check "Prometheus scrapes the container on $published: up == 1" test "$scraped" = 1
scrape_errors=$(curl -s --max-time 5 "http://127.0.0.1:$prom_port/api/v1/targets" |
    python3 -c 'import json, sys; print(sum(1 for t in json.load(sys.stdin)["data"]["activeTargets"] if t["lastError"]))' || echo unknown)
check "the target has no scrape error" test "$scrape_errors" = 0

# Memory under the limit: the cgroup's peak where the engine runs on this machine
# (cgroup v1 memory.max_usage_in_bytes or v2 memory.peak), else docker stats.
pid=$(docker inspect -f '{{.State.Pid}}' "$container")
peak_file=""
if cg=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' "/proc/$pid/cgroup" 2>/dev/null) && [[ -n $cg ]] &&
    [[ -r /sys/fs/cgroup/memory$cg/memory.max_usage_in_bytes ]]; then
    peak_file=/sys/fs/cgroup/memory$cg/memory.max_usage_in_bytes
elif cg=$(sed -n 's/^0::\(.*\)/\1/p' "/proc/$pid/cgroup" 2>/dev/null) && [[ -n $cg ]] &&
    [[ -r /sys/fs/cgroup$cg/memory.peak ]]; then
    peak_file=/sys/fs/cgroup$cg/memory.peak
fi
rss_kib() { # resident set of every process in the container, KiB
    local total=0 p
    for p in $(docker top "$container" -eo pid | tail -n +2); do
        total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
rss_idle=$(rss_kib)

wrk -t 2 -c 64 -d "${load_seconds}s" --timeout 5s "http://$published/synthetic" >"$work/wrk.synthetic" 2>&1 &
wrk_pid=$!
rss_peak=$rss_idle
for _ in $(seq 1 $((load_seconds * 4))); do
    sleep 0.25
    rss=$(rss_kib)
    ((rss > rss_peak)) && rss_peak=$rss
done
wait "$wrk_pid" || true
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.synthetic")
check "wrk sent /synthetic requests for ${load_seconds} s under the limits (${requests:-none})" test -n "${requests:-}"
check "the container survived the load: running, OOMKilled false" \
    test "$(docker inspect -f '{{.State.Running}} {{.State.OOMKilled}}' "$container")" = "true false"
stats=$(docker stats --no-stream --format '{{.MemUsage}}' "$container")
cgroup_peak=""
[[ -n $peak_file ]] && cgroup_peak=$(($(cat "$peak_file") / 1024))
check "resident memory under load ${rss_peak} KiB stays under half the 32 MiB limit" test "$rss_peak" -lt 16384

stop_start=$(date +%s.%N)
docker stop --time "$stop_timeout" "$container" >/dev/null
stop_time=$(elapsed "$stop_start")
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
check "docker stop ends it with exit code 0 (got $exit_code)" test "$exit_code" = 0
check "docker stop took ${stop_time} s, well under the ${stop_timeout} s stop timeout" \
    awk -v t="$stop_time" -v limit="$stop_timeout" 'BEGIN { exit (t < limit / 2) ? 0 : 1 }'
check "the container said it shut down cleanly" bash -c "docker logs '$container' 2>&1 | grep -q 'shut down cleanly'"

# --- 4. docker-compose ---------------------------------------------------------------
check "docker-compose config accepts docker-compose.yml" test -n "$compose_config_ok"
[[ -n $compose_config_ok ]] || cat "$work/compose-config.err"
compose config >"$work/compose-resolved.yml" 2>/dev/null || true
check "the resolved compose file keeps the defaults users get (8080 -> 8000, tinyprom:latest)" \
    python3 - "$(TINYPROM_IMAGE='' TINYPROM_PUBLISH='' docker-compose --ansi never -f docker-compose.yml config 2>/dev/null)" <<'PY'
import sys, yaml
app = yaml.safe_load(sys.argv[1])["services"]["web-app"]
ports = [(p["published"], p["target"]) if isinstance(p, dict) else tuple(map(int, p.split(":")[-2:]))
         for p in app.get("ports", [])]
sys.exit(0 if app.get("image") == "tinyprom:latest" and (8080, 8000) in ports else 1)
PY
app_id=$(compose ps -q web-app 2>/dev/null || true)
compose_healthy=""
if [[ -n $app_id ]]; then
    for _ in $(seq 1 150); do # at most 30 s
        [[ $(docker inspect -f '{{.State.Health.Status}}' "$app_id") == healthy ]] && { compose_healthy=yes; break; }
        sleep 0.2
    done
else
    cat "$work/compose-up.log"
fi
check "docker-compose brings web-app up healthy" test -n "$compose_healthy"
compose_published=$(compose port web-app 8000 2>/dev/null || true)
check "web-app answers /up on $compose_published" \
    test "$(curl -s --max-time 5 "http://$compose_published/up" || true)" = "I am running!"
compose_down() { compose down --timeout "$stop_timeout" >"$work/compose-down.log" 2>&1; }
check "docker-compose brings it down again" compose_down
check "no container of the project is left" test -z "$(compose ps -q 2>/dev/null)"
compose_up=""

if ((failures)); then
    echo "container-test: $failures check(s) failed; the container's log:"
    docker logs "$container" 2>&1 | tail -n 20
    exit 1
fi
echo "container-test: all checks passed"
echo "container-test: image $image_size bytes (budget $image_budget, $((image_budget - image_size)) to spare)," \
    "healthy after $healthy s, stopped in $stop_time s"
echo "container-test: memory: resident ${rss_idle} KiB idle, ${rss_peak} KiB peak under" \
    "$requests wrk requests; cgroup peak ${cgroup_peak:-n/a} KiB; docker stats after load: $stats"
echo "container-test: done in $(elapsed "$started_at") s"
