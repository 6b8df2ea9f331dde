# Two commands do everything on a fresh machine:
#   make dev    build and start a local 3-node cluster (Ctrl-C stops it;
#               ARGS=--monitor adds Prometheus with the shipped alert rules)
#   make test   run the whole test suite
# Both install missing system packages first (scripts/setup.sh).

CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR

.PHONY: dev test setup build lint ci

setup:
	@scripts/setup.sh

build: setup
	cargo build -p kauri-node -p kauri-client -p kauri-gateway

# `make dev ARGS=--monitor` also installs Prometheus (Debian's package) when
# missing, for the Prometheus that `kauri dev up --monitor` starts.
dev: build
	$(if $(findstring --monitor,$(ARGS)),@scripts/monitoring-tools.sh --prometheus-only)
	"$(CARGO_TARGET_DIR)/debug/kauri" dev up $(ARGS)

test: setup
	cargo test --workspace

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

ci: lint test
