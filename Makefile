# userlens — `make help` lists the targets.
CARGO ?= cargo
EVENTS ?=
OUT ?= out/profile
BIN_RELEASE := target/release/userlens

.DEFAULT_GOAL := help
.PHONY: help profile nightly cdnow test test-cluster browser fuzz ci fmt fmt-check clippy clippy-cluster doc bench bench-cluster sample-data clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

profile: ## build (release) and profile the sample, or EVENTS=your.csv; reports in out/profile
	$(CARGO) build --release --locked --bin userlens
ifeq ($(strip $(EVENTS)),)
	$(BIN_RELEASE) run pipelines/profile.toml --out $(OUT)
else
	$(BIN_RELEASE) profile $(EVENTS) --out $(OUT)
endif

AS_OF ?= $(shell date -u +%F)
nightly: ## build (release) and run pipelines/nightly.toml for AS_OF (default today, UTC)
	$(CARGO) build --release --locked --bin userlens
	$(BIN_RELEASE) run pipelines/nightly.toml --as-of $(AS_OF)

cdnow: ## build (release) and fit BG/NBD, Pareto/NBD and Gamma-Gamma on the real CDNOW sample -> out/cdnow
	$(CARGO) build --release --locked --bin userlens
	$(BIN_RELEASE) run pipelines/cdnow.toml --as-of 1997-10-01

# The cluster crate (Ballista) builds only for the `cluster` targets.
NO_CLUSTER := --workspace --exclude userlens-cluster

test: ## run every test (dev profile) but the cluster's
	$(CARGO) test $(NO_CLUSTER) --locked

test-cluster: ## build with `--features cluster` and run the cluster's tests, a loopback Ballista cluster among them (dev profile)
	$(CARGO) test --locked --features cluster -p userlens-cluster -p userlens --lib --test cluster

browser: ## render the committed fixture run and a sample run, load both pages in headless Chromium (after `make test`)
	BIN=target/debug/userlens bash tests/browser/check_pages.sh

FUZZ_CASES ?= 4000
fuzz: ## property-based fuzzing of the ingest and pipeline-file parsers (FUZZ_CASES per property)
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --locked -p userlens-ingest -p userlens-pipeline fuzz

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check formatting
	$(CARGO) fmt --all -- --check

clippy: ## lint, warnings are errors
	$(CARGO) clippy $(NO_CLUSTER) --all-targets --locked -- -D warnings

clippy-cluster: ## lint the cluster crate and the binary with `--features cluster`
	$(CARGO) clippy -p userlens-cluster -p userlens --features cluster --all-targets --locked -- -D warnings

doc: ## build the API docs, warnings are errors
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked --features cluster

ci: fmt-check clippy clippy-cluster test test-cluster doc browser ## what CI runs: fmt check, clippy, tests (the cluster's too), docs, the report in a browser

bench-cluster: ## 10M events on a loopback Ballista cluster (scheduler and two executors) vs local -> docs/benchmarks-cluster.md
	bash bench/cluster.sh

bench: ## userlens vs the polars floor and the pandas/scikit-learn/lifetimes peer on 1M and 10M events (BENCH_SIZES adds 100M, run out of core) -> docs/benchmarks.md
	bash bench/run.sh

sample-data: ## regenerate sample_data/events.csv.gz, truth.csv, survey.csv and the segment and retail exports (byte for byte)
	$(CARGO) run --release --locked --bin userlens -- generate --force --users 1800 --seed 42 \
		--start 2026-01-01 --days 180 --out sample_data/events.csv --truth sample_data/truth.csv \
		--survey sample_data/survey.csv
	gzip -9nf sample_data/events.csv
	$(CARGO) run --release --locked --example segment_export -- sample_data/events.csv.gz \
		sample_data/segment_events.ndjson 300
	gzip -9nf sample_data/segment_events.ndjson
	$(CARGO) run --release --locked --example retail_export -- sample_data/events.csv.gz \
		sample_data/retail.csv
	gzip -9nf sample_data/retail.csv

clean: ## remove build outputs, runs and reports
	rm -rf target out runs
