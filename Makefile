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
# JupyterLab refuses to run as root without this flag (containers, CI machines).
LAB_FLAGS ?= $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test install system-packages zk-start zk-status zk-stop bench clean

lab: install
	$(PY) -m course_lib.zk start
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/00_start_here.ipynb

test: install
	$(PY) -m pytest -n $(JOBS) --dist loadscope --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=120 -p no:cacheprovider tests notebooks solutions

install: system-packages $(STAMP)

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
	touch $(STAMP)

zk-start: install
	$(PY) -m course_lib.zk start
zk-status:
	$(PY) -m course_lib.zk status
zk-stop:
	$(PY) -m course_lib.zk stop

bench: install
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	-$(PY) -m course_lib.zk stop
	rm -rf .zk
