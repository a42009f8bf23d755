# a2a-sandbox — setup, build, run, test, bench.
#
#   make run     build everything and start the server on 127.0.0.1:8080
#   make test    build everything and run every test suite
#   make bench   build everything and print the benchmark table
#   make draft   play the mock draft in this terminal
#
# Everything a fresh machine needs is installed from here.

SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
AGENTS_OUT := build/agents
HOST_BIN := target/release/a2a-sandbox
# Agent crates' unit and doc tests run natively, on the machine's target.
HOST_TARGET = $(shell rustc -vV | sed -n 's/^host: //p')

.PHONY: all setup agents test-agents fuzz fuzz-deps new-agent host precompile run draft test test-isolation bench bench-deps sdk-peer interop-deps browser-deps kernel-limits deploy-check lint clean-agents

all: agents host

# The Rust target the agent components compile to.
setup:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# Agent components: every agent crate (a cdylib in agents/) becomes
# build/agents/<crate-name>.wasm, so a new agent needs no edit here.
# Test fixtures are not product: those under agents/fixtures/ go to
# build/fixtures/, except the ones named refused-*, components the server
# must refuse, which go to build/refused/ for the validation tests.
# build/test-agents/ holds the product agents and the fixtures together
# (hard links, one precompiled cache): the directory the suites serve.
REFUSED_OUT := build/refused
FIXTURES_OUT := build/fixtures
TEST_AGENTS := build/test-agents
FIXTURE_CRATES := $(filter-out refused-%,$(notdir $(wildcard agents/fixtures/*)))
agents: setup
	cd agents && $(CARGO) build --release --target $(WASM_TARGET)
	@mkdir -p $(AGENTS_OUT) $(REFUSED_OUT) $(FIXTURES_OUT)
	@for f in agents/target/$(WASM_TARGET)/release/*.wasm; do \
	  name=$$(basename $$f .wasm); name=$${name//_/-}; \
	  case " $(FIXTURE_CRATES) " in \
	    *" $$name "*) cp $$f $(FIXTURES_OUT)/$$name.wasm; continue ;; \
	  esac; \
	  case $$name in \
	    refused-*) cp $$f $(REFUSED_OUT)/$${name#refused-}.wasm ;; \
	    *) cp $$f $(AGENTS_OUT)/$$name.wasm ;; \
	  esac; \
	done
	@rm -f $(AGENTS_OUT)/refused-*.wasm $(addprefix $(AGENTS_OUT)/,$(addsuffix .wasm,$(FIXTURE_CRATES)))
	@ls -1 $(AGENTS_OUT) $(FIXTURES_OUT) $(REFUSED_OUT)

test-agents: agents
	@rm -rf $(TEST_AGENTS) && mkdir -p $(TEST_AGENTS) $(AGENTS_OUT)/.precompiled
	@ln -f $(AGENTS_OUT)/*.wasm $(FIXTURES_OUT)/*.wasm $(TEST_AGENTS)/
	@ln -s ../agents/.precompiled $(TEST_AGENTS)/.precompiled

# Agents in other languages, each rebuilt when its source changes. They
# implement the first contract, wit/0.1.0 (a2a:agent@0.1.0), which the
# host still serves: components built against it keep working.
# JavaScript: componentize-js (npm, pinned by the lock file).
agents: $(AGENTS_OUT)/js-echo.wasm $(AGENTS_OUT)/py-echo.wasm
$(AGENTS_OUT)/js-echo.wasm: agents/js-echo/agent.js agents/js-echo/build.mjs agents/js-echo/package-lock.json wit/0.1.0/agent.wit
	cd agents/js-echo && npm ci --no-audit --no-fund --loglevel=error && node build.mjs agent.js ../../wit/0.1.0 ../../$@

# Python: componentize-py (PyPI) in a venv. Its WASI imports (files,
# sockets, ...) are replaced by stubs: the sandbox grants none of them.
PY_AGENT_VENV := agents/py-echo/.venv
$(PY_AGENT_VENV)/.installed: agents/py-echo/requirements.txt
	python3 -m venv $(PY_AGENT_VENV)
	$(PY_AGENT_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@
$(AGENTS_OUT)/py-echo.wasm: agents/py-echo/app.py $(PY_AGENT_VENV)/.installed wit/0.1.0/agent.wit
	@mkdir -p $(AGENTS_OUT)
	cd agents/py-echo && .venv/bin/componentize-py -d ../../wit/0.1.0 -w agent componentize --stub-wasi app -o ../../$@

# Checks every component (product and fixtures) against the contract and
# stores its compiled code (build/agents/.precompiled, which
# build/test-agents shares), so servers start without compiling.
precompile: test-agents host
	$(HOST_BIN) validate $(TEST_AGENTS)/*.wasm

# A new agent crate, a copy of the echo example: make new-agent NAME=my-agent
new-agent:
	@echo "$(NAME)" | grep -Eq '^[a-z][a-z0-9-]*$$' || { echo "usage: make new-agent NAME=my-agent (lowercase, digits, -)"; exit 2; }
	@test ! -e agents/$(NAME) || { echo "agents/$(NAME) already exists"; exit 2; }
	mkdir -p agents/$(NAME)/src
	sed 's/^name = "echo"/name = "$(NAME)"/' agents/echo/Cargo.toml > agents/$(NAME)/Cargo.toml
	cp agents/echo/src/lib.rs agents/$(NAME)/src/lib.rs
	sed -i 's|^members = \[|members = ["$(NAME)", |' agents/Cargo.toml
	@echo "agents/$(NAME) created; \`make agents\` builds it into $(AGENTS_OUT)/$(NAME).wasm"

host:
	$(CARGO) build --release -p a2a-sandbox

run: precompile
	ulimit -n $$(ulimit -Hn) && $(HOST_BIN) serve --listen 127.0.0.1:8080 --agents-dir $(AGENTS_OUT)

# The mock draft in this terminal, against a server it starts itself.
draft: precompile
	$(HOST_BIN) draft --agents-dir $(AGENTS_OUT)

# The browser test: Debian's Chromium, driven by playwright-core.
BROWSER := tests/browser
browser-deps: $(BROWSER)/node_modules/.installed
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

$(BROWSER)/node_modules/.installed: $(BROWSER)/package.json $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The official A2A SDKs the interop suite drives: Python a2a-sdk in a
# venv (its requirements.txt), JavaScript @a2a-js/sdk from the lock
# file; each of the 1.x line (tests/interop) and of the 0.3 line
# (tests/interop/v03).
INTEROP := tests/interop

interop-deps: $(INTEROP)/.venv/.installed $(INTEROP)/node_modules/.installed \
	$(INTEROP)/v03/.venv/.installed $(INTEROP)/v03/node_modules/.installed

$(INTEROP)/.venv/.installed: $(INTEROP)/requirements.txt
	python3 -m venv $(INTEROP)/.venv
	$(INTEROP)/.venv/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

$(INTEROP)/v03/.venv/.installed: $(INTEROP)/v03/requirements.txt
	python3 -m venv $(INTEROP)/v03/.venv
	$(INTEROP)/v03/.venv/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

$(INTEROP)/node_modules/.installed: $(INTEROP)/package.json $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(INTEROP)/v03/node_modules/.installed: $(INTEROP)/v03/package.json $(INTEROP)/v03/package-lock.json
	cd $(INTEROP)/v03 && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Tens of thousands of pooled instances need more memory mappings than
# the kernel's default 65530 (see README, "Scaling"). Best effort: where
# it cannot be raised, the server warns at start.
MAX_MAP_COUNT := 1048576
kernel-limits:
	@[ "$$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" -ge $(MAX_MAP_COUNT) ] || \
	  sysctl -qw vm.max_map_count=$(MAX_MAP_COUNT) 2>/dev/null || \
	  echo "note: vm.max_map_count is below $(MAX_MAP_COUNT); the scale test will say so"

test: precompile lint interop-deps browser-deps kernel-limits deploy-check
	$(CARGO) test --release --workspace
	cd agents && $(CARGO) test --release -p draft-protocol -p drafter -p a2a-agent-sdk --target $(HOST_TARGET)

# deploy/kubernetes.yaml against the Kubernetes API schemas (strict: an
# unknown field fails), with kubernetes-validate from PyPI in a venv;
# deploy/haproxy.cfg by Debian's HAProxy, which the balancer suite runs.
DEPLOY_VENV := tests/deploy/.venv
deploy-check: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/kubernetes-validate --strict --quiet deploy/kubernetes.yaml
	@test -x /usr/sbin/haproxy || { apt-get update -qq && apt-get install -y -qq haproxy; }
	A2A_BALANCER_LISTEN=127.0.0.1:1 A2A_SERVER_S0=127.0.0.1:2 A2A_SERVER_S1=127.0.0.1:3 \
	  A2A_SERVER_S2=127.0.0.1:4 /usr/sbin/haproxy -c -q -f deploy/haproxy.cfg

$(DEPLOY_VENV)/.installed: tests/deploy/requirements.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release -q -p a2a-sandbox --no-deps
	cd agents && $(CARGO) fmt --all --check && $(CARGO) clippy --release --target $(WASM_TARGET) -- -D warnings
	cd agents && RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release -q -p a2a-agent-sdk --no-deps --target $(HOST_TARGET)

clean-agents:
	rm -rf $(AGENTS_OUT)

# The isolation and tenancy report against any running server with the
# hostile and fetcher fixtures loaded and no grant for the fetcher (serve
# build/test-agents, or add build/fixtures/{hostile,fetcher}.wasm to its
# agents directory):
#   make test-isolation URL=http://127.0.0.1:8080
test-isolation:
	@test -n "$(URL)" || { echo "usage: make test-isolation URL=http://HOST:PORT"; exit 2; }
	$(CARGO) run --release -q -p a2a-sandbox-tools --bin isolation -- $(URL)

# Fuzz targets (host/fuzz): timestamps, page tokens, the control
# listener's every path and body, JSON-RPC bodies into an agent. Each runs
# FUZZ_SECS seconds; a panic anywhere stops it with the input saved under
# host/fuzz/artifacts. cargo-fuzz needs the nightly toolchain.
FUZZ_SECS ?= 60
FUZZ_TARGETS := rfc3339 page_token control jsonrpc
fuzz-deps:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz: precompile fuzz-deps
	cd host && for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t && \
	  cargo +nightly fuzz run -s none $$t fuzz/corpus/$$t fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECS) || exit 1; \
	done

# Debian's wrk drives the throughput part of the benchmark.
bench-deps:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# The official Rust SDK's echo server (tests/sdk-peer, a workspace of its
# own), which the benchmark measures SendMessage against.
sdk-peer:
	cd tests/sdk-peer && $(CARGO) build --release --target-dir ../../target/sdk-peer

bench: precompile bench-deps sdk-peer kernel-limits
	$(CARGO) run --release -p a2a-sandbox-tools --bin bench
