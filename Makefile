# nudge: `make run` serves the demo, `make test` runs every test. Both set up what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NUDGE_BIND ?= 127.0.0.1:8080
NUDGE_TLS_BIND ?= 127.0.0.1:8443

.PHONY: help setup sw server run test test-server test-sw test-e2e test-deploy lint docs bench clean

help:
	@echo "make run    build everything and serve Watercooler on http://$(NUDGE_BIND)"
	@echo "           and https://localhost:8443 (HTTP/2, self-signed development certificate)"
	@echo "make test   set up and run every test (server, ServiceWorker, end-to-end)"
	@echo "make lint   cargo fmt --check and clippy -D warnings"
	@echo "make docs   rustdoc of the nudge crate and Watercooler (no warnings allowed)"
	@echo "make bench  server benchmarks beside their peers (BENCH=\"delivery memory\" for some)"
	@echo "make bench-sw  the ServiceWorker beside Workbox 7's production builds"
	@echo "make test-server | test-sw | test-e2e | test-deploy   one runner of make test"
	@echo "make clean  remove build output"

# Installs the wasm32 std, the wasm-bindgen CLI, wasm-pack and Chromium when they are missing.
setup:
	@scripts/setup.sh

# Compiles the ServiceWorker to wasm and writes www/gen/ (glue, bytes, precache manifest).
sw: setup
	@scripts/build-sw.sh

server:
	@cargo build --release -p watercooler --bin nudge

run: sw server
	@exec target/release/nudge --bind $(NUDGE_BIND) --www-dir www \
		--tls-bind $(NUDGE_TLS_BIND) --tls-self-signed --push-contact mailto:nudge@localhost

test: sw
	@cargo build -p watercooler --bin nudge
	@cargo build -p nudge-todos
	@mkdir -p target
	@set -o pipefail; \
	$(MAKE) --no-print-directory -k test-server test-sw test-e2e test-deploy 2>&1 \
		| tee target/test-output.log; status=$$?; \
	scripts/test-summary.sh target/test-output.log; exit $$status

test-server:
	@cargo test --no-fail-fast -p nudge -p watercooler

test-sw:
	@scripts/test-sw.sh
	@cargo test --no-fail-fast -p nudge-sw-bench

test-e2e:
	@NUDGE_BIN=$(CURDIR)/target/debug/nudge NUDGE_WWW=$(CURDIR)/www \
		NUDGE_TODOS_BIN=$(CURDIR)/target/debug/nudge-todos cargo test --no-fail-fast -p nudge-e2e -- --test-threads=1

# The systemd unit, the Dockerfile and (where nginx is installed) the nginx configuration.
test-deploy:
	@deploy/check.sh target/debug/nudge

lint: docs
	@cargo fmt --all -- --check
	@cargo clippy --workspace --all-targets -- -D warnings

docs:
	@RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p nudge -p watercooler

# Prints throughput, latency and memory beside baselines measured in the same run.
bench:
	@cargo build --release --quiet -p nudge-bench-peers
	@ulimit -n 20000 2>/dev/null || ulimit -n $$(ulimit -Hn); cargo bench -p watercooler --bench load -- $(BENCH)

# nudge's ServiceWorker beside Workbox 7's production builds (workbox-sw with its .prod.js
# modules, and one esbuild bundle; installed from npm into target/workbox/) in headless
# Chromium: sizes, first visit, restart of a stopped SW and cache hits, as a Markdown table.
.PHONY: bench-sw
bench-sw: sw
	@cargo run --quiet -p nudge-sw-bench -- --www www

clean:
	@cargo clean
	@rm -rf www/gen
