# ruff: noqa: F821  (SCons injects Import() and env into build scripts)
# PlatformIO pre-build script: embed a model.blob in the firmware as const data (flash).
# The blob comes from $SLIMHAR_BLOB, else the env's `custom_blob` option (a path relative to
# the project). `slimhar blob export-c` validates it and writes slimhar_model.{h,c}.
import os
import re
import subprocess
import sys

Import("env")  # noqa: F821  (SCons injects it)

proj = env.subst("$PROJECT_DIR")
if env.GetProjectOption("custom_blob", "") == "none":   # programs that read blobs at run time
    Return()  # noqa: F821
blob = os.environ.get("SLIMHAR_BLOB") or env.GetProjectOption("custom_blob", "runs/firmware/model.blob")
path = blob if os.path.isabs(blob) else os.path.join(proj, blob)
if not os.path.isfile(path):
    sys.stderr.write(f"slimhar: no blob at {path}: run `make firmware-blob`, or set SLIMHAR_BLOB / custom_blob\n")
    env.Exit(1)
out = os.path.join(env.subst("$BUILD_DIR"), "slimhar_generated")
py = os.path.join(proj, ".venv", "bin", "python")


def build_flags():
    """The build's flags: build_flags, $PLATFORMIO_BUILD_FLAGS and the CPPDEFINES set so far."""
    flags = " ".join([env.subst("$BUILD_FLAGS"), str(env.GetProjectOption("build_flags", "")),
                      os.environ.get("PLATFORMIO_BUILD_FLAGS", "")])
    for d in env.get("CPPDEFINES", []):
        if isinstance(d, (tuple, list)) and len(d) == 2:
            flags += f" -D{d[0]}={d[1]}"
    return flags


def define(name):
    """The value of the build's last -D<name>=N, or None."""
    found = re.findall(rf"-D\s*{name}=(\d+)\b", build_flags())
    return found[-1] if found else None


# -DSLIMHAR_DSP_SCRATCH_BUDGET=N: export-c sizes the static arena for it (main.cpp checks the two
# agree at compile time). -DSLIMHAR_LEAST_RAM=1: the arena for the least RAM any subnet runs in
# (the engine then takes smaller DSP tiles where a subnet needs them). -DSLIMHAR_RAM_LIMIT=N: for
# every subnet within N bytes of arena + scratch (those that cannot fit in their least).
budget, least, limit = define("SLIMHAR_DSP_SCRATCH_BUDGET"), define("SLIMHAR_LEAST_RAM") == "1", define("SLIMHAR_RAM_LIMIT")
subprocess.check_call([py if os.path.exists(py) else sys.executable, "-m", "slimhar", "blob", "export-c", path,
                       "-o", out, "--symbol", "slimhar_model"] + (["--dsp-scratch-budget", budget] if budget else [])
                      + (["--least-ram"] if least else []) + (["--ram-limit", limit] if limit else []),
                      stdout=subprocess.DEVNULL)
# say which model and which subnets this firmware embeds
subprocess.call([py if os.path.exists(py) else sys.executable, "-c",
                 "import sys; from slimhar.quantize.blob import Blob; b = Blob.open(sys.argv[1]); "
                 "print(f'slimhar: embedding {sys.argv[1]}: {len(b.data):,} bytes, {b.meta.get(\"config\", \"?\")}, '"
                 "f'{len(b.subnets)} subnets: ' + ', '.join(s.name for s in b.subnets))", path])
# TFLM's outputs for this blob (the oracle), compared bit for bit by firmware/test/test_engine;
# regenerated only when the blob changes. Unreferenced by the firmware, so the linker drops it.
subprocess.check_call([py if os.path.exists(py) else sys.executable, "-m", "slimhar.tools.golden", path, out,
                       "slimhar_golden"], stdout=subprocess.DEVNULL)
env.Append(CPPPATH=[out])
env.BuildSources(os.path.join("$BUILD_DIR", "slimhar_generated_obj"), out)
