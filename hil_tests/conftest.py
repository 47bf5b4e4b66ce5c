"""The hardware-in-the-loop suite: the same tests against the emulated board or a real one, over
pytest-embedded's serial service (its `dut` fixture, `expect`, `--port`).

    pytest hil_tests                                  # QEMU mps2-an386 (builds the firmware)
    pytest hil_tests --port /dev/ttyACM0 [--baud 115200] [--flash nano33ble]

Target selection: without --port the suite builds the emulated-board firmware with --blob
(default runs/hil/model.blob, `make hil-blob`) and starts `qemu-system-arm -M mps2-an386 -icount
shift=0` with UART0 on a local TCP server socket that waits for its first client; the serial
service then opens `socket://127.0.0.1:PORT` (pytest-embedded's own QEMU service cannot run this
machine: it always adds an `-drive if=mtd`). The first connection gets the boot output, and
nothing is sent before the firmware says `m-ready`. With --port the board is already flashed
(or flashed first with --flash ENV, `pio run -e ENV -t upload`) and --blob must be the blob it
runs (its CRC is checked against `info`).

Tests marked `emulator` (instruction counts, the load generator's timing, booting a damaged
image) are skipped on a real board, `sensor` ones on the emulator, each with its reason. `slow`
(the soak) runs only with --run-slow (`make hil-soak`).

Reports (runs/hil/report/ unless --hil-report DIR): junit.xml, report.html (self-contained,
pytest-html), report.json (board, firmware and blob identity, per-test outcomes, per-subnet
latency, the runtime experiments), transcript.log (every line sent and received), plots.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BLOB = REPO / "runs" / "hil" / "model.blob"


def pytest_addoption(parser):
    g = parser.getgroup("slimhar HIL")
    g.addoption("--blob", default=None, help=f"the blob the board runs (default {DEFAULT_BLOB.relative_to(REPO)})")
    g.addoption("--flash", default=None, metavar="ENV",
                help="flash the board on --port first: pio run -e ENV -t upload with --blob embedded")
    g.addoption("--hil-report", default=None, metavar="DIR", help="report folder (default runs/hil/report)")
    g.addoption("--run-slow", action="store_true", help="also run tests marked slow (the soak)")


def _report_dir(config) -> Path:
    return Path(config.getoption("--hil-report") or REPO / "runs" / "hil" / "report")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for m in ("emulator: needs the emulated board (instruction counts, the load generator, a damaged image)",
              "sensor: needs a real IMU on a real board", "slow: long (the soak); --run-slow / make hil-soak"):
        config.addinivalue_line("markers", m)
    out = _report_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    if not config.option.xmlpath:
        config.option.xmlpath = str(out / "junit.xml")
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(out / "report.html")
        config.option.self_contained_html = True
    (out / "transcript.log").write_text("")
    config._hil = Report(out)


def pytest_collection_modifyitems(config, items):
    emulated = not config.getoption("port")
    for it in items:
        if "slow" in it.keywords and not config.getoption("--run-slow"):
            it.add_marker(pytest.mark.skip(reason="slow: run with --run-slow (make hil-soak)"))
        if "emulator" in it.keywords and not emulated:
            it.add_marker(pytest.mark.skip(reason="needs the emulated board (instruction counts / load "
                                                  "generator / a damaged image): verified in QEMU only"))
        if "sensor" in it.keywords and emulated:
            it.add_marker(pytest.mark.skip(reason="needs a real IMU: the emulated board's sensor is the serial link"))


# -- the report --------------------------------------------------------------------------------
@dataclass
class Report:
    out: Path
    board: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)
    tests: list = field(default_factory=list)
    plots: dict = field(default_factory=dict)     # test nodeid -> [png paths]

    def add(self, key: str, value) -> None:
        self.sections[key] = value

    def log(self, line: str) -> None:
        if not hasattr(self, "_transcript"):     # opened once: a soak writes ~100,000 lines
            self._transcript = open(self.out / "transcript.log", "a", buffering=1)
        self._transcript.write(line + "\n")


@pytest.fixture(scope="session")
def hil_report(request) -> Report:
    return request.config._hil


@pytest.fixture
def attach_plot(request, hil_report):
    """attach_plot(path): a PNG shown in this test's row of the HTML report and listed in the JSON."""
    def add(path):
        hil_report.plots.setdefault(request.node.nodeid, []).append(str(path))
    return add


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    r = item.config._hil
    if rep.when == "call" or (rep.when == "setup" and rep.skipped):
        r.tests.append({"test": item.nodeid, "outcome": rep.outcome, "seconds": round(rep.duration, 3),
                        **({"reason": str(rep.longrepr[2]) if isinstance(rep.longrepr, tuple) else str(rep.longrepr)[:500]}
                           if rep.outcome != "passed" else {})})
    if rep.when == "call" and item.nodeid in r.plots:
        try:
            import base64

            import pytest_html
            extras = getattr(rep, "extras", [])
            for p in r.plots[item.nodeid]:
                extras.append(pytest_html.extras.png(base64.b64encode(Path(p).read_bytes()).decode()))
            rep.extras = extras
        except ImportError:
            pass


def pytest_sessionfinish(session, exitstatus):
    r = getattr(session.config, "_hil", None)
    if r is None:
        return
    doc = {"board": r.board, "tests": r.tests, "plots": r.plots, **r.sections,
           "host": platform.node(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "exit_status": int(exitstatus)}
    (r.out / "report.json").write_text(json.dumps(doc, indent=1))


def pytest_html_report_title(report):
    report.title = "slimhar hardware-in-the-loop report"


def pytest_html_results_summary(prefix, summary, postfix, session):
    """The board, firmware and blob this run tested, above the results table."""
    import html
    r = getattr(session.config, "_hil", None)
    if r is None or not r.board:
        return
    keys = ("target", "board", "firmware", "protocol", "kernels", "clock", "blob", "blob_crc32", "blob_sha256", "elf_sha256")
    rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(r.board[k]))}</td></tr>" for k in keys if k in r.board)
    prefix.append(f"<h2>Device under test</h2><table id='device-under-test'>{rows}</table>")


# -- the board ---------------------------------------------------------------------------------
@dataclass
class Board:
    url: str
    baud: int
    emulated: bool
    blob_path: Path
    elf: Path | None = None
    qemu: object = None
    booted: bool = False
    boot: list = field(default_factory=list)

    @functools.cached_property
    def blob(self):
        from slimhar.quantize.blob import Blob
        return Blob.open(self.blob_path)


def _blob_path(config) -> Path:
    p = Path(config.getoption("--blob") or DEFAULT_BLOB)
    if not p.is_file():
        raise pytest.UsageError(f"{p}: no blob (make hil-blob builds the default one, or pass --blob FILE)")
    from slimhar.quantize.blob import Blob, BlobError
    try:
        Blob.open(p)
    except BlobError as e:
        raise pytest.UsageError(str(e)) from None
    return p


@pytest.fixture(scope="session")
def board(request, hil_report):
    from slimhar.tools import device as dv
    config = request.config
    blob = _blob_path(config)
    port = config.getoption("port")
    baud = int(config.getoption("baud") or 115200)
    if port:
        env = config.getoption("--flash")
        if env:
            from slimhar.tools.engine_check import pio
            cmd, penv = pio(REPO)
            penv["SLIMHAR_BLOB"] = str(blob.resolve())
            r = subprocess.run(cmd + ["run", "-e", env, "-t", "upload", "--upload-port", port], cwd=REPO, env=penv,
                               capture_output=True, text=True)
            if r.returncode != 0:
                pytest.exit(f"flashing {env} on {port} failed:\n{r.stdout[-2000:]}{r.stderr[-1000:]}", returncode=3)
        b = Board(port, baud, False, blob, booted=not env)   # a freshly flashed board boots: expect its output
        _identify(hil_report, b, blob)
        yield b
        return
    elf = dv.build_firmware(blob)
    with dv.Qemu(elf) as q:
        b = Board(q.url, baud, True, blob, elf=elf, qemu=q)
        _identify(hil_report, b, blob)
        yield b


def _identify(r: Report, b: Board, blob: Path) -> None:
    data = blob.read_bytes()
    r.board.update({"target": "qemu mps2-an386 (-icount shift=0)" if b.emulated else f"serial {b.url}",
                    "port": b.url, "baud": b.baud, "blob": str(blob), "blob_sha256": hashlib.sha256(data).hexdigest(),
                    "blob_crc32": f"{int.from_bytes(data[16:20], 'little'):08x}"})
    if b.elf:
        r.board["elf"] = str(b.elf)
        r.board["elf_sha256"] = hashlib.sha256(Path(b.elf).read_bytes()).hexdigest()


# pytest-embedded's serial service opens whatever `port` says: the emulated board's socket, or --port
@pytest.fixture
def port(board):
    return board.url


@pytest.fixture
def baud(board):
    return board.baud


@pytest.fixture
def device(dut, board, hil_report, request):
    """The board over pytest-embedded's serial port, as a slimhar.tools.device.Device, in a known
    state: streaming off, policy automatic, battery 100 %, whole-hop budget, no load, feed and
    statistics reset. The first connection waits for the boot output (dut.expect)."""
    from slimhar.tools import device as dv
    if not board.booted:
        m = dut.expect(r"slimhar: firmware (\S+), protocol (\d+)", timeout=120)
        board.boot.append(m.group(0).decode())
        dut.expect_exact("m-init-done", timeout=600)
        dut.expect_exact("m-ready", timeout=30)
        board.booted = True
    hil_report.log(f"# {request.node.nodeid}")
    with dut.serial.disable_redirect_thread():
        dev = dv.Device(board.url, port=dut.serial.proc, timeout=60, transcript=hil_report.log)
        dev.boot = list(board.boot)
        info = dev.info()                      # refuses another protocol version
        crc = info["blob"]["crc"]
        want = hil_report.board["blob_crc32"]
        if crc != want:
            pytest.exit(f"the board runs blob crc {crc}, --blob {board.blob_path} is {want}: flash it "
                        "(--flash ENV) or pass the blob it runs", returncode=3)
        if "firmware" not in hil_report.board:
            d = info["device"]
            hil_report.board.update({"firmware": d["firmware"], "protocol": d["protocol"], "board": d["board"],
                                     "kernels": d["kernels"], "clock": d["clock"], "per_us": d["per_us"],
                                     "boot": board.boot})
            hil_report.add("subnets", [{k: r[k] for k in ("i", "name", "macs", "acc_bp", "latency_us", "front")}
                                       | {d["clock"]: r[d["clock"]]} for r in info["subnets"]])
        for c in ("stream off", "subnet auto", "battery set 100", "budget set 1000", "feed reset", "stats reset"):
            dev.command(c)
        if board.emulated:
            dev.command("load set 0")
        dev.seq = 0
        dev.emulated = board.emulated
        yield dev


@pytest.fixture(scope="session")
def recording():
    """A held-out hapt-uci recording as the device takes it (raw acc + gyro for a causal model,
    the preprocessed channels for an offline one), real inertial data from a registry package."""
    def get(blob, index=0, start=500, n=None):
        from slimhar.tools import device as dv
        return dv.held_out_recording(index, start, n, preprocessed=blob.spec.offline)[1]
    return get


@pytest.fixture(scope="session")
def tflm(board):
    """TFLM (the oracle) on each standalone subnet of the board's blob, built once."""
    from slimhar.quantize.oracle import Tflm
    blob = board.blob
    cache = {}

    def get(i):
        if i not in cache:
            cache[i] = Tflm(blob.unpack(blob.subnets[i]))
        return cache[i]
    return get


def pytest_report_header(config):
    return [f"slimhar HIL: target {'serial ' + config.getoption('port') if config.getoption('port') else 'qemu mps2-an386'}, "
            f"blob {config.getoption('--blob') or DEFAULT_BLOB}, report {_report_dir(config)}",
            f"python {platform.python_version()}, pid {os.getpid()}"]
