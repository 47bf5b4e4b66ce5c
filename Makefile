# slimhar — `make demo` and `make test` each set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_SYS  ?= python3.11
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.slimhar-installed
RUNS    := runs
APT_PKGS := gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib libnewlib-arm-none-eabi qemu-system-arm
# PlatformIO lives in its own venv; its core dir is inside the checkout (platformio.ini core_dir),
# so a second checkout never builds with another checkout's platform.
PIO_VENV := .pio-venv
export PLATFORMIO_CORE_DIR := $(CURDIR)/.pio-core
PIO_STAMP := .pio-core/.slimhar-ready
SCONS_WHL := .cache/wheels/scons-4.11.1-py3-none-any.whl
FW_BLOB  := runs/firmware/model.blob

.PHONY: help setup setup-apt setup-venv setup-pio firmware-blob firmware-build firmware-test test test-fast demo train-hapt eval-hapt quantize-hapt bench-train bench-quantize clean

help: ## this list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: setup-apt setup-venv setup-pio ## idempotent: Debian packages (ARM toolchain, QEMU), .venv with every pinned dependency, offline PlatformIO

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

setup-pio: $(PIO_STAMP) ## PlatformIO 6.2.0 in .pio-venv, its tool-scons from PyPI, telemetry and update checks off

$(PIO_STAMP):
	@test -x $(PIO_VENV)/bin/pio || { $(PY_SYS) -m venv $(PIO_VENV) && $(PIO_VENV)/bin/pip install -q "platformio==6.2.0"; }
	@mkdir -p .cache/wheels .pio-core/packages/tool-scons
	@test -f $(SCONS_WHL) || $(PIO_VENV)/bin/pip download -q --no-deps -d .cache/wheels "scons==4.11.1"
	cd .pio-core/packages/tool-scons && $(CURDIR)/$(PIO_VENV)/bin/python -m zipfile -e $(CURDIR)/$(SCONS_WHL) .
	printf 'import SCons.Script\nif __name__ == "__main__":\n    SCons.Script.main()\n' > .pio-core/packages/tool-scons/scons.py
	echo '{"name": "tool-scons", "version": "4.41101.0"}' > .pio-core/packages/tool-scons/package.json
	echo '{"type": "tool", "name": "tool-scons", "version": "4.41101.0", "spec": {"owner": "platformio", "id": null, "name": "tool-scons", "requirements": null, "uri": null}}' > .pio-core/packages/tool-scons/.piopm
	$(PIO_VENV)/bin/pio settings set enable_telemetry no > /dev/null
	$(PIO_VENV)/bin/pio settings set check_platformio_interval 3650 > /dev/null
	@touch $@

firmware-blob: $(FW_BLOB) ## the default blob the firmware embeds (BasicMotions CNN, every subnet; ~20 s)

$(FW_BLOB): | setup-venv
	rm -rf runs/firmware
	$(VENV)/bin/slimhar train --config basicmotions_cnn --out runs/firmware/run --epochs 10
	$(VENV)/bin/slimhar quantize runs/firmware/run/checkpoint.pt --out runs/firmware/int8 --no-baseline --verify 2
	cp runs/firmware/int8/model.blob $@

firmware-build: setup $(FW_BLOB) ## build the emulated-board firmware offline (pio run -e mps2_an386)
	$(PIO_VENV)/bin/pio run -e mps2_an386

firmware-test: setup $(FW_BLOB) ## C++ tests on the host and in QEMU (pio test -e host -e mps2_an386)
	$(PIO_VENV)/bin/pio test -e host -e mps2_an386

test: setup $(FW_BLOB) ## the whole test suite (what CI runs): C++ tests on host and in QEMU, then pytest
	$(PIO_VENV)/bin/pio test -e host -e mps2_an386
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

clean: ## remove build and run outputs (keeps .venv, .pio-venv)
	rm -rf $(RUNS) .pytest_cache build *.egg-info .pio
