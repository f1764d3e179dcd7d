# TickZen Portal: two commands. `make run` serves the portal; `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Stamp files keyed on the requirement files' contents: reinstall only when they change.
REQ_KEY := $(shell cat requirements.txt | sha256sum | cut -c1-16)
DEV_KEY := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
RUN_STAMP := $(VENV)/.installed-run-$(REQ_KEY)
DEV_STAMP := $(VENV)/.installed-dev-$(DEV_KEY)

# Debian packages the test suite drives for real (WordPress + MariaDB + PHP, Chromium, Redis).
APT_PACKAGES := mariadb-server wordpress php-cli php-mysql php-curl php-xml php-mbstring \
                php-gd chromium redis-server
FIRESTORE_JAR := /usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help run test lint bench clean distclean apt-packages check-emulator stop-services

help:
	@echo "make run    - create .venv, install requirements.txt, serve on \$${HOST:-127.0.0.1}:\$${PORT:-5000}"
	@echo "make test   - install apt packages + dev requirements, ruff, pytest (what CI runs)"
	@echo "make lint   - ruff check ."
	@echo "make bench  - run every bench/*.py"
	@echo "make clean  - remove caches, test artifacts and stale service pid files"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	$(PIP) install --disable-pip-version-check -q -r requirements.txt
	rm -f $(VENV)/.installed-run-*
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --disable-pip-version-check -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-dev-* $(VENV)/.installed-run-*
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	TICKZEN_ENV=$${TICKZEN_ENV:-development} $(PY) main_portal_app.py

apt-packages:
	@missing=""; for pkg in $(APT_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	else echo "apt packages: all present"; fi

check-emulator:
	@if [ -f "$(FIRESTORE_JAR)" ]; then echo "Firestore emulator: $(FIRESTORE_JAR)"; \
	elif [ "$${CI:-}" = "true" ]; then \
	  echo "ERROR: CI=true and the Firestore emulator is missing ($(FIRESTORE_JAR))." >&2; \
	  echo "Install it with: gcloud components install cloud-firestore-emulator" >&2; exit 1; \
	else echo "WARNING: no Firestore emulator; its tests will skip" \
	  "(gcloud components install cloud-firestore-emulator)"; fi

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

# pytest's fixtures start and stop every service; afterwards any process group still recorded
# in .services/*.pid is ended by its id, so `make test` leaves nothing running.
test: apt-packages check-emulator $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	@status=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || status=$$?; \
	$(MAKE) --no-print-directory stop-services; exit $$status

stop-services:
	@for f in .services/*.pid; do [ -e "$$f" ] || continue; \
	  pid=$$(cat "$$f"); \
	  if [ -n "$$pid" ] && kill -0 -- -"$$pid" 2>/dev/null; then \
	    echo "stopping leftover process group $$pid ($$f)"; \
	    kill -TERM -- -"$$pid" 2>/dev/null || true; sleep 1; \
	    kill -KILL -- -"$$pid" 2>/dev/null || true; fi; \
	  rm -f "$$f"; done

bench: $(DEV_STAMP)
	@set -e; for f in bench/*.py; do [ -e "$$f" ] || continue; \
	  echo "== $$f"; $(PY) "$$f"; done

clean: stop-services
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache test-artifacts .services

distclean: clean
	rm -rf $(VENV)
