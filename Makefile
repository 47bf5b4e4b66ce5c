# slimhar — `make demo` and `make test` each set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_SYS  ?= python3.11
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.slimhar-installed
RUNS    := runs
APT_PKGS := g++ gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib libnewlib-arm-none-eabi qemu-system-arm clang-14 libclang-rt-14-dev
# PlatformIO lives in its own venv; its core dir is inside the checkout (platformio.ini core_dir),
# so a second checkout never builds with another checkout's platform.
PIO_VENV := .pio-venv
export PLATFORMIO_CORE_DIR := $(CURDIR)/.pio-core
PIO_STAMP := .pio-core/.slimhar-ready
SCONS_WHL := .cache/wheels/scons-4.11.1-py3-none-any.whl
FW_BLOB  := runs/firmware/model.blob

.PHONY: bench-scratch bench-tflm-arena bench-int8 install-check hil-blob hil hil-soak hil-report-check bench-runtime help setup setup-apt setup-venv setup-pio firmware-blob firmware-build firmware-run firmware-test test test-fast demo train-hapt eval-hapt quantize-hapt bench-train bench-paper bench-quantize bench-engine engine-check-hapt fuzz-build fuzz fuzz-long clean

help: ## this list
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: setup-apt setup-venv setup-pio ## idempotent: Debian packages (ARM toolchain, QEMU), .venv with every pinned dependency, offline PlatformIO

setup-apt: ## install the Debian packages the firmware stages need, when missing
	@if command -v g++ >/dev/null && command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null && command -v clang++-14 >/dev/null \
	    && ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then \
	  echo "setup-apt: host g++, ARM toolchain, QEMU and clang (libFuzzer) present"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PKGS); \
	fi

setup-venv: $(STAMP) ## the Python environment only

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==25.3"
	# torch==2.13.0 first: the CPU build this machine serves from disk (never --isolated)
	$(PY) -m pip install -q "torch==2.13.0"
	# the ranges of pyproject.toml, resolved to the exact versions of constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,hil]"
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

$(FW_BLOB): $(wildcard quantize/*.py) | setup-venv
	rm -rf runs/firmware
	$(VENV)/bin/slimhar train --config basicmotions_cnn --out runs/firmware/run --epochs 10
	$(VENV)/bin/slimhar quantize runs/firmware/run/checkpoint.pt --out runs/firmware/int8 --no-baseline --verify 2
	cp runs/firmware/int8/model.blob $@

# The HIL suite's default blob: hapt-uci's causal CNN (the chain runs on the device from raw
# acc + gyro), 3 epochs (~1 minute; 89-97 % validation accuracy across widths), 12 subnets.
HIL_BLOB := runs/hil/model.blob
HIL_ARGS = $(if $(PORT),--port $(PORT)) $(if $(BAUD),--baud $(BAUD)) $(if $(FLASH),--flash $(FLASH)) $(if $(BLOB),--blob $(BLOB))

$(HIL_BLOB): $(wildcard quantize/*.py) | setup-venv
	rm -rf runs/hil/run runs/hil/int8
	$(VENV)/bin/slimhar train --config hapt_uci_causal_cnn --out runs/hil/run --epochs 3
	$(VENV)/bin/slimhar quantize runs/hil/run/checkpoint.pt --out runs/hil/int8 --widths 0.1,0.25,0.5,1.0 \
	  --resolutions 128,112,96 --no-baseline --verify 2
	cp runs/hil/int8/model.blob $@

hil-blob: $(HIL_BLOB) ## the HIL suite's default blob (hapt-uci causal CNN, 3 epochs, 12 subnets; ~1.5 min)

hil: setup $(HIL_BLOB) ## the HIL suite against QEMU, or a board: PORT=/dev/ttyACM0 [BAUD=115200] [FLASH=nano33ble] [BLOB=file]; reports in runs/hil/report/
	$(PY) -m pytest hil_tests $(HIL_ARGS)

hil-soak: setup $(HIL_BLOB) ## the HIL soak: 10,000 windows streamed, 0 lost, 0 mismatches (same PORT / FLASH / BLOB)
	$(PY) -m pytest hil_tests --run-slow -k soak $(HIL_ARGS)

hil-report-check: ## open the last HIL report in headless Chromium (installed from Debian if missing) and check it renders
	@command -v chromium >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }
	$(PY) -m slimhar.tools.report_check runs/hil/report

firmware-build: setup $(FW_BLOB) ## build the emulated-board firmware offline (pio run -e mps2_an386)
	$(PIO_VENV)/bin/pio run -e mps2_an386

firmware-run: setup $(FW_BLOB) ## the firmware in QEMU with its serial console on this terminal (type `help`; Ctrl-A X quits)
	$(PIO_VENV)/bin/pio run -e mps2_an386 -t upload

firmware-test: setup $(FW_BLOB) ## C++ tests on the host and in QEMU (pio test -e host -e mps2_an386)
	$(PIO_VENV)/bin/pio test -e host -e mps2_an386

test: setup $(FW_BLOB) ## the whole test suite (what CI runs): C++ tests on host and in QEMU, pytest, the HIL suite in QEMU, 100,000 fuzz inputs per target, the core install check
	$(PIO_VENV)/bin/pio test -e host -e mps2_an386
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory hil
	$(MAKE) --no-print-directory fuzz FUZZ_RUNS=100000
	$(MAKE) --no-print-directory install-check

install-check: ## the core install as a user gets it: pip install . (no extras) into a fresh venv, then data info, train, quantize, blob verify from another folder (~3 min)
	PY_SYS=$(PY_SYS) .ci/install-check

test-fast: setup-venv ## the Python tests only, stop at the first failure
	$(PY) -m pytest -q -x

demo: setup ## the whole mission, no hardware: train hapt-uci (causal recipe; FULL=1: the paper's 150 epochs), quantize a grid into one blob, build the firmware, boot it in QEMU, stream a held-out recording while battery, budget and load change, the paper's runtime experiments, a summary (~5 min)
	$(PY) -m slimhar.tools.mission --out $(RUNS)/demo $(if $(FULL),--full)

PRECISION ?= fp32
MODEL     ?= cnn
HAPT_RUN   = $(RUNS)/hapt_uci_$(MODEL)
train-hapt: setup ## the paper's 150-epoch schedule on hapt-uci (MODEL=cnn|resnet|causal_cnn; CNN ~25 min on 2 cores, ~16 with PRECISION=bf16; ResNet ~80, ~42 with bf16; resumable)
	$(VENV)/bin/slimhar train --config hapt_uci_$(MODEL) --precision $(PRECISION) --out $(HAPT_RUN) $$( [ -f $(HAPT_RUN)/checkpoint.pt ] && echo --resume )

eval-hapt: setup ## evaluate the hapt-uci run (MODEL=cnn|resnet|causal_cnn): table, JSON and Pareto plot into docs/assets
	$(VENV)/bin/slimhar eval $(HAPT_RUN)/checkpoint.pt --json docs/assets/hapt_uci_$(MODEL)_test.json --plot docs/assets/hapt_uci_$(MODEL)_pareto.png

quantize-hapt: setup ## quantize every subnet of the hapt-uci run (+ TF-converter baseline) into docs/assets
	$(VENV)/bin/slimhar quantize $(RUNS)/hapt_uci_cnn/checkpoint.pt --out $(RUNS)/hapt_uci_cnn/int8 --baseline --split test
	cp $(RUNS)/hapt_uci_cnn/int8/report.md docs/assets/hapt_uci_cnn_int8_report.md
	cp $(RUNS)/hapt_uci_cnn/int8/int8_vs_float.png docs/assets/hapt_uci_cnn_int8_vs_float.png

bench-train: setup ## seconds per step / epoch, CNN and ResNet, UCI-HAR shapes, every layout and precision (+ BN calibration time, where a step's time goes)
	mkdir -p $(RUNS)
	for run in "uci_cnn fused bf16" "uci_cnn fused fp32" "uci_cnn cl fp32" "uci_cnn nchw fp32" "uci_cnn seq fp32" \
	           "uci_resnet fused bf16" "uci_resnet fused fp32" "uci_resnet cl fp32" "uci_resnet nchw fp32" "uci_resnet seq fp32"; do \
	  set -- $$run; \
	  $(VENV)/bin/slimhar bench train --config $$1 --layout $$2 --precision $$3 --steps 40 \
	    --json $(RUNS)/bench_$$1_$$2_$$3.json || exit 1; \
	done
	for cfg in uci_cnn uci_resnet; do \
	  $(VENV)/bin/slimhar bench train --config $$cfg --steps 3 --calib --json $(RUNS)/bench_$${cfg}_calib.json || exit 1; \
	  $(VENV)/bin/slimhar bench train-costs --config $$cfg --json $(RUNS)/bench_$${cfg}_costs.json || exit 1; \
	done

bench-paper: setup ## the paper's own code vs slimhar, alternately in one run (PAPER_CODE=checkout of the authors' Collaborative_HAR repository)
	@if [ -z "$(PAPER_CODE)" ]; then echo "bench-paper: set PAPER_CODE=/path/to/Collaborative_HAR (a checkout of the paper's code)"; exit 2; fi
	mkdir -p $(RUNS)
	for cfg in uci_cnn uci_resnet; do \
	  $(VENV)/bin/slimhar bench paper-code --repo $(PAPER_CODE) --config $$cfg --rounds 3 \
	    --json $(RUNS)/bench_paper_$${cfg}.json || exit 1; \
	done

INT8_RUN ?= $(RUNS)/hapt_uci_causal_cnn
bench-int8: setup ## the int8 study of docs/results.md §3 on the 150-epoch run in INT8_RUN (make train-hapt MODEL=causal_cnn): every range method on the full grid, the TF-converter baseline like with like (min-max on both sides), method chosen on validation (~20 min)
	@test -f $(INT8_RUN)/checkpoint.pt || { echo "bench-int8: no $(INT8_RUN)/checkpoint.pt (make train-hapt MODEL=causal_cnn)"; exit 2; }
	for m in minmax mse percentile nncf; do \
	  $(VENV)/bin/slimhar quantize $(INT8_RUN)/checkpoint.pt --out $(RUNS)/int8/$$m --ranges $$m --split test \
	    $$( [ $$m = minmax ] && echo --baseline ) || exit 1; \
	done
	$(PY) -m slimhar.benchmarks.int8_study $(RUNS)/int8/{minmax,mse,percentile,nncf}/report.json --json docs/assets/int8_study.json
	cp $(RUNS)/int8/minmax/int8_vs_float.png docs/assets/int8_minmax_vs_converter.png

bench-scratch: setup $(HIL_BLOB) $(FW_BLOB) ## the DSP kernels' RAM / speed trade: the engine built for several scratch budgets, the HIL and firmware blobs in QEMU (~2 min)
	$(PY) -m slimhar.benchmarks.scratch_sweep $(HIL_BLOB) --json docs/assets/scratch_sweep_hil.json
	$(PY) -m slimhar.benchmarks.scratch_sweep $(FW_BLOB) --budgets 8192,16384,32768,16777216 --json docs/assets/scratch_sweep_basicmotions.json

bench-tflm-arena: setup $(HIL_BLOB) $(FW_BLOB) ## every subnet's arena + DSP scratch against TFLM's arena (host interpreter) on the same .tflite, and its instructions when held to it (QEMU; ~10 s once engine_check is built)
	$(PY) -m slimhar.benchmarks.tflm_arena $(HIL_BLOB) --measure --json docs/assets/tflm_arena_hil.json
	$(PY) -m slimhar.benchmarks.tflm_arena $(FW_BLOB) --measure --json docs/assets/tflm_arena_basicmotions.json

bench-quantize: setup ## time `slimhar quantize` on the full UCI grid (171 subnets) without the baseline
	$(VENV)/bin/slimhar quantize $(RUNS)/hapt_uci_cnn/checkpoint.pt --out $(RUNS)/bench_quantize --split test

bench-engine: setup $(FW_BLOB) ## the firmware engine in QEMU: instructions/MAC per subnet (DSP vs portable), arena, switch cost, flash/RAM, and at the least RAM
	mkdir -p $(RUNS)
	$(VENV)/bin/slimhar bench engine --blob $(FW_BLOB) --least-ram --json $(RUNS)/bench_engine_basicmotions.json --plot docs/assets/engine_basicmotions.png
	@if [ -f $(RUNS)/hapt_uci_cnn/int8/model.blob ]; then \
	  $(VENV)/bin/slimhar bench engine --blob $(RUNS)/hapt_uci_cnn/int8/model.blob --no-firmware --windows 1 \
	    --json $(RUNS)/bench_engine_hapt.json --plot docs/assets/engine_hapt_uci_cnn.png; fi

bench-runtime: setup $(HIL_BLOB) ## the paper's two runtime experiments on the emulated board with the HIL blob: plots + JSON into docs/assets
	$(VENV)/bin/slimhar bench runtime --qemu --blob $(HIL_BLOB) --out $(RUNS)/bench_runtime
	cp $(RUNS)/bench_runtime/runtime_budget.png docs/assets/runtime_budget_steps.png
	cp $(RUNS)/bench_runtime/runtime_load.png docs/assets/runtime_load_steps.png
	cp $(RUNS)/bench_runtime/runtime.json docs/assets/runtime_hil_blob.json

engine-check-hapt: setup ## every subnet of the full hapt-uci blob (make quantize-hapt) vs TFLM: 1000 test windows per subnet on the host, 16 in QEMU (DSP, portable)
	$(VENV)/bin/slimhar blob check-engine $(RUNS)/hapt_uci_cnn/int8/model.blob --kinds host,dsp,portable --host-windows 1000 --qemu-windows 16

# One libFuzzer target per reader (firmware/fuzz/): the blob reader, the flatbuffer reader,
# Prepare, and Prepare + Invoke; each built with clang 14, ASan and UBSan.
FUZZ_TARGETS := blob flatbuffer prepare invoke
FUZZ_LIB_SRCS := firmware/lib/slimhar_blob/src/slimhar_blob.cpp firmware/lib/slimhar_app/src/chain.cpp $(wildcard firmware/lib/slimhar_engine/src/*.cpp) $(wildcard firmware/lib/slimhar_engine/src/ops/*.cpp)
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_SECONDS ?= 1800
# FUZZ_RUNS=N: N inputs per target from a fixed seed instead of FUZZ_SECONDS split over the targets (make test: 100000)
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS) -seed=1,-max_total_time=$$(( $(FUZZ_SECONDS) / 4 )))

build/fuzz/fuzz_%: firmware/fuzz/fuzz_%.cpp firmware/fuzz/fuzz_common.h $(FUZZ_LIB_SRCS) $(wildcard firmware/lib/*/src/*.h) $(wildcard firmware/lib/*/src/*.def) | setup-apt
	mkdir -p build/fuzz
	clang++-14 -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -ffp-contract=off -Ifirmware/lib/slimhar_blob/src -Ifirmware/lib/slimhar_engine/src -Ifirmware/lib/slimhar_app/src $< $(FUZZ_LIB_SRCS) -o $@

fuzz-build: $(FUZZ_BINS) ## the libFuzzer targets: blob reader, flatbuffer reader, Prepare, Prepare + Invoke (ASan + UBSan)

fuzz: $(FUZZ_BINS) $(FW_BLOB) ## fuzz every target for FUZZ_SECONDS in all (default 1800) or FUZZ_RUNS inputs each, then replay the blob inputs on the DSP kernels in QEMU
	rm -rf build/fuzz/seeds && mkdir -p build/fuzz/seeds
	$(PY) -m slimhar.tools.fuzz_seeds $(FW_BLOB) build/fuzz/seeds
	set -o pipefail; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus_$$t; \
	  echo "fuzz_$$t:"; \
	  build/fuzz/fuzz_$$t build/fuzz/corpus_$$t build/fuzz/seeds $(FUZZ_LIMIT) -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/$$t- 2>&1 | grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|Done|==|SUMMARY)" || exit 1; \
	done
	$(PY) -m slimhar.tools.engine_check replay build/fuzz/corpus_invoke --kind dsp

clean: ## remove build and run outputs (keeps .venv, .pio-venv)
	rm -rf $(RUNS) .pytest_cache build *.egg-info .pio
