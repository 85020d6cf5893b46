# tinyprom: common tasks. `make help` lists them.
CARGO ?= cargo
# Cargo's output directory: CARGO_TARGET_DIR when set (a common setup), else target/.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
BIN   := $(TARGET_DIR)/release/tinyprom
# The static binary: glibc linked in (+crt-static; no musl target is installed here),
# non-PIE (saves the relocation tables), identical functions folded when the linker
# can (lld, rustc's default linker here, can; GNU ld cannot), built with the
# size-first `static` profile. `=`, not `:=`: the linker probe runs only for `static`.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
STATIC_BIN  := dist/tinyprom
ICF_FLAG = $(shell d=$$(mktemp -d) && echo 'fn main() {}' > $$d/p.rs && rustc -C link-arg=-Wl,--icf=all -o $$d/p $$d/p.rs >/dev/null 2>&1 && echo '-C link-arg=-Wl,--icf=all'; rm -rf $$d)
STATIC_RUSTFLAGS = -C target-feature=+crt-static -C relocation-model=static $(ICF_FLAG)

.PHONY: help build run deps test unit-test scrape-test exemplar-test alert-test landing-test check-rules fmt lint clean soak soak-smoke bench bench-instructions bench-http slow-test static static-test container-check container-test k8s-check scale-test prometheusrule target-dir-check

help:
	@echo "make build        release binary at $(BIN)"
	@echo "make run          cargo run --release (listens on 0.0.0.0:8000)"
	@echo "make deps         install prometheus, promtool, wrk (apt-get, as root) and Python prometheus_client"
	@echo "make test         deps + lint + cargo test + rule checks + scrape-test against a real Prometheus + static-test + container-check/-test + k8s-check + scale-test"
	@echo "make unit-test    cargo test --release (unit, doc and integration tests; release so load tests measure the real thing)"
	@echo "make scrape-test  two replicas scraped by a real Prometheus, asserted via its HTTP API"
	@echo "make exemplar-test  traceparent ids as exemplars, stored by real Prometheus over OpenMetrics and protobuf"
	@echo "make alert-test   a replica dies: its TargetDown page goes Prometheus -> Alertmanager -> webhook, then resolves"
	@echo "make landing-test headless Chromium loads / and its figures are checked against /metrics and its clients' latencies; screenshot in target/landing-test/"
	@echo "make check-rules  promtool check config/rules and promtool rule unit tests; amtool check-config"
	@echo "make soak         wrk on /synthetic and /up, scraped every second (SOAK_SECONDS=60): RSS flat, counters monotonic"
	@echo "make fmt | lint   cargo fmt | cargo fmt --check + clippy -D warnings + rustdoc -D warnings"
	@echo "make bench        histogram benchmarks against the peer crates, the metrics macros through tinyprom and metrics-exporter-prometheus, gzip per scrape (markdown tables)"
	@echo "make bench-instructions  instructions per labeled observe under valgrind (callgrind), tinyprom and prometheus-client"
	@echo "make bench-http   wrk against tinyprom, plain tiny_http, axum and Go peers; CPU and switches per request, RSS, start-up, 5,000 idle connections"
	@echo "make slow-test    slowhttptest (slowloris, slow body, slow read) against the release binary"
	@echo "make static       statically linked, stripped binary at $(STATIC_BIN)"
	@echo "make static-test  run $(STATIC_BIN) alone in an empty root as an unprivileged user (root only)"
	@echo "make container-check  docker-compose.yml, its Prometheus config and the Dockerfile, without an engine"
	@echo "make container-test   the image built offline (Dockerfile.runtime) and run on a real Docker engine; compose web-app"
	@echo "make k8s-check        deploy/kubernetes/ against the Kubernetes schemas, promtool and the rule file"
	@echo "make prometheusrule   regenerate deploy/kubernetes/prometheusrule.yaml from rules/tinyprom.rules.yml"
	@echo "make scale-test       four replicas via file_sd, Prometheus remote-writing to VictoriaMetrics, both compared"
	@echo "make target-dir-check the recipes follow CARGO_TARGET_DIR (a dry run)"

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release

deps:
	scripts/deps.sh

test: deps lint unit-test check-rules scrape-test exemplar-test alert-test landing-test soak-smoke static-test container-check container-test k8s-check scale-test target-dir-check

# The `metrics-facade` feature's module, example and doc tests only build with it.
FACADE := --features metrics-facade

unit-test:
	$(CARGO) test --release --all-targets
	$(CARGO) test --release --doc
	$(CARGO) test --release $(FACADE) --lib facade
	$(CARGO) test --release $(FACADE) --doc facade
	$(CARGO) test --release $(FACADE) --test metrics_facade

scrape-test: build
	TINYPROM_BIN=$(BIN) scripts/scrape-test.sh

# Two real Prometheus servers with exemplar storage (OpenMetrics, protobuf); about 12 s.
exemplar-test: build
	TINYPROM_BIN=$(BIN) python3 scripts/exemplar_test.py

# Real Prometheus + Alertmanager with the shipped configs; about 15 s.
alert-test: build
	TINYPROM_BIN=$(BIN) python3 scripts/alert_test.py

# Headless Chromium against a running tinyprom; about 6 s. The screenshot stays in
# target/landing-test/ (LANDING_ARTIFACT_DIR to change).
landing-test: build
	TINYPROM_BIN=$(BIN) python3 scripts/landing_test.py

SOAK_SECONDS ?= 60

soak: build
	TINYPROM_BIN=$(BIN) SOAK_SECONDS=$(SOAK_SECONDS) python3 scripts/soak.py

# The soak's checks in 10 s, as part of `make test`.
soak-smoke: build
	TINYPROM_BIN=$(BIN) SOAK_SECONDS=10 python3 scripts/soak.py

check-rules:
	scripts/check-rules.sh

fmt:
	$(CARGO) fmt

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets $(FACADE) -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet $(FACADE)

bench:
	@rustc -V
	$(CARGO) bench $(FACADE) --bench compare
	$(CARGO) bench --bench gzip

bench-instructions:
	$(CARGO) bench --bench instructions

bench-http: static
	TINYPROM_BIN=$(BIN) PLAIN_BIN=$(TARGET_DIR)/release/examples/plain_tiny_http PEER_TARGET_DIR=$(TARGET_DIR)/peers scripts/bench-http.sh

slow-test: build
	TINYPROM_BIN=$(BIN) scripts/slow-test.sh

static:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --profile static --target $(HOST_TRIPLE) --bin tinyprom
	mkdir -p dist
	cp $(TARGET_DIR)/$(HOST_TRIPLE)/static/tinyprom $(STATIC_BIN)
	@ls -l $(STATIC_BIN)

static-test: static
	STATIC_BIN=$(STATIC_BIN) scripts/static-test.sh

container-check:
	scripts/container-check.sh

# Starts dockerd itself when no engine answers (root); TINYPROM_SKIP_DOCKER=1 skips it.
container-test: static
	STATIC_BIN=$(STATIC_BIN) scripts/container-test.sh

k8s-check:
	scripts/k8s-check.py

prometheusrule:
	scripts/gen-prometheusrule.py

scale-test: build
	TINYPROM_BIN=$(BIN) python3 scripts/scale_test.py

# With CARGO_TARGET_DIR set, every recipe must look for Cargo's output there (make -n:
# prints the recipes, runs nothing).
target-dir-check:
	@out=$$(CARGO_TARGET_DIR=/elsewhere $(MAKE) -s -n static scrape-test soak-smoke bench-http scale-test); \
	if echo "$$out" | grep -Eq '(^|[ =])target/'; then \
		echo "target-dir-check: FAIL: a recipe uses target/ although CARGO_TARGET_DIR is set:"; \
		echo "$$out" | grep -E '(^|[ =])target/'; exit 1; \
	fi; \
	echo "$$out" | grep -q 'cp /elsewhere/$(HOST_TRIPLE)/static/tinyprom ' && \
	echo "$$out" | grep -q 'TINYPROM_BIN=/elsewhere/release/tinyprom ' || \
		{ echo "target-dir-check: FAIL: the recipes do not follow CARGO_TARGET_DIR"; exit 1; }; \
	echo "target-dir-check: every recipe follows CARGO_TARGET_DIR"

clean:
	$(CARGO) clean
	rm -rf dist

# --- Pushgateway push and crate publishing (issue 26). `test` gets these targets as
# extra prerequisites here, so this block stays self-contained.
.PHONY: push-test msrv-check publish-check api-check
test: push-test msrv-check publish-check api-check

# examples/pushgateway against a real Pushgateway, scraped by a real Prometheus with
# honor_labels; about 10 s. tests/push.rs (in unit-test) checks PUT/POST/DELETE.
push-test:
	$(CARGO) build --release --example pushgateway
	PUSH_EXAMPLE_BIN=$(TARGET_DIR)/release/examples/pushgateway python3 scripts/push_test.py

# Cargo.toml's rust-version: not above this rustc, not below the edition's, no runtime
# dependency above it, and clippy's incompatible_msrv (std APIs newer than it) clean.
msrv-check:
	CARGO=$(CARGO) python3 scripts/msrv_check.py

# cargo publish --dry-run without warnings (the packaged crate builds on its own), and
# the package's contents and size.
publish-check:
	CARGO=$(CARGO) python3 scripts/publish_check.py

# cargo doc's public items with all features (as docs.rs shows them): no binary or
# render internal, each type's doc starting with a runnable example, README's API list
# complete.
api-check:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --all-features --quiet
	CARGO=$(CARGO) DOC_DIR=$(TARGET_DIR)/doc python3 scripts/api_check.py
