# The README's two commands: `make demo` and `make test`. Each creates .venv if missing and installs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, pinned: 2.13.0 is a CPU wheel found locally; unpinned, pip would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test install lint clean browser strace notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[all]" --group dev
	touch $(STAMP)

install: $(STAMP)

# Debian's package $(1) for $(2), installed when its command is missing and apt-get is usable (CI runs as root).
define debian_tool
	@command -v $(1) >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's $(1) for $(2)..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  else echo "$(1) is missing and cannot be installed here: $(2) will be skipped."; fi; }
endef

# The web page of `shortlist serve` is tested in a real headless Chromium (Debian's package, driven by Playwright;
# Playwright never downloads a browser of its own).
browser:
	$(call debian_tool,chromium,the web page test)

# tests/integration/test_network_quiet.py runs shortlist's commands under Debian's strace (every system call that
# could reach the network, native threads included). Without it that test skips (in CI it fails).
strace:
	$(call debian_tool,strace,the network test)

demo: $(STAMP)
	$(BIN)/python -m shortlist.demo

# lint first: ruff, the format check and strict mypy are part of the tests, so they cannot be skipped.
test: $(STAMP) browser strace lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks integrations
	$(BIN)/ruff format --check src tests benchmarks integrations
	$(BIN)/mypy

# The notebooks are committed executed (tables and charts visible on a code host): run them and save the outputs.
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
