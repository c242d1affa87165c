# Set-up on a fresh Debian machine (run as root, or with sudo available):
#   make demo      install what is missing, compile the engine, fit the bundled samples, render, report
#   make test      install what is missing, run the whole test suite
#   make install   link .venv/bin/wifm into ~/.local/bin, so that `wifm` works from any folder
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# libportaudio2: sounddevice; jackd2: headless real-time tests (JACK dummy backend);
# chromium: report rendering test; python3-venv: venv on Debian's python3; libfluidsynth3: SoundFont input
# (pyfluidsynth); timgm6mb-soundfont: the General MIDI SoundFont of tools/bench_bank.py --sf2.
APT_PACKAGES := libportaudio2 libsndfile1 jackd2 chromium python3-venv libfluidsynth3 timgm6mb-soundfont
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT := out/demo

LINK_DIR := $(HOME)/.local/bin

.PHONY: demo test deps venv install clean

deps:
	@missing=""; for package in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

venv: deps $(VENV)/.installed

# warmup first: the Numba kernels compile once (about ten seconds) with a message, not silently mid-demo
demo: venv
	$(BIN)/wifm warmup
	$(BIN)/python tools/demo.py --out $(DEMO_OUT)

install: venv
	mkdir -p $(LINK_DIR)
	ln -sf $(abspath $(BIN)/wifm) $(LINK_DIR)/wifm
	@case ":$$PATH:" in *":$(LINK_DIR):"*) echo "wifm -> $(LINK_DIR)/wifm";; \
		*) echo "wifm -> $(LINK_DIR)/wifm; $(LINK_DIR) is not on your PATH: add it, or run .venv/bin/wifm";; esac

test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
