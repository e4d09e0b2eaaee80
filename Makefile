# The two commands of the README's Quickstart: `make demo` and `make test`.
# Both create (or reuse) .venv, install the package, and use the local Kafka broker
# unless KAFKA_BOOTSTRAP_SERVERS points at another one.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The whole CDNOW history (23,570 customers, about 340,000 events with the generated
# behaviour) takes minutes at one worker's throughput (about 2,000 events/s,
# BENCHMARKS.md); `make demo DEMO_CUSTOMERS=23570` runs all of it.
DEMO_CUSTOMERS ?= 1000

.PHONY: setup broker demo test unit stop clean dashboard-assets browser promtool

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

setup: $(INSTALLED)

broker: setup
ifeq ($(strip $(KAFKA_BOOTSTRAP_SERVERS)),)
	$(BIN)/segments kafka start
else
	@echo "Using the Kafka cluster at $(KAFKA_BOOTSTRAP_SERVERS)"
endif

demo: broker
	$(BIN)/segments demo --customers $(DEMO_CUSTOMERS)

# The test suite starts its own broker (tests/support/brokers.py) unless
# KAFKA_BOOTSTRAP_SERVERS is set; fetch the jars first so the download is visible.
# TEST_PROCESSES pytest processes (pytest-xdist) share the tests, a file's tests staying
# together; each process starts a broker of its own. Much of an integration test is
# waiting on the broker and its processes, so three take a quarter less time than two
# on 2 cores (measured 2026-11-28: 394 s against 538 s; README "Tests").
# TEST_PROCESSES=0 runs everything in one process.
TEST_PROCESSES ?= 3
test: setup
ifeq ($(strip $(KAFKA_BOOTSTRAP_SERVERS)),)
	$(BIN)/segments kafka fetch
endif
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile

unit: setup
	$(BIN)/pytest tests/unit

# The dashboard's browser libraries (stream/ops/static/vendor/) are committed, so users
# need no npm; this refreshes them from the versions locked in tools/dashboard-assets/.
DASHBOARD_NPM := tools/dashboard-assets
DASHBOARD_VENDOR := stream/ops/static/vendor
dashboard-assets:
	cd $(DASHBOARD_NPM) && npm ci --no-audit --no-fund
	mkdir -p $(DASHBOARD_VENDOR)
	cp $(DASHBOARD_NPM)/node_modules/uplot/dist/uPlot.iife.min.js $(DASHBOARD_NPM)/node_modules/uplot/dist/uPlot.min.css $(DASHBOARD_VENDOR)/
	cp $(DASHBOARD_NPM)/node_modules/uplot/LICENSE $(DASHBOARD_VENDOR)/uPlot.LICENSE

# promtool (Prometheus's rule checker, in Debian's prometheus package) for the alerting
# rules' tests (tests/unit/test_deploy.py runs deploy/prometheus/alerts_test.yml).
promtool:
	test -x /usr/bin/promtool || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)

# Headless Chromium for tests/integration/test_dashboard_browser.py, from Debian.
browser:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

stop:
	-$(BIN)/segments kafka stop

clean: stop
	rm -rf $(VENV) .segments
