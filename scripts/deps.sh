#!/usr/bin/env bash
# Install what the rule checks and the scrape test need. Idempotent.
#   prometheus, promtool  (Debian/Ubuntu package: prometheus)
#   wrk                   (Debian/Ubuntu package: wrk)
#   curl                  (Debian/Ubuntu package: curl; the static-binary and gzip tests use it)
#   gzip                  (Debian/Ubuntu package: gzip; an independent decoder in the gzip tests)
#   docker, dockerd       (Debian/Ubuntu package: docker.io; the container test)
#   docker-compose        (Debian/Ubuntu package: docker-compose; the container test)
#   ps                    (Debian/Ubuntu package: procps; `docker top` runs it)
#   victoria-metrics      (Debian/Ubuntu package: victoria-metrics; the scale test)
#   pushgateway           (Debian/Ubuntu package: prometheus-pushgateway, whose binary is
#                         prometheus-pushgateway; the push tests)
#   alertmanager, amtool  (Debian/Ubuntu package: prometheus-alertmanager, whose binary is
#                         prometheus-alertmanager; elsewhere it is called alertmanager)
#   chromium              (Debian package: chromium; the landing page's browser test)
#   ab                    (Debian/Ubuntu package: apache2-utils; the gate tests use it)
#   h2load                (Debian/Ubuntu package: nghttp2-client; the gate tests use it)
#   slowhttptest          (Debian/Ubuntu package: slowhttptest; make slow-test uses it)
#   protoc                (Debian/Ubuntu package: protobuf-compiler; decodes the protobuf exposition)
#   protobuf well-known types (Debian/Ubuntu package: libprotobuf-dev; the benchmark's peer
#                         crates compile their .proto files with protoc when they are built)
#   prometheus_client     (Python package, pip; 0.22 or later)
#   pyyaml                (Python package, pip)
#   h11, httptools        (Python packages, pip; the differential framing test)
#   kubernetes-validate   (Python package, pip; ships the Kubernetes schemas, so it
#                          validates deploy/kubernetes/ offline)
# As root, missing packages are installed with apt-get; otherwise this prints
# exactly what to install and exits 1.
set -euo pipefail

tools=(prometheus promtool wrk curl gzip protoc ab h2load slowhttptest alertmanager amtool chromium docker dockerd docker-compose ps victoria-metrics pushgateway)
# The path of a tool; Alertmanager's and the Pushgateway's binaries have other names on Debian.
tool_path() {
    case "$1" in
        alertmanager) command -v prometheus-alertmanager 2>/dev/null || command -v alertmanager 2>/dev/null ;;
        pushgateway) command -v prometheus-pushgateway 2>/dev/null || command -v pushgateway 2>/dev/null ;;
        *) command -v "$1" 2>/dev/null ;;
    esac
}

missing_pkgs=()
for tool in "${tools[@]}"; do
    if path=$(tool_path "$tool"); then
        echo "deps: $tool found at $path"
    else
        case "$tool" in
            prometheus|promtool) pkg=prometheus ;;
            docker|dockerd) pkg=docker.io ;;
            ps) pkg=procps ;;
            alertmanager|amtool) pkg=prometheus-alertmanager ;;
            pushgateway) pkg=prometheus-pushgateway ;;
            ab) pkg=apache2-utils ;;
            h2load) pkg=nghttp2-client ;;
            protoc) pkg=protobuf-compiler ;;
            *) pkg=$tool ;;
        esac
        echo "deps: $tool missing (Debian package: $pkg)"
        [[ " ${missing_pkgs[*]} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
    fi
done

well_known_protos=/usr/include/google/protobuf/timestamp.proto
if [[ -e $well_known_protos ]]; then
    echo "deps: protobuf well-known types found at $(dirname "$well_known_protos")"
else
    echo "deps: protobuf well-known types missing (Debian package: libprotobuf-dev)"
    missing_pkgs+=(libprotobuf-dev)
fi

if ((${#missing_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps: not root; install them with:" >&2
        echo "    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing_pkgs[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps: apt-get not available; install ${missing_pkgs[*]} (prometheus >= 2.x with promtool, wrk) with your package manager" >&2
        exit 1
    fi
    # The Debian prometheus package tries to start a prometheus service on
    # :9090. Forbid service starts during this install with a temporary
    # policy-rc.d (the standard mechanism invoke-rc.d honours), unless the
    # system already has one. The scrape test never assumes 9090 is free.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, created by tinyprom scripts/deps.sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    cleanup_policy() { if ((created_policy)); then rm -f "$policy"; fi; }
    trap cleanup_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing_pkgs[@]}"
    cleanup_policy
    created_policy=0
    for tool in "${tools[@]}"; do
        if path=$(tool_path "$tool"); then
            echo "deps: $tool installed at $path"
        else
            echo "deps: $tool still missing after apt-get install" >&2
            exit 1
        fi
    done
    if [[ ! -e $well_known_protos ]]; then
        echo "deps: $well_known_protos still missing after apt-get install" >&2
        exit 1
    fi
fi

echo "deps: $(prometheus --version 2>&1 | head -n1)"

# Python packages: import name, pip name, Debian package (for PEP 668 system Pythons;
# - when there is none).
python_package() {
    local module=$1 pip_name=$2 deb_name=$3
    if python3 -c "import $module" >/dev/null 2>&1; then
        echo "deps: python $pip_name found"
        return
    fi
    echo "deps: python $pip_name missing; installing with pip"
    if ! python3 -m pip install --quiet "$pip_name"; then
        # Externally managed (PEP 668) system Python: use the distro package.
        if [[ $deb_name != - && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            echo "deps: pip failed; installing $deb_name with apt-get"
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb_name"
        fi
    fi
    if python3 -c "import $module" >/dev/null 2>&1; then
        echo "deps: python $pip_name installed"
    else
        echo "deps: could not install $pip_name; run: python3 -m pip install $pip_name" >&2
        echo "      (or on Debian/Ubuntu: apt-get install $deb_name)" >&2
        exit 1
    fi
}

# prometheus_client: independent exposition parsers for the tests. 0.22 is the first
# whose parsers read quoted UTF-8 names, which the escaping tests need.
python_package prometheus_client prometheus_client python3-prometheus-client
if ! python3 -c 'import importlib.metadata as m, sys; v = m.version("prometheus_client").split("."); sys.exit((int(v[0]), int(v[1])) < (0, 22))'; then
    echo "deps: python prometheus_client older than 0.22; upgrading with pip"
    if ! python3 -m pip install --quiet --upgrade 'prometheus_client>=0.22'; then
        echo "deps: run: python3 -m pip install --upgrade 'prometheus_client>=0.22'" >&2
        exit 1
    fi
fi
# PyYAML: parses docker-compose.yml in the container check.
python_package yaml pyyaml python3-yaml
# kubernetes-validate: Kubernetes schema validation of deploy/kubernetes/ (offline).
python_package kubernetes_validate kubernetes-validate - # no Debian package
# h11 and httptools (llhttp, Node's parser): the two strict HTTP/1.1 parsers the
# differential framing test (scripts/differential.py) compares the gate with.
python_package h11 h11 python3-h11
python_package httptools httptools python3-httptools
