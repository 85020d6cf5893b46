# tinyprom: common tasks. `make help` lists them.
CARGO ?= cargo
BIN   := target/release/tinyprom
# The static binary: glibc linked in (+crt-static; no musl target is installed here),
# non-PIE (saves the relocation tables), identical functions folded when the linker
# can (lld, rustc's default linker here, can; GNU ld cannot), built with the
# size-first `static` profile. `=`, not `:=`: the linker probe runs only for `static`.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
STATIC_BIN  := dist/tinyprom
ICF_FLAG = $(shell d=$$(mktemp -d) && echo 'fn main() {}' > $$d/p.rs && rustc -C link-arg=-Wl,--icf=all -o $$d/p $$d/p.rs >/dev/null 2>&1 && echo '-C link-arg=-Wl,--icf=all'; rm -rf $$d)
STATIC_RUSTFLAGS = -C target-feature=+crt-static -C relocation-model=static $(ICF_FLAG)

.PHONY: help build run deps test unit-test scrape-test check-rules fmt lint clean soak soak-smoke bench bench-http slow-test static static-test container-check

help:
	@echo "make build        release binary at $(BIN)"
	@echo "make run          cargo run --release (listens on 0.0.0.0:8000)"
	@echo "make deps         install prometheus, promtool, wrk (apt-get, as root) and Python prometheus_client"
	@echo "make test         deps + lint + cargo test + rule checks + scrape-test against a real Prometheus + static-test + container-check"
	@echo "make unit-test    cargo test --release (unit, doc and integration tests; release so load tests measure the real thing)"
	@echo "make scrape-test  two replicas scraped by a real Prometheus, asserted via its HTTP API"
	@echo "make check-rules  promtool check config/rules and promtool rule unit tests"
	@echo "make soak         wrk on /synthetic and /up, scraped every second (SOAK_SECONDS=60): RSS flat, counters monotonic"
	@echo "make fmt | lint   cargo fmt | cargo fmt --check + clippy -D warnings + rustdoc -D warnings"
	@echo "make bench        histogram benchmarks against the peer crates (markdown tables)"
	@echo "make bench-http   wrk against tinyprom and a plain tiny_http server; RSS, threads, start-up, 5,000 idle connections"
	@echo "make slow-test    slowhttptest (slowloris, slow body, slow read) against the release binary"
	@echo "make static       statically linked, stripped binary at $(STATIC_BIN)"
	@echo "make static-test  run $(STATIC_BIN) alone in an empty root as an unprivileged user (root only)"
	@echo "make container-check  docker-compose.yml, its Prometheus config and the Dockerfile, without an engine"

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release

deps:
	scripts/deps.sh

test: deps lint unit-test check-rules scrape-test soak-smoke static-test container-check

unit-test:
	$(CARGO) test --release --all-targets
	$(CARGO) test --release --doc

scrape-test: build
	TINYPROM_BIN=$(BIN) scripts/scrape-test.sh

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
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet

bench:
	@rustc -V
	$(CARGO) bench --bench compare

bench-http: static
	scripts/bench-http.sh

slow-test: build
	TINYPROM_BIN=$(BIN) scripts/slow-test.sh

static:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --profile static --target $(HOST_TRIPLE) --bin tinyprom
	mkdir -p dist
	cp target/$(HOST_TRIPLE)/static/tinyprom $(STATIC_BIN)
	@ls -l $(STATIC_BIN)

static-test: static
	STATIC_BIN=$(STATIC_BIN) scripts/static-test.sh

container-check:
	scripts/container-check.sh

clean:
	$(CARGO) clean
	rm -rf dist
