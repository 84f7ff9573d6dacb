# linkage: `make demo` runs the migration on the embedded database; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_PORT ?= 27017
# make airflow's embedded MongoDB: DEMO_PORT unless given (the refusal of a busy port names MONGO_PORT)
MONGO_PORT ?= $(DEMO_PORT)

.PHONY: install system-deps tools lint docs demo test test-fast test-chaos airflow cluster bench bench-quick bench-reconcile bench-review bench-hotkey lock clean
# Debian packages the tests and `make cluster` need (PostgreSQL and Redis for the cluster,
# Chromium and its driver for the browser tests, faketime for the lease's clock-skew tests); `make system-deps`
# installs what is missing.
SYSTEM_PACKAGES ?= postgresql redis-server chromium chromium-driver faketime

install: $(STAMP)

# uv writes bytecode only when asked; without it every Airflow import is slow.
$(STAMP): requirements.txt pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || uv venv --quiet --python $(PYTHON) $(VENV)
	uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.txt
	uv pip install --quiet --python $(BIN)/python --compile-bytecode --no-deps -e .
	@touch $(STAMP)

system-deps: tools
	@command -v dpkg-query >/dev/null 2>&1 || { echo "system-deps: not a Debian system; install: $(SYSTEM_PACKAGES)"; exit 0; }; \
	missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "system-deps: installing" $$missing; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# FerretDB, pinned, built once with Go into var/tools/ (a second run takes no time; no Go: one line, and the
# tests on FerretDB are skipped with that reason). MongoDB's own tools are not served by the Go module proxy.
FERRETDB_VERSION ?= v1.24.2
tools:
	@FERRETDB_VERSION=$(FERRETDB_VERSION) bash scripts/build-ferretdb.sh var/tools/ferretdb-$(FERRETDB_VERSION)

demo: install
	DEMO_PORT=$(DEMO_PORT) BIN=$(BIN) bash scripts/demo.sh

# Airflow standalone on 127.0.0.1:8080 (AIRFLOW_PORT) with the embedded MongoDB (MONGO_PORT, default DEMO_PORT); Ctrl-C stops it all.
airflow: install
	BIN=$(BIN) MONGO_PORT=$(MONGO_PORT) bash scripts/airflow.sh

# The production topology natively: PostgreSQL, Redis, Airflow with the CeleryExecutor and two
# workers, the embedded MongoDB; UI on 127.0.0.1:8080. Ctrl-C stops everything.
cluster: install system-deps
	BIN=$(BIN) bash scripts/cluster.sh

# Style (ruff: pyflakes, pycodestyle, import order, bugbear), types (mypy on the package) and the layers
# (import-linter: a subpackage imports only the ones below it, .importlinter).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint system-deps
	$(BIN)/pytest

# Benchmarks print ratios measured side by side in one run; results in bench/results/latest.json.
# bench-quick takes ~5 minutes, bench ~90 on the embedded server (BENCH_ARGS="--mongo-uri ..." for a real one).
# BENCH_SERVER=ferretdb starts FerretDB (`make tools`) instead of the embedded server; there bench-quick
# runs at 100 / 1,000 (~2 minutes): FerretDB 1.24 scans its table for each update by _id (docs/servers.md,
# "Tested on two servers"), so 50,000 would take hours. BENCH_QUICK_SIZES overrides either.
BENCH_SERVER ?= nx
comma := ,
BENCH_QUICK_SIZES ?= $(if $(filter ferretdb,$(BENCH_SERVER)),100$(comma)1000,5000$(comma)50000)
bench-quick: install
	$(BIN)/python -m bench.run --sizes $(BENCH_QUICK_SIZES) --server $(BENCH_SERVER) $(BENCH_ARGS)

# Only the nightly reconcile at 50k and 1M deliveries (~25 minutes on the embedded server).
bench-reconcile: install
	$(BIN)/python -m bench.run --reconcile-only 50000,1000000 --server $(BENCH_SERVER) \
		--out bench/results/reconcile.json $(BENCH_ARGS)

# Issue 29: the backfill's peak RSS on 100,000 deliveries of one customer against the same spread across
# customers (goal: within 1.2x), each in a fresh process; bench/results/hotkey.json. ~5 minutes.
bench-hotkey: install
	$(BIN)/python -m bench.hotkey --server $(BENCH_SERVER) $(BENCH_ARGS)

# Issue 28: a person clears the decidable part of make demo's review queue in the browser (bulk accept at
# p >= 0.9 in the Linkage view, then an approved apply-decisions as a second person); ~10 minutes.
bench-review: install system-deps
	$(BIN)/python -m bench.review_clearing $(BENCH_ARGS)

bench: install
	$(BIN)/python -m bench.run --sizes 100000,1000000 --server $(BENCH_SERVER) $(BENCH_ARGS)

# The longer fault schedule: 60 SIGKILLs and 300 fuzzed datasets.
test-chaos: install
	LINKAGE_CHAOS_KILLS=60 LINKAGE_FUZZ_EXAMPLES=300 $(BIN)/pytest tests/airflow/test_reliability.py

# The inner loop: everything but the tests marked slow (crash schedules, browsers, clusters, many nights).
test-fast: install
	$(BIN)/pytest -m "not slow" -x -q

# Freezes the venv into requirements.txt, keeping its header (the direct dependencies and why a pin is held).
lock: install
	{ grep '^#' requirements.txt; uv pip freeze --python $(BIN)/python | grep -v -E '^(linkage|-e )'; } > requirements.lock
	mv requirements.lock requirements.txt

# The documentation site (mkdocs.yml, pages under docs/) into site/; --strict fails on a dead link or anchor.
# tests/unit/test_docs.py runs the same build, so `make test` does too.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
