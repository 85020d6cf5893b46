# tinyprom: common tasks. `make help` lists them.
CARGO ?= cargo
BIN   := target/release/tinyprom

.PHONY: help build run deps test unit-test scrape-test check-rules fmt lint clean soak soak-smoke

help:
	@echo "make build        release binary at $(BIN)"
	@echo "make run          cargo run --release (listens on 0.0.0.0:8000)"
	@echo "make deps         install prometheus, promtool, wrk (apt-get, as root) and Python prometheus_client"
	@echo "make test         deps + lint + cargo test + rule checks + scrape-test against a real Prometheus"
	@echo "make unit-test    cargo test --release (unit, doc and integration tests; release so load tests measure the real thing)"
	@echo "make scrape-test  two replicas scraped by a real Prometheus, asserted via its HTTP API"
	@echo "make check-rules  promtool check config/rules and promtool rule unit tests"
	@echo "make soak         wrk on /synthetic and /up, scraped every second (SOAK_SECONDS=60): RSS flat, counters monotonic"
	@echo "make fmt | lint   cargo fmt | cargo fmt --check + clippy -D warnings + rustdoc -D warnings"

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release

deps:
	scripts/deps.sh

test: deps lint unit-test check-rules scrape-test soak-smoke

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

clean:
	$(CARGO) clean
	rm -rf dist
