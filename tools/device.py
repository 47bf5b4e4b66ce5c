"""The host side of the firmware's serial protocol (docs/serial-protocol.md): a client for a
board on a serial port or the emulated board in QEMU, and the launcher of that emulator.

    with Qemu(elf) as q:                       # QEMU mps2-an386, UART on a local TCP port
        dev = Device(q.url)                    # or Device("/dev/ttyACM0", baud=115200)
        dev.wait_ready()
        print(dev.info()["blob"])

Every command line the device takes ends with "m-ready"; `command` sends one line and returns
the lines before that, and raises DeviceError on an "e-[...]" reply (or returns them, with
check=False). pyserial opens both ``socket://HOST:PORT`` and ``/dev/tty...``.
"""
from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY = "m-ready"
PROTOCOL = 2          # docs/serial-protocol.md; a device speaking another version is refused


class DeviceError(RuntimeError):
    pass


def kv(line: str) -> dict:
    """'info subnet i=3 name=w010_t60 front=1' -> {'i': '3', 'name': 'w010_t60', 'front': '1'}"""
    return dict(p.split("=", 1) for p in line.split() if "=" in p)


def feed_line(seq: int, values) -> str:
    """One `feed` line: the sequence number, the values as the shortest decimals that round-trip
    to the same float32, and the CRC-32 of the text before ' *'."""
    import numpy as np
    body = f"feed {seq} " + " ".join(str(np.float32(v)) for v in values)
    return f"{body} *{zlib.crc32(body.encode()):08x}"


class Device:
    def __init__(self, url: str, baud: int = 115200, timeout: float = 30.0, port=None, transcript=None):
        """Opens `url` (pyserial: /dev/tty..., socket://HOST:PORT), or talks over `port`, an open
        pyserial object someone else owns (the HIL suite's pytest-embedded serial service; not
        closed here). transcript: a callable that gets every line sent ('> ...') and received
        ('< ...')."""
        from slimhar.extras import require
        serial = require("serial")
        self._owned = port is None
        if port is None:
            try:
                port = serial.serial_for_url(url, baudrate=baud, timeout=0.2)
            except (serial.SerialException, ValueError) as e:
                raise DeviceError(f"cannot open {url}: {e}") from None
        self.port = port
        self.url, self.timeout = url, timeout
        self.boot: list[str] = []      # lines before the first m-ready
        self.seq = 0                   # the next feed line's sequence number
        self._buf = b""
        self._log = transcript

    def close(self):
        if self._owned:
            self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def readline(self, timeout: float | None = None) -> str:
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._buf:
            if time.monotonic() > end:
                raise DeviceError(f"{self.url}: no reply in {self.timeout if timeout is None else timeout:.0f} s"
                                  + (f" (partial: {self._buf[-200:]!r})" if self._buf else ""))
            self._buf += self.port.read(self.port.in_waiting or 1)
        line, self._buf = self._buf.split(b"\n", 1)
        text = line.decode("utf-8", "replace").rstrip("\r")
        if self._log:
            self._log("< " + text)
        return text

    def wait_ready(self, timeout: float = 120.0) -> list[str]:
        """Boot output up to the first m-ready (nothing may be sent before it)."""
        end = time.monotonic() + timeout
        while True:
            line = self.readline(max(1.0, end - time.monotonic()))
            if line.startswith("fault:") or line.startswith("e-["):
                self.boot.append(line)
                raise DeviceError(f"{self.url}: device reported {line!r} while booting")
            if line == READY:
                return self.boot
            self.boot.append(line)

    def write_line(self, line: str) -> None:
        if self._log:
            self._log("> " + (line if len(line) <= 200 else line[:200] + f"... ({len(line)} characters)"))
        self.port.write(line.encode("utf-8", "surrogateescape") + b"\n")

    def command(self, line: str, check: bool = True, timeout: float | None = None) -> list[str]:
        self.write_line(line)
        out = []
        while True:
            r = self.readline(timeout)
            if r == READY:
                break
            if r.startswith("fault:"):
                raise DeviceError(f"{self.url}: {r}")
            out.append(r)
        errs = [r for r in out if r.startswith("e-[")]
        if check and errs:
            raise DeviceError(f"{line.split()[0] if line.split() else line!r}: {errs[0]}")
        return out

    # -- slimhar commands ---------------------------------------------------------------------
    def info(self) -> dict:
        rows = self.command("info")
        d: dict = {"subnets": []}
        for r in rows:
            if r.startswith("info subnet "):
                d["subnets"].append(kv(r))
            elif r.startswith("info "):   # "info firmware=..." is the device line; "info blob ...", "info policy ..."
                word = r.split()[1]
                d["device" if "=" in word else word] = kv(r)
        got = d.get("device", {}).get("protocol")
        if got != str(PROTOCOL):
            raise DeviceError(f"{self.url}: the device speaks serial protocol {got}, this host speaks {PROTOCOL} "
                              "(flash firmware of this slimhar version)")
        return d

    def stats(self) -> dict:
        return kv(next(r for r in self.command("stats") if r.startswith("m-stats")))

    def feed(self, samples) -> list[dict]:
        """samples [n, axes] (n <= 8): one feed line with the next sequence number; returns the
        results ('r ...' lines, as dicts) of the windows it completed."""
        out = self.command(feed_line(self.seq, [v for s in samples for v in s]))
        self.seq += 1
        return [kv(r) for r in out if r.startswith("r ")]

    def feed_reset(self) -> None:
        self.command("feed reset")
        self.seq = 0

    def stream(self, X, samples_per_line: int = 4, rate_hz: float | None = None, progress=None) -> list[dict]:
        """A recording [N, axes] through `feed`, paced at rate_hz when given (the sensor rate);
        returns the results of the windows it completed (streaming must be on to get any)."""
        results = []
        t0 = time.monotonic()
        for i in range(0, len(X), samples_per_line):
            if rate_hz:
                wait = t0 + i / rate_hz - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            results += self.feed(X[i:i + samples_per_line])
            if progress:
                progress(min(i + samples_per_line, len(X)))
        return results


# -- the emulated board -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Qemu:
    """qemu-system-arm -M mps2-an386 -icount shift=0 with UART0 on a local TCP port that waits for
    its first client (so the boot output reaches it): the emulated board as a serial device.
    nodelay=on: QEMU writes the UART byte by byte, and with Nagle on its socket every reply
    waited ~40 ms for the client's delayed ACK (0.7 ms a command with it off)."""
    elf: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> "Qemu":
        if shutil.which("qemu-system-arm") is None:
            raise DeviceError("qemu-system-arm not found (make setup installs it)")
        if not Path(self.elf).exists():
            raise DeviceError(f"{self.elf}: no firmware ELF (pio run -e mps2_an386)")
        self.port = self.port or free_port()
        self.proc = subprocess.Popen(
            ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-icount", "shift=0",
             "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on", "-kernel", str(self.elf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # QEMU says it is waiting before it listens for real: wait for that line, then connect
        line = self.proc.stdout.readline()
        self.log.append(line.rstrip())
        if "waiting for connection" not in line:
            self.__exit__()
            raise DeviceError(f"QEMU did not start: {line.strip() or 'exit ' + str(self.proc.poll())}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def build_firmware(blob: Path | None = None, project: Path = REPO) -> Path:
    """pio run -e mps2_an386 (with SLIMHAR_BLOB=blob when given); returns the ELF."""
    from slimhar.tools.engine_check import pio
    cmd, env = pio(project)
    if blob is not None:
        env["SLIMHAR_BLOB"] = str(Path(blob).resolve())
    r = subprocess.run(cmd + ["run", "-e", "mps2_an386"], cwd=project, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise DeviceError(f"pio run -e mps2_an386 failed:\n{r.stdout[-3000:]}{r.stderr[-1500:]}")
    # where PlatformIO built it: $PLATFORMIO_BUILD_DIR when set (a build with other flags), else .pio/build
    return Path(env.get("PLATFORMIO_BUILD_DIR") or project / ".pio" / "build") / "mps2_an386" / "firmware.elf"


# -- the host reference of the device's input pipeline ------------------------------------------
def model_channels(blob, X):
    """What the device's chain makes of a fed stream X [N, raw channels]: the blob's input spec
    run by quantize/input_spec.run_chain (the firmware's float32 arithmetic, mirrored); an
    offline-preprocessed blob's stream already is its model channels."""
    import numpy as np
    from slimhar.quantize.input_spec import run_chain
    X = np.asarray(X, np.float32)
    return X if blob.spec.offline else run_chain(blob.spec, X)


def reference_inputs(blob, subnet: int, X, hop: int | None = None, channels=None):
    """What the firmware feeds subnet `subnet` for a stream X [N, raw channels] fed from a reset:
    the chain (model_channels), then every window of the last `window` samples, one per hop
    (the spec's), resized with torch's nearest-exact rule, normalized and quantized -- the same
    float32 operations in the same order (firmware/lib/slimhar_app/src/pipeline.cpp; float32
    throughout, no fused multiply-add, round half to even). `channels`: model_channels(blob, X)
    when the caller already has it (it is the same for every subnet). Returns [(end sample, int8
    [T', C])]."""
    import numpy as np
    from slimhar.quantize.tflite_io import read_model
    from slimhar.train.models.har_net import resize_index
    s = blob.subnets[subnet]
    win = blob.window
    hop = hop or blob.spec.hop
    t = read_model(blob.model_bytes(s)).subgraphs[0]
    q = t.tensors[t.inputs[0]].quantization
    scale, zp = np.float32(q.scale[0]), int(q.zeroPoint[0])
    idx = resize_index(win, s.resolution).numpy()
    M = model_channels(blob, X) if channels is None else channels
    mean, std = blob.norm_mean.astype(np.float32), blob.norm_std.astype(np.float32)
    out = []
    for end in range(win, len(M) + 1, hop):
        x = (M[end - win:end][idx] - mean) / std                 # float32 - float32, / float32
        qv = np.round(x / scale) + np.float32(zp)                 # half to even, as the device's nearbyint
        out.append((end, np.clip(qv, -128, 127).astype(np.int8)))
    return out


@functools.lru_cache(maxsize=1)
def _held_out() -> list:
    """hapt-uci's test-subject recordings, unpickled once per process (read-only arrays)."""
    from slimhar.train.data import hapt
    return [r for r in hapt.read_recordings() if r[0] in hapt.TEST_SUBJECTS]


def held_out_count() -> int:
    return len(_held_out())


def held_out_recording(index: int = 0, start: int = 500, n: int | None = None, preprocessed: bool = False):
    """A held-out (test-subject) hapt-uci recording -- real inertial data that ships in a
    registry package: float32 [n, 6] raw acc (g) + gyro (rad/s) as the sensor gives them (what a
    device running the causal chain takes), or with preprocessed=True the zero-phase recipe's 9
    model channels computed over the whole recording (an offline-preprocessed blob's stream).
    Returns (subject, samples, per-sample labels)."""
    import numpy as np
    from slimhar.train.data import hapt
    recs = _held_out()
    if not 0 <= index < len(recs):
        raise DeviceError(f"hapt-uci has {len(recs)} held-out recordings, not index {index}")
    subject, sig, lab = recs[index]
    X = hapt.preprocess(sig) if preprocessed else sig
    end = len(X) if n is None else min(len(X), start + n)
    return subject, np.asarray(X[start:end], np.float32), lab[start:end]
