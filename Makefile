# slimhar — `make demo` and `make test` each set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_SYS  ?= python3.11
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.slimhar-installed
RUNS    := runs
APT_PKGS := gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib libnewlib-arm-none-eabi qemu-system-arm

.PHONY: help setup setup-apt setup-venv test test-fast demo train-hapt eval-hapt quantize-hapt bench-train bench-quantize clean

help: ## this list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: setup-apt setup-venv ## idempotent: Debian packages (ARM toolchain, QEMU) + .venv with every pinned dependency

setup-apt: ## install the Debian packages the firmware stages need, when missing
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then \
	  echo "setup-apt: toolchain and QEMU present"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PKGS); \
	fi

setup-venv: $(STAMP) ## the Python environment only

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==25.3"
	# torch==2.13.0 first: the CPU build this machine serves from disk (never --isolated)
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

test: setup ## the whole test suite (what CI runs)
	$(PY) -m pytest -q

test-fast: setup-venv ## the Python tests only, stop at the first failure
	$(PY) -m pytest -q -x

demo: setup ## BasicMotions (real data): train, evaluate every subnet, quantize all to int8 in one blob, verify in TFLM
	rm -rf $(RUNS)/demo
	$(VENV)/bin/slimhar data info basicmotions
	$(VENV)/bin/slimhar train --config basicmotions_cnn --out $(RUNS)/demo
	$(VENV)/bin/slimhar eval $(RUNS)/demo/checkpoint.pt --json $(RUNS)/demo/eval.json --plot $(RUNS)/demo/pareto.png
	$(VENV)/bin/slimhar quantize $(RUNS)/demo/checkpoint.pt --out $(RUNS)/demo/int8
	$(VENV)/bin/slimhar blob verify $(RUNS)/demo/int8/model.blob
	@echo "demo outputs in $(RUNS)/demo/ (pareto.png, int8/report.md, int8/model.blob)"

train-hapt: setup ## the paper's 150-epoch schedule on hapt-uci (CNN; about an hour on 2 cores; resumable)
	$(VENV)/bin/slimhar train --config hapt_uci_cnn --out $(RUNS)/hapt_uci_cnn $$( [ -f $(RUNS)/hapt_uci_cnn/checkpoint.pt ] && echo --resume )

eval-hapt: setup ## evaluate the hapt-uci run: table, JSON and Pareto plot into docs/
	$(VENV)/bin/slimhar eval $(RUNS)/hapt_uci_cnn/checkpoint.pt --json docs/assets/hapt_uci_cnn_test.json --plot docs/assets/hapt_uci_cnn_pareto.png

quantize-hapt: setup ## quantize every subnet of the hapt-uci run (+ TF-converter baseline) into docs/assets
	$(VENV)/bin/slimhar quantize $(RUNS)/hapt_uci_cnn/checkpoint.pt --out $(RUNS)/hapt_uci_cnn/int8
	cp $(RUNS)/hapt_uci_cnn/int8/report.md docs/assets/hapt_uci_cnn_int8_report.md
	cp $(RUNS)/hapt_uci_cnn/int8/int8_vs_float.png docs/assets/hapt_uci_cnn_int8_vs_float.png

bench-train: setup ## seconds per step / epoch, CNN and ResNet, UCI-HAR shapes, every layout (+ BN calibration time)
	mkdir -p $(RUNS)
	for cfg in uci_cnn uci_resnet; do \
	  for lay in cl nchw seq; do \
	    $(VENV)/bin/slimhar bench train --config $$cfg --layout $$lay --steps 20 --json $(RUNS)/bench_$${cfg}_$${lay}.json || exit 1; \
	  done; \
	  $(VENV)/bin/slimhar bench train --config $$cfg --layout cl --steps 3 --calib --json $(RUNS)/bench_$${cfg}_calib.json || exit 1; \
	done

bench-quantize: setup ## time `slimhar quantize` on the full UCI grid (171 subnets) without the baseline
	$(VENV)/bin/slimhar quantize $(RUNS)/hapt_uci_cnn/checkpoint.pt --out $(RUNS)/bench_quantize --no-baseline

clean: ## remove build and run outputs (keeps .venv)
	rm -rf $(RUNS) .pytest_cache build *.egg-info
