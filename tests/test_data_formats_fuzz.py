"""Fuzzed file formats and DataLoader semantics of ember.data against reference readers
(the csv module, h5py, lmdb, Pillow, torchvision's ImageFolder rules) and PyTorch."""

import collections
import csv
import os

import numpy as np
import pytest
import torch
import torch.utils.data as td

import ember
from ember.data import DataFormatError, DataLoader, Dataset, default_collate
from ember.data.datasets import (
    CSVDataset,
    HDF5Dataset,
    ImageFolder,
    LMDBDataset,
    NPZDataset,
    TextDataset,
    write_hdf5,
    write_lmdb,
)


def _csv(tmp_path, text, name="d.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return str(p)


# ----------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    "text",
    [
        'a,b,y\n"1",2,0\n3,"4.5",1\n',  # quoted numbers
        '"a,1","b\nc",y\n1,2,3\n',  # quoted header fields with a comma and a newline
        "\u00e9t\u00e9,\u00fc,y\n1,2,3\n\n4,5,6\n",  # unicode names, a blank line
        "a\tb\ty\n1\t2\t3\n",
    ],
)
def test_csv_matches_csv_module(tmp_path, text):
    delim = "\t" if "\t" in text else ","
    p = _csv(tmp_path, text)
    with open(p, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter=delim) if r]
    ds = CSVDataset(p, delimiter=delim)
    assert ds.columns == rows[0] and len(ds) == len(rows) - 1
    for i, row in enumerate(rows[1:]):
        x, y = ds[i]
        np.testing.assert_array_equal(x, np.array(row[:-1], np.float32))
        assert y == float(row[-1])


def test_csv_byte_order_mark(tmp_path):
    ds = CSVDataset(_csv(tmp_path, "\ufeffa,b,y\n1,2,3\n"), label_column="a")
    assert ds.columns == ["a", "b", "y"] and ds[0][1] == 1
    # a numeric first row behind a BOM was taken for a header and silently dropped
    ds = CSVDataset(_csv(tmp_path, "\ufeff1,2,3\n4,5,6\n", "n.csv"))
    assert ds.columns is None and len(ds) == 2 and ds[0][0].tolist() == [1.0, 2.0]


def test_csv_labels_int_vs_float(tmp_path):
    assert CSVDataset(_csv(tmp_path, "a,y\n1,1.0\n2,2e0\n")).labels.dtype == np.int64
    assert CSVDataset(_csv(tmp_path, "a,y\n1,1.5\n2,2\n")).labels.dtype == np.float32
    big = CSVDataset(_csv(tmp_path, "a,y\n1,9007199254740993\n2,-2\n")).labels
    assert big.dtype == np.int64 and big.tolist() == [9007199254740993, -2]  # exact
    huge = CSVDataset(_csv(tmp_path, "a,y\n1,1e30\n2,2\n")).labels  # was int64 min
    assert huge.dtype == np.float32 and huge[0] == np.float32(1e30)
    with_nan = CSVDataset(_csv(tmp_path, "a,y\n1,nan\n2,1\n")).labels
    assert with_nan.dtype == np.float32 and np.isnan(with_nan[0])


def test_csv_bad_input(tmp_path):
    with pytest.raises(DataFormatError, match="empty CSV"):
        CSVDataset(_csv(tmp_path, ""))
    header_only = CSVDataset(_csv(tmp_path, "a,b,y\n"))
    assert len(header_only) == 0 and len(DataLoader(header_only, batch_size=2)) == 0
    with pytest.raises(DataFormatError, match=r"line 3, column 'b': missing value"):
        CSVDataset(_csv(tmp_path, "a,b,y\n1,2,3\n4,,6\n"))
    with pytest.raises(DataFormatError, match=r"line 2, column 'a': non-numeric value 'x'"):
        CSVDataset(_csv(tmp_path, "a,y\nx,1\n"))
    with pytest.raises(DataFormatError, match="line 2 has 3 fields"):
        CSVDataset(_csv(tmp_path, "a,y\n1,2,3\n"))
    with pytest.raises(DataFormatError, match=r"l1.csv: not valid UTF-8"):
        CSVDataset(_csv(tmp_path, "é,y\n1,2\n", "l1.csv", "latin-1"))
    p = _csv(tmp_path, "a,y\n1,2\n3,4\n")
    for bad in (1.0, True):
        with pytest.raises(TypeError, match="label_column must be"):
            CSVDataset(p, label_column=bad)
    ds = CSVDataset(p)
    assert ds[-1][1] == 4 and ds[np.int64(0)][1] == 2
    with pytest.raises(TypeError, match="indices must be integers, not slice"):
        ds[0:2]
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(IndexError):
        ds[-3]


# ----------------------------------------------------------------------------- images


def test_image_folder_torchvision_rules(tmp_path):
    Image = pytest.importorskip("PIL.Image")

    def img(rel, mode="RGB", data=None):
        p = tmp_path / "root" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            p.write_bytes(data)
        else:
            Image.new(mode, (3, 2), 7).save(p)

    img("b/x.png"), img("a/y.PNG"), img("a/sub/z.jpg"), img("a/.hidden.png"), img("B/w.bmp")
    img("a/notes.txt", data=b"hi"), img("c/g.png", "L"), img("c/h.png", "RGBA")
    img("c/i.png", "I;16"), img("c/bad.png", data=b"\x89PNG junk"), img("c/e.jpg", data=b"")
    ds = ImageFolder(str(tmp_path / "root"))
    # torchvision: case-sensitive sorted class folders, files from a sorted os.walk,
    # extensions case-insensitive, hidden files included, nested folders included
    assert ds.classes == ["B", "a", "b", "c"]
    root = str(tmp_path / "root")
    rel = [(os.path.relpath(p, root), t) for p, t in ds.samples]
    assert rel[:5] == [("B/w.bmp", 0), ("a/.hidden.png", 1), ("a/y.PNG", 1)] + [
        ("a/sub/z.jpg", 1),
        ("b/x.png", 2),
    ]
    for i in range(len(ds)):
        path, target = ds.samples[i]
        if path.endswith(("bad.png", "e.jpg")):
            with pytest.raises(DataFormatError, match=os.path.basename(path)):
                ds[i]
            continue
        x, y = ds[i]
        with Image.open(path) as ref:
            expected = ref.convert("RGB")
        assert y == target and x.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(x), np.asarray(expected))
    (tmp_path / "root" / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="for the classes empty"):
        ImageFolder(str(tmp_path / "root"))
    assert ImageFolder(str(tmp_path / "root"), allow_empty=True).classes[-1] == "empty"


# ----------------------------------------------------------------------------- HDF5, LMDB, NPZ


def test_hdf5_against_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    p = str(tmp_path / "d.h5")
    x = np.arange(24, dtype=np.int16).reshape(4, 2, 3)
    y = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    write_hdf5(p, x, y)
    ds = HDF5Dataset(p)
    with h5py.File(p, "r") as f:
        for i in (0, 3, -1, -4, np.int32(2)):
            got_x, got_y = ds[i]
            np.testing.assert_array_equal(got_x, f["x"][i])
            np.testing.assert_array_equal(got_y, f["y"][i])
            assert got_x.dtype == np.int16
    for bad in (slice(0, 2), 1.0):
        with pytest.raises(TypeError, match="indices must be integers"):
            ds[bad]
    for bad in (4, -5):
        with pytest.raises(IndexError, match="out of range"):
            ds[bad]
    empty = HDF5Dataset(write_hdf5(str(tmp_path / "e.h5"), np.zeros((0, 3)), np.zeros(0)))
    assert len(empty) == 0 and list(DataLoader(empty, batch_size=2)) == []
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["x"] = np.float32(3)  # a scalar: was a dataset of length 0
    with pytest.raises(DataFormatError, match="'x' is a scalar"):
        HDF5Dataset(str(tmp_path / "s.h5"), y_key=None)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        HDF5Dataset(str(tmp_path / "nope.h5"))
    (tmp_path / "z.h5").write_bytes(b"")
    with pytest.raises(DataFormatError, match="z.h5: cannot open as HDF5"):
        HDF5Dataset(str(tmp_path / "z.h5"))


def test_lmdb_against_raw_lmdb(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    p = str(tmp_path / "db")
    arrays = [np.arange(6).reshape(2, 3).T, np.array([65535], np.uint16), np.array([True])]
    write_lmdb(p, arrays, [0, 1.5, "c"])
    ds = LMDBDataset(p)
    for i, a in enumerate(arrays):
        x, _ = ds[i]
        np.testing.assert_array_equal(x, a)
        assert x.dtype == a.dtype
    assert [ds[i][1] for i in range(3)] == [0, 1.5, "c"] and ds[-1][1] == "c"
    ds.close()  # py-lmdb opens an environment once per process
    env = lmdb.open(p, readonly=True, lock=False)
    with env.begin() as txn:
        assert sum(1 for _ in txn.cursor()) == len(arrays) + 1  # samples and the meta record
    env.close()
    for bad in (slice(0, 2), 1.0):  # a float index silently read record 1
        with pytest.raises(TypeError, match="indices must be integers"):
            ds[bad]
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    assert len(LMDBDataset(write_lmdb(str(tmp_path / "e"), np.zeros((0, 2))))) == 0
    # an object array's bytes are pointers: it was written and could never be read back
    with pytest.raises(TypeError, match="object array"):
        write_lmdb(str(tmp_path / "o"), [np.array([None, 1])])


def test_npz_bad_input(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(DataFormatError, match="a single .npy array"):
        NPZDataset(str(tmp_path / "a.npy"))
    np.savez(tmp_path / "s.npz", x=np.zeros(3), y=np.int64(1))
    with pytest.raises(DataFormatError, match="'y' is a scalar"):
        NPZDataset(str(tmp_path / "s.npz"))
    np.savez(tmp_path / "d.npz", x=np.arange(6).reshape(3, 2), y=np.arange(3))
    ds = NPZDataset(str(tmp_path / "d.npz"))
    assert ds[-1][1] == 2 and ds[1][0].tolist() == [2, 3]


def test_text_bom_and_indices(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("\ufeffhé llo".encode())
    ds = TextDataset(str(p), seq_len=2)
    assert "\ufeff" not in ds.itos and ds.decode(ds[0][0]) == "hé"
    with pytest.raises(TypeError, match="indices must be integers, not float"):
        ds[1.0]
    assert ds.decode(ds[-1][1]) == ds.decode(ds[len(ds) - 1][1])


# ----------------------------------------------------------------------------- DataLoader


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": None, "drop_last": True},
        {"batch_size": 0},
        {"batch_size": 2.5},
        {"batch_sampler": [[0, 1]], "batch_size": 2},
        {"batch_sampler": [[0, 1]], "batch_size": None},
        {"batch_sampler": [[0, 1]], "drop_last": True},
        {"batch_sampler": [[0, 1]], "shuffle": True},
        {"sampler": [0, 1], "shuffle": True},
        {"num_workers": -1},
        {"timeout": -1},
    ],
)
def test_loader_argument_conflicts_raise_like_torch(kwargs):
    data = list(range(5))
    with pytest.raises(ValueError):
        td.DataLoader(data, **kwargs)
    with pytest.raises(ValueError):
        DataLoader(data, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": None}, {"batch_size": 3, "drop_last": True}, {"batch_size": 3}]
    + [{"batch_sampler": [[4, 0], [2]]}, {"sampler": [3, 1], "batch_size": 1}],
)
def test_loader_len_and_two_epochs_match_torch(kwargs):
    data = list(range(7))
    ref = [_plain(b) for b in td.DataLoader(data, **kwargs)]
    dl = DataLoader(data, **kwargs)
    assert len(dl) == len(td.DataLoader(data, **kwargs)) == len(ref)
    assert [_plain(b) for b in dl] == ref and [_plain(b) for b in dl] == ref


def test_loader_shuffle_generator_reproducible():
    def run(seed):
        dl = DataLoader(
            list(range(9)),
            batch_size=4,
            shuffle=True,
            generator=ember.Generator().manual_seed(seed),
        )
        return [[b.tolist() for b in dl] for _ in range(2)]

    a = run(3)
    assert a == run(3) and a[0] != a[1]  # same seed, same epochs; epochs differ
    assert sorted(i for b in a[0] for i in b) == list(range(9))


NT = collections.namedtuple("NT", "a b")


def _plain(x):
    if isinstance(x, (torch.Tensor, ember.Tensor)):
        return ("T", str(x.dtype).split(".")[-1], x.tolist())
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_plain(v) for v in x])
    return x


@pytest.mark.parametrize(
    "batch",
    [
        [{"a": 1, "b": np.ones(2)}, {"a": 2, "b": np.zeros(2)}],
        [(1, 2.0, "s"), (3, 4.0, "t")],
        [NT(1, "x"), NT(2, "y")],  # strings inside a sample stay a tuple, as in torch
        ["a", "b"],
        [1, 2.5],  # was int64 [1, 2]
        [True, 2],  # was bool [True, True]
        [True, False],
        [np.float32(1), np.float32(2)],
        [np.zeros(2, np.int32), np.ones(2, np.float32)],  # torch promotion: float32
        [np.array(1), np.array(2)],
    ],
)
def test_collate_matches_torch(batch):
    assert _plain(default_collate(batch)) == _plain(td.default_collate(batch))


@pytest.mark.parametrize(
    "batch", [[None, None], [1.0, None], [1, "a"], [{1}, {2}], [1 + 2j, 3j], [[1, 2], [3]]]
)
def test_collate_rejects_like_torch(batch):
    with pytest.raises((TypeError, RuntimeError)) as ref:
        td.default_collate(batch)
    with pytest.raises(ref.type):
        default_collate(batch)


class _Fails(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise KeyError(f"sample {i} is broken")
        return np.float32(i)


def test_worker_error_names_the_indices():
    with pytest.raises(
        KeyError, match=r"worker process \d while loading the batch of indices \[4, 5\]"
    ):
        list(DataLoader(_Fails(), batch_size=2, num_workers=2))
    with pytest.raises(KeyError, match=r"while loading index 5"):
        list(DataLoader(_Fails(), batch_size=None, num_workers=1))
    with pytest.raises(KeyError, match="sample 5 is broken"):
        list(DataLoader(_Fails(), batch_size=2))
