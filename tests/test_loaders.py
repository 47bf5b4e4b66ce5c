"""Official-format loaders on small files written in those formats: good files give the right
arrays; malformed files give an error naming the file (and line), never a wrong array."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from slimhar.train.data import DatasetError, load_dataset, uci_har, unimib, wisdm
from fixtures import write_uci_har, write_unimib, wisdm_text


# -- UCI-HAR ------------------------------------------------------------------------------------
def test_uci_har_reads_official_layout(tmp_path):
    base, truth = write_uci_har(tmp_path)
    d = load_dataset("uci-har", path=tmp_path, seed=0)       # the parent of "UCI HAR Dataset" works
    assert (d.window, d.channels, d.classes) == (128, 9, 6)
    assert d.channel_names[:3] == ["body_acc_x", "body_acc_y", "body_acc_z"]
    X, y, s = truth["test"]
    np.testing.assert_allclose(d.test.X, X, rtol=1e-6, atol=1e-7)
    assert (d.test.y == y).all() and (d.test.subject == s).all()
    # validation is whole training subjects, disjoint from train
    assert set(d.val.subject) and not set(d.val.subject) & set(d.train.subject)
    assert len(d.train) + len(d.val) == len(truth["train"][1])


def test_uci_har_accepts_two_digit_exponents(tmp_path):
    base, _ = write_uci_har(tmp_path)
    p = base / "train" / "Inertial Signals" / "body_acc_x_train.txt"
    p.write_text(p.read_text().replace("e-00", "e-0").replace("e+00", "e+0"))
    assert uci_har.load(base).train.X.shape[1:] == (128, 9)


@pytest.mark.parametrize("fault,expect", [
    ("word", r"body_gyro_y_train\.txt:3: value 5 is not a number"),
    ("short", r"body_gyro_y_train\.txt:3: expected 128 values, found 127"),
    ("rows", r"body_gyro_y_train\.txt: 29 rows, but y_train\.txt has 30"),
    ("blank", r"body_gyro_y_train\.txt:3: empty line"),
])
def test_uci_har_malformed_signal_file(tmp_path, fault, expect):
    base, _ = write_uci_har(tmp_path)
    p = base / "train" / "Inertial Signals" / "body_gyro_y_train.txt"
    lines = p.read_text().splitlines()
    if fault == "word":
        vals = lines[2].split()
        vals[4] = "abc"
        lines[2] = " ".join(vals)
    elif fault == "short":
        lines[2] = " ".join(lines[2].split()[:-1])
    elif fault == "rows":
        lines = lines[:-1]
    elif fault == "blank":
        lines[2] = ""
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=expect):
        uci_har.load(base)


def test_uci_har_bad_label_and_missing_file(tmp_path):
    base, _ = write_uci_har(tmp_path)
    p = base / "test" / "y_test.txt"
    lines = p.read_text().splitlines()
    lines[4] = "7"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"y_test\.txt:5: expected an integer in \[1, 6\], found 7"):
        uci_har.load(base)
    (base / "test" / "Inertial Signals" / "total_acc_z_test.txt").unlink()
    p.write_text("\n".join(["1"] * len(lines)) + "\n")
    with pytest.raises(DatasetError, match=r"total_acc_z_test\.txt: file not found"):
        uci_har.load(base)
    with pytest.raises(DatasetError, match="not a UCI HAR Dataset folder"):
        uci_har.load(tmp_path / "nowhere")


# -- WISDM --------------------------------------------------------------------------------------
def test_wisdm_tolerates_known_defects(tmp_path):
    text, dropped = wisdm_text()
    (tmp_path / "WISDM_ar_v1.1_raw.txt").write_text(text)
    user, act, xyz, n_drop = wisdm.parse_raw(tmp_path / "WISDM_ar_v1.1_raw.txt")
    assert n_drop == dropped
    assert len(user) == 5 * 6 * 260            # every complete record kept, none invented
    d = load_dataset("wisdm", path=tmp_path)
    assert (d.window, d.channels, d.classes) == (200, 3, 6)
    # windows never straddle a change of user or activity: 260 records per run -> 1 window each
    assert len(d.train) + len(d.val) + len(d.test) == 5 * 6
    assert not set(d.test.subject) & (set(d.train.subject) | set(d.val.subject))
    # a window's samples are the file's records in order
    first = xyz[:200]
    assert any(np.allclose(w, first) for w in np.concatenate([d.train.X, d.val.X, d.test.X]))


@pytest.mark.parametrize("bad,expect", [
    ("7,Walking,1,1.0,abc,2.0;", r":4: non-numeric field"),
    ("7,Flying,1,1.0,2.0,3.0;", r":4: unknown activity 'Flying'"),
    ("7,Walking,1,1.0,2.0,3.0,4.0,5.0;", r":4: record has 8 fields"),
])
def test_wisdm_malformed_records(tmp_path, bad, expect):
    text, _ = wisdm_text(records_per_run=210, defects=False)
    lines = text.splitlines()
    lines.insert(3, bad)
    p = tmp_path / "WISDM_ar_v1.1_raw.txt"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"WISDM_ar_v1\.1_raw\.txt" + expect):
        wisdm.load(p)


def test_wisdm_garbage_file_is_refused(tmp_path):
    p = tmp_path / "WISDM_ar_v1.1_raw.txt"
    p.write_text("1,Walking,0,1,2,3;\n" + "\n".join(["1,Walking"] * 50) + "\n")
    with pytest.raises(DatasetError, match="are empty or truncated"):
        wisdm.parse_raw(p)
    p.write_text("")
    with pytest.raises(DatasetError, match="no valid WISDM records"):
        wisdm.parse_raw(p)


# -- UniMiB-SHAR --------------------------------------------------------------------------------
def test_unimib_reads_mat_files(tmp_path):
    d, data, labels = write_unimib(tmp_path)
    ds = load_dataset("unimib", path=tmp_path / "UniMiB-SHAR")
    assert (ds.window, ds.channels, ds.classes) == (151, 3, 17)
    X = np.concatenate([ds.train.X, ds.val.X, ds.test.X])
    assert len(X) == len(data)
    # row layout [x(151) | y(151) | z(151)] -> window[:, axis]
    row0 = data[0].reshape(3, 151).T.astype(np.float32)
    assert any(np.array_equal(w, row0) for w in X)
    assert not set(ds.test.subject) & set(ds.train.subject)


@pytest.mark.parametrize("fault,expect", [
    ("shape", r"acc_data\.mat: acc_data must be \[N, 453\]"),
    ("label", r"acc_labels\.mat: row 3: activity 18 not in 1\.\.17"),
    ("var", r"acc_data\.mat: variable 'acc_data' missing"),
    ("corrupt", r"acc_data\.mat: not a readable MATLAB v5 file"),
    ("nan", r"acc_data\.mat: row 2 of acc_data has NaN"),
])
def test_unimib_malformed(tmp_path, fault, expect):
    d, data, labels = write_unimib(tmp_path)
    if fault == "shape":
        scipy.io.savemat(d / "acc_data.mat", {"acc_data": data[:, :450]})
    elif fault == "label":
        labels[2, 0] = 18
        scipy.io.savemat(d / "acc_labels.mat", {"acc_labels": labels})
    elif fault == "var":
        scipy.io.savemat(d / "acc_data.mat", {"other": data})
    elif fault == "corrupt":
        raw = (d / "acc_data.mat").read_bytes()
        (d / "acc_data.mat").write_bytes(raw[:300])
    elif fault == "nan":
        data[1, 7] = np.nan
        scipy.io.savemat(d / "acc_data.mat", {"acc_data": data})
    with pytest.raises(DatasetError, match=expect):
        unimib.load(d)


# -- generic npz --------------------------------------------------------------------------------
def test_npz_generic_format(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 64, 4)).astype(np.float32)
    y = np.arange(90) % 3
    subj = np.arange(90) % 9
    p = tmp_path / "mine.npz"
    np.savez(p, X=X, y=y, subject=subj, class_names=np.array(["a", "b", "c"]))
    d = load_dataset("npz", path=p)
    assert (d.window, d.channels, d.class_names) == (64, 4, ["a", "b", "c"])
    assert len(d.train) + len(d.val) + len(d.test) == 90
    assert not set(d.test.subject) & set(d.train.subject)


@pytest.mark.parametrize("arrays,expect", [
    ({"X": np.zeros((5, 8)), "y": np.zeros(5, int)}, r"X must be a float array \[N, T, C\]"),
    ({"X": np.zeros((5, 8, 2)), "y": np.zeros(4, int)}, r"y must be an int array \[5\]"),
    ({"X": np.zeros((5, 8, 2))}, r"required key 'y' missing"),
    ({"X": np.zeros((5, 8, 2)), "y": np.zeros(5, int), "colour": np.zeros(1)}, r"unknown keys \['colour'\]"),
    ({"X": np.zeros((6, 8, 2)), "y": np.array([0, 1, 2, 0, 1, 5]), "class_names": np.array(["a", "b", "c"])},
     r"labels must be in \[0, 3\)"),
    ({"X": np.zeros((0, 8, 2)), "y": np.zeros(0, int)}, r"X holds no windows"),
    ({"X": np.zeros((5, 3, 128)), "y": np.zeros(5, int)}, r"X has 128 channels over 3 time steps -- stored \[N, C, T\]"),
    ({"X": np.zeros((5, 3, 64)), "y": np.zeros(5, int), "channel_names": np.array(["x", "y", "z"])},
     r"3 channel_names for X's 64 channels -- X looks stored \[N, C, T\]"),
    ({"X": np.full((5, 8, 2), np.nan), "y": np.zeros(5, int)}, r"X has 80 NaN or infinite values"),
])
def test_npz_validation(tmp_path, arrays, expect):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(DatasetError, match=expect):
        load_dataset("npz", path=p)


def test_npz_not_a_zip(tmp_path):
    p = tmp_path / "broken.npz"
    p.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset("npz", path=p)


def test_official_datasets_need_a_path():
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("uci-har")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("mnist")


# -- real data that ships offline -----------------------------------------------------------------
def test_basicmotions_real_data():
    d = load_dataset("basicmotions")
    assert (d.window, d.channels, d.classes) == (100, 6, 4)
    assert len(d.train) + len(d.val) == 40 and len(d.test) == 40
    assert d.train.counts(4) == [8, 8, 8, 8]


def test_hapt_uci_real_data():
    d = load_dataset("hapt-uci")
    assert (d.window, d.channels, d.classes) == (128, 9, 6)
    assert len(d.train) + len(d.val) == 7143 and len(d.test) == 2874
    assert sorted(set(d.test.subject)) == [2, 4, 9, 10, 12, 13, 18, 20, 24]
    assert not set(d.val.subject) & set(d.train.subject)
    # body_acc has gravity removed (mean ~0); total_acc carries ~1 g
    X = d.train.X
    assert abs(X[..., 0:3].mean()) < 0.01
    g = np.median(np.linalg.norm(X[..., 6:9].mean(axis=1), axis=1))
    assert 0.95 < g < 1.05


def test_hapt_causal_recipe_is_causal_and_starts_settled():
    """recipe: causal -- what a device can run on a live stream: an output sample depends on
    that sample and earlier ones only, and a recording that starts still starts settled (the
    filters begin at their steady state, no transient). The zero-phase recipe looks ahead."""
    from slimhar.train.data import hapt
    rng = np.random.default_rng(4)
    sig = np.cumsum(rng.normal(size=(600, 6)), axis=0) * 0.01 + np.array([0, 0, 1.0, 0, 0, 0])
    later = sig.copy()
    later[400:] += rng.normal(size=(200, 6))                      # change only the future
    a, b = hapt.preprocess(sig, "causal"), hapt.preprocess(later, "causal")
    assert np.array_equal(a[:400], b[:400]) and not np.array_equal(a[400:], b[400:])
    z1, z2 = hapt.preprocess(sig, "zero-phase"), hapt.preprocess(later, "zero-phase")
    assert not np.allclose(z1[:400], z2[:400])                    # zero-phase does look ahead
    still = np.tile([0.1, -0.2, 0.98, 0.01, 0.0, -0.02], (300, 1))
    out = hapt.preprocess(still, "causal")
    assert np.allclose(out[:, 3:6], still[0, 3:]) and np.allclose(out[:, 6:], still[0, :3])   # gyro, total: as given
    assert np.abs(out[:, :3]).max() < 1e-9                        # body acceleration of a still sensor: zero from sample 0
    with pytest.raises(DatasetError, match="unknown recipe 'acausal'"):
        hapt.preprocess(sig, "acausal")
