"""File-format datasets: round trips through real files, and corrupt input."""

import gzip
import os
import pickle
import struct
import sys
import urllib.error

import numpy as np
import pytest

import ember
from ember.data import DataFormatError, DataLoader
from ember.data import transforms as T
from ember.data.datasets import (
    CIFAR10,
    MNIST,
    CSVDataset,
    Digits,
    FashionMNIST,
    HDF5Dataset,
    ImageFolder,
    LMDBDataset,
    NPZDataset,
    TextDataset,
    read_idx,
    write_hdf5,
    write_lmdb,
)

# ----------------------------------------------------------------------------- Digits


def test_digits_split_shapes_and_transforms():
    pytest.importorskip("sklearn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and 350 <= len(test) <= 370
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert isinstance(y, int)
    assert set(test.targets.tolist()) == set(range(10))  # stratified
    assert np.array_equal(Digits(train=False).targets, test.targets)  # fixed split
    flat = Digits(train=False, flatten=True, target_transform=lambda t: t + 100)
    fx, fy = flat[0]
    assert fx.shape == (64,) and fy == test.targets[0] + 100
    np.testing.assert_array_equal(fx, test[0][0].ravel())
    from sklearn.datasets import load_digits

    assert np.isclose(
        np.concatenate([train.data.ravel(), test.data.ravel()]).sum(),
        load_digits().images.sum() / 16,
    )
    xb, yb = next(iter(DataLoader(test, batch_size=16)))
    assert tuple(xb.shape) == (16, 1, 8, 8) and yb.numpy().dtype == np.int64


def test_digits_missing_sklearn_names_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'ember\[data\]'"):
        Digits()


# ----------------------------------------------------------------------------- IDX


def write_idx(path, arr, gz=False):
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    raw = (
        bytes([0, 0, code, arr.ndim])
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    )
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)


def make_mnist(folder, n=5, gz=False, split="train"):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte{ext}"), images, gz)
    write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte{ext}"), labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_round_trip(tmp_path, gz):
    images, labels = make_mnist(tmp_path, gz=gz)
    make_mnist(tmp_path, n=3, gz=gz, split="t10k")
    ds = MNIST(str(tmp_path), train=True)
    assert len(ds) == 5 and len(MNIST(str(tmp_path), train=False)) == 3
    x, y = ds[3]
    np.testing.assert_array_equal(x, images[3])
    assert y == labels[3] and isinstance(y, int)
    t = MNIST(str(tmp_path), transform=T.ToTensor())[0][0]
    assert tuple(t.shape) == (1, 28, 28)
    xb, yb = next(iter(DataLoader(ds, batch_size=5)))
    assert tuple(xb.shape) == (5, 28, 28) and yb.numpy().tolist() == labels.tolist()


def test_fashion_mnist_in_raw_subfolder(tmp_path):
    images, _ = make_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = FashionMNIST(str(tmp_path))
    np.testing.assert_array_equal(ds[0][0], images[0])
    assert ds.classes[9] == "Ankle boot"


def test_idx_corruption(tmp_path):
    make_mnist(tmp_path)
    img = tmp_path / "train-images-idx3-ubyte"
    raw = img.read_bytes()
    img.write_bytes(raw[: 16 + 28 * 28 * 2 + 100])  # record 2 cut short
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte.*record 2 of 5"):
        MNIST(str(tmp_path))
    img.write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(DataFormatError, match="bad magic"):
        read_idx(str(img))
    img.write_bytes(raw)
    lbl = tmp_path / "train-labels-idx1-ubyte"
    write_idx(str(lbl), np.array([1, 2, 3], np.uint8))
    with pytest.raises(DataFormatError, match="3 labels for 5 images"):
        MNIST(str(tmp_path))
    write_idx(str(lbl), np.array([1, 2, 3, 4, 200], np.uint8))
    with pytest.raises(DataFormatError, match="record 4 has label 200"):
        MNIST(str(tmp_path))
    gz = tmp_path / "bad.gz"
    gz.write_bytes(gzip.compress(raw)[:50])
    with pytest.raises(DataFormatError, match="bad.gz"):
        read_idx(str(gz))


def test_missing_files_and_offline_download(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match=r"offline.*place it at") as info:
        MNIST(str(tmp_path), download=True)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(RuntimeError, match="cifar-10-batches-bin"):
        CIFAR10(str(tmp_path), download=True)
    assert not list(tmp_path.glob("*.part"))


# ----------------------------------------------------------------------------- CIFAR-10


def make_cifar(root, n=4):
    base = root / "cifar-10-batches-bin"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, n).astype(np.uint8)
        chw = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        rec = np.concatenate([labels[:, None], chw.reshape(n, -1)], axis=1)
        (base / name).write_bytes(rec.tobytes())
        out[name] = (chw, labels)
    return out


def test_cifar10_round_trip(tmp_path):
    files = make_cifar(tmp_path)
    train, test = CIFAR10(str(tmp_path)), CIFAR10(str(tmp_path), train=False)
    assert len(train) == 20 and len(test) == 4
    chw, labels = files["data_batch_2.bin"]
    x, y = train[4 + 1]
    assert x.shape == (32, 32, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, chw[1].transpose(1, 2, 0))
    assert y == labels[1]
    t = T.Compose([T.RandomCrop(32, padding=4), T.ToTensor()])
    xb, _ = next(iter(DataLoader(CIFAR10(str(tmp_path), transform=t), batch_size=8, num_workers=2)))
    assert tuple(xb.shape) == (8, 3, 32, 32)


def test_cifar10_corruption(tmp_path):
    make_cifar(tmp_path)
    p = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    raw = p.read_bytes()
    p.write_bytes(raw[:-10])
    with pytest.raises(DataFormatError, match=r"test_batch.bin.*record 3 is truncated"):
        CIFAR10(str(tmp_path), train=False)
    bad = bytearray(raw)
    bad[3073 * 2] = 11
    p.write_bytes(bytes(bad))
    with pytest.raises(DataFormatError, match=r"test_batch.bin: record 2 has label 11"):
        CIFAR10(str(tmp_path), train=False)
    p.unlink()
    with pytest.raises(FileNotFoundError, match="test_batch.bin"):
        CIFAR10(str(tmp_path), train=False)


# ----------------------------------------------------------------------------- ImageFolder


def make_folder(root):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(2)
    arrays = {}
    for cls, n in [("cat", 2), ("dog", 3)]:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.png")
            arrays[(cls, i)] = a
    (root / "dog" / "notes.txt").write_text("not an image")
    return arrays


def test_image_folder(tmp_path):
    arrays = make_folder(tmp_path)
    ds = ImageFolder(str(tmp_path))
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert len(ds) == 5 and ds.targets == [0, 0, 1, 1, 1]
    img, _ = ds[3]
    np.testing.assert_array_equal(np.asarray(img), arrays[("dog", 1)])
    ds = ImageFolder(str(tmp_path), transform=T.Compose([T.Resize((4, 4)), T.ToTensor()]))
    xb, yb = next(iter(DataLoader(ds, batch_size=5, num_workers=2)))
    assert tuple(xb.shape) == (5, 3, 4, 4) and yb.numpy().tolist() == [0, 0, 1, 1, 1]


def test_image_folder_corrupt_image(tmp_path):
    make_folder(tmp_path)
    bad = tmp_path / "cat" / "1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    ds = ImageFolder(str(tmp_path))
    with pytest.raises(DataFormatError, match=r"cat/1.png"):
        ds[1]
    with pytest.raises(DataFormatError, match=r"cat/1.png"):
        list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=lambda b: len(b)))
    with pytest.raises(FileNotFoundError):
        ImageFolder(str(tmp_path / "nope"))


# ----------------------------------------------------------------------------- CSV / NPZ


def test_csv_dataset(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("f1,label,f2\n1.5,0,2\n3,1,4.25\n5,2,6\n")
    ds = CSVDataset(str(p), label_column="label")
    assert len(ds) == 3 and ds.columns == ["f1", "label", "f2"]
    x, y = ds[1]
    assert x.tolist() == [3.0, 4.25] and x.dtype == np.float32 and y == 1
    x, y = CSVDataset(str(p), label_column=0)[0]
    assert x.tolist() == [0.0, 2.0] and y == 1.5  # non-integral labels stay float
    q = tmp_path / "noheader.csv"
    q.write_text("1;2;1\n3;4;0\n")
    ds = CSVDataset(str(q), delimiter=";")
    assert ds.columns is None and ds[1][1] == 0 and ds[1][0].tolist() == [3.0, 4.0]
    xb, yb = next(iter(DataLoader(ds, batch_size=2)))
    assert tuple(xb.shape) == (2, 2) and yb.numpy().dtype == np.int64
    p.write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(DataFormatError, match=r"d.csv: line 3"):
        CSVDataset(str(p))
    p.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataFormatError, match=r"line 3 has 1 fields"):
        CSVDataset(str(p))
    p.write_text("a,b\n1,2\n")
    with pytest.raises(KeyError, match="zz"):
        CSVDataset(str(p), label_column="zz")


def test_npz_dataset(tmp_path):
    p = str(tmp_path / "d.npz")
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    np.savez(p, x=x, y=np.array([3, 1, 2, 0]))
    ds = NPZDataset(p)
    np.testing.assert_array_equal(ds[2][0], x[2])
    assert ds[2][1] == 2
    with pytest.raises(DataFormatError, match=r"d.npz: no array named 'labels'"):
        NPZDataset(p, y_key="labels")
    np.savez(p, x=x, y=np.arange(3))
    with pytest.raises(DataFormatError, match="3 entries"):
        NPZDataset(p)
    with open(p, "wb") as f:
        f.write(b"PK\x03\x04garbage")
    with pytest.raises(DataFormatError, match="d.npz"):
        NPZDataset(p)
    np.savez(p, x=np.array([{"a": 1}], dtype=object), y=np.arange(1))
    with pytest.raises(DataFormatError, match="d.npz"):  # pickled objects are refused
        NPZDataset(p)


# ----------------------------------------------------------------------------- HDF5


def test_hdf5_round_trip_and_workers(tmp_path):
    h5py = pytest.importorskip("h5py")
    p = str(tmp_path / "d.h5")
    x = np.random.default_rng(3).random((10, 3, 4)).astype(np.float32)
    y = np.arange(10) % 3
    write_hdf5(p, ember.from_numpy(x), y)
    with h5py.File(p, "r") as f:
        assert f["x"].chunks is None  # contiguous layout
    ds = HDF5Dataset(p)
    np.testing.assert_array_equal(ds[7][0], x[7])
    assert ds[7][1] == 1 and len(ds) == 10
    # the handle opened here must not be reused by forked workers, and must not pickle
    got = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=3, num_workers=2)])
    np.testing.assert_array_equal(got, x)
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[0][0], x[0])
    unlabelled = HDF5Dataset(p, y_key=None)
    assert unlabelled[1].shape == (3, 4)


def test_hdf5_errors(tmp_path):
    pytest.importorskip("h5py")
    p = str(tmp_path / "d.h5")
    write_hdf5(p, np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(DataFormatError, match=r"d.h5: no dataset named 'labels'"):
        HDF5Dataset(p, y_key="labels")
    write_hdf5(p, np.zeros((4, 2)), None)
    with pytest.raises(DataFormatError, match="'y'"):
        HDF5Dataset(p)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataFormatError, match="bad.h5"):
        HDF5Dataset(str(bad))
    with pytest.raises(ValueError, match="labels"):
        write_hdf5(p, np.zeros((4, 2)), np.zeros(3))


# ----------------------------------------------------------------------------- LMDB


def test_lmdb_round_trip_and_workers(tmp_path):
    pytest.importorskip("lmdb")
    p = str(tmp_path / "db")
    x = np.random.default_rng(4).integers(0, 256, (9, 4, 4, 3), dtype=np.uint8)
    y = [int(v) for v in np.arange(9) % 4]
    write_lmdb(p, x, y)
    ds = LMDBDataset(p)
    assert len(ds) == 9
    np.testing.assert_array_equal(ds[5][0], x[5])
    assert ds[5][1] == 1 and ds[-1][1] == y[-1]
    with pytest.raises(IndexError):
        ds[9]
    got = list(DataLoader(ds, batch_size=4, num_workers=2))
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in got]), x)
    assert np.concatenate([b[1].numpy() for b in got]).tolist() == y
    assert pickle.loads(pickle.dumps(ds))[0][1] == 0
    write_lmdb(str(tmp_path / "nolabels"), x[:2].astype(np.float32))
    assert LMDBDataset(str(tmp_path / "nolabels"))[1].dtype == np.float32


def test_lmdb_bad_records(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    p = str(tmp_path / "db")
    write_lmdb(p, np.zeros((3, 2, 2), np.float32), [0, 1, 2])
    LMDBDataset(p).close()
    env = lmdb.open(p)
    with env.begin(write=True) as txn:
        good = bytes(txn.get(b"%010d" % 1))
        txn.put(b"%010d" % 1, good[:-4])  # truncated data
        txn.put(b"%010d" % 2, b"XXXX" + good[4:])  # wrong magic
    env.close()
    ds = LMDBDataset(p)
    assert ds[0][1] == 0
    with pytest.raises(DataFormatError, match=r"db: record 1: record holds 12 data bytes"):
        ds[1]
    with pytest.raises(DataFormatError, match=r"db: record 2: bad record magic"):
        ds[2]
    ds.close()
    env = lmdb.open(p)
    with env.begin(write=True) as txn:
        txn.delete(b"%010d" % 0)
    env.close()
    with pytest.raises(DataFormatError, match="record 0 is missing"):
        LMDBDataset(p)[0]
    LMDBDataset(p).close()
    empty = str(tmp_path / "other")
    lmdb.open(empty).close()
    with pytest.raises(DataFormatError, match="not written by write_lmdb"):
        LMDBDataset(empty)


# ----------------------------------------------------------------------------- text


def test_text_dataset(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello world, héllo!")
    ds = TextDataset(str(p), seq_len=4)
    assert ds.vocab_size == len(set("hello world, héllo!"))
    n = len("hello world, héllo!")
    assert len(ds) == (n - 5) // 4 + 1
    x, y = ds[1]
    assert ds.decode(x) == "o wo" and ds.decode(y) == " wor"
    np.testing.assert_array_equal(x[1:], y[:-1])
    assert x.dtype == np.int64
    assert ds.decode(ds.encode("hé")) == "hé"
    over = TextDataset(str(p), seq_len=4, stride=1)
    assert len(over) == n - 4 and over.decode(over[-1][1]) == "llo!"
    xb, yb = next(iter(DataLoader(over, batch_size=3)))
    assert tuple(xb.shape) == (3, 4) and yb.numpy().dtype == np.int64
    b = TextDataset(str(p), seq_len=3, level="byte")
    assert b.vocab_size == 256 and b.decode(b[0][0]) == b"hel"
    p.write_bytes(b"ok \xff\xfe bad")
    with pytest.raises(DataFormatError, match=r"t.txt: not valid UTF-8 at byte 3"):
        TextDataset(str(p), seq_len=2)
    with pytest.raises(ValueError, match="too short"):
        TextDataset(str(p), seq_len=100, level="byte")
