# tinyprom: common tasks. `make help` lists them.
CARGO ?= cargo
BIN   := target/release/tinyprom

.PHONY: help build run deps test unit-test scrape-test check-rules fmt lint clean

help:
	@echo "make build        release binary at $(BIN)"
	@echo "make run          cargo run --release (listens on 0.0.0.0:8000)"
	@echo "make deps         install prometheus, promtool, wrk (apt-get, as root) and Python prometheus_client"
	@echo "make test         deps + lint + cargo test + rule checks + scrape-test against a real Prometheus"
	@echo "make unit-test    cargo test --release (unit, doc and integration tests; release so load tests measure the real thing)"
	@echo "make scrape-test  two replicas scraped by a real Prometheus, asserted via its HTTP API"
	@echo "make check-rules  promtool check config/rules and promtool rule unit tests"
	@echo "make fmt | lint   cargo fmt | cargo fmt --check + clippy -D warnings + rustdoc -D warnings"

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release

deps:
	scripts/deps.sh

test: deps lint unit-test check-rules scrape-test

unit-test:
	$(CARGO) test --release --all-targets
	$(CARGO) test --release --doc

scrape-test: build
	TINYPROM_BIN=$(BIN) scripts/scrape-test.sh

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
