# Two commands do all set-up on a fresh Debian/Ubuntu machine:
#   make lab    install everything, start ZooKeeper, open JupyterLab on the course
#   make test   install everything, run every test (library, ZooKeeper, notebooks)
# Other targets: make install, make zk-start, make zk-status, make zk-stop, make bench, make clean

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# pytest workers: 2 on the 2-core machines the course is built for.
JOBS    ?= 2
# Extra flags for `jupyter lab`, e.g. make lab LAB_FLAGS="--port=8890 --IdentityProvider.token=secret".
# (--allow-root is added for root by course_lib.lab.)
LAB_FLAGS ?=

.PHONY: lab test install system-packages browser-packages zk-start zk-status zk-stop bench clean binder-check

# Starts ZooKeeper (on $$COURSE_ZK_PORT, default 2181), then JupyterLab at the repository
# root, opening notebooks/00_start_here.ipynb.
lab: install
	$(PY) -m course_lib.lab $(LAB_FLAGS)

test: install browser-packages
	$(PY) -m pytest -n $(JOBS) --dist loadscope --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=120 -p no:cacheprovider tests notebooks solutions

install: system-packages $(STAMP)

# Debian's Chromium (and a font with the chapter's Chinese titles) for the browser tests;
# elsewhere, point COURSE_CHROMIUM at a Chromium or Chrome binary.
browser-packages:
	@if ! command -v chromium >/dev/null && [ -z "$$COURSE_CHROMIUM" ]; then \
	  if command -v apt-get >/dev/null; then \
	    echo "Installing Chromium with apt-get (for the browser tests)"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	  else \
	    echo "Install Chromium yourself and set COURSE_CHROMIUM to its path."; \
	  fi; \
	fi

# Java and Apache ZooKeeper from Debian/Ubuntu (skipped when already there, or not apt).
system-packages:
	@if [ ! -e /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    echo "Installing Java and ZooKeeper with apt-get"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq default-jre-headless zookeeper >/dev/null; \
	  else \
	    echo "Install Java and ZooKeeper yourself (macOS: brew install zookeeper), or set ZK_HOSTS."; \
	  fi; \
	fi
	@if ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get install -y -qq python3-venv >/dev/null; \
	fi

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e .
	$(PY) -m course_lib.lab install-config
	touch $(STAMP)

zk-start: install
	$(PY) -m course_lib.zk start
zk-status:
	$(PY) -m course_lib.zk status
zk-stop:
	$(PY) -m course_lib.zk stop

# Baselines that only the benchmarks need (PySyncObj) come from benchmarks/requirements.txt.
bench: install
	$(PY) -m pip install -q -r benchmarks/requirements.txt
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	-$(PY) -m course_lib.zk stop
	rm -rf .zk

# Builds and launches the course the way Binder does (a non-root user, a fresh venv,
# binder/requirements.txt, binder/postBuild), runs every lesson through binder/start and
# measures the set-up's peak memory against mybinder's 2 GB (see README, "Binder").
binder-check:
	bash binder/check
