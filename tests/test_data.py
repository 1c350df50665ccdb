"""diffrep.data: digits split, downloads (MNIST, CIFAR, OMNIGLOT, CelebA) from a local mirror of small files in the real
formats, and the folders a user gives (CelebA-HQ)."""
from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import pickle
import socket
import struct
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from diffrep import data
from diffrep.config import DatasetConfig
from diffrep.io import read_json

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_FILE = "cifar-10-python.tar.gz"
CIFAR100_FILE = "cifar-100-python.tar.gz"
OMNIGLOT_FILES = ("images_background.zip", "images_evaluation.zip")
CELEBA_FILES = ("img_align_celeba.zip", "list_eval_partition.txt")
FILES = {"mnist": MNIST_FILES, "cifar10": (CIFAR_FILE,), "omniglot": OMNIGLOT_FILES, "celeba64": CELEBA_FILES}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- a local mirror ---------------------------------------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror(tmp_path):
    """An HTTP server on loopback serving tmp_path/mirror; yields (folder, base url)."""
    root = tmp_path / "mirror"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def write_mnist(root: Path, n_train: int = 20, n_test: int = 10) -> dict:
    """The four idx.gz files (big-endian headers: magic 2051 images, 2049 labels); returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        images = struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes()
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, n) + y.tobytes()))
        arrays[prefix] = (x, y)
    return arrays


def write_cifar(root: Path, rows: int = 3) -> dict:
    """cifar-10-python.tar.gz with data_batch_1..5 and test_batch of `rows` rows each; returns the arrays written."""
    rng = np.random.default_rng(1)
    batches = {}
    with tarfile.open(root / CIFAR_FILE, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=rows).tolist()
            blob = pickle.dumps({b"batch_label": name.encode(), b"data": x, b"labels": labels})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            batches[name] = (x, labels)
    return batches


def write_cifar100(root: Path, rows: int = 3) -> dict:
    """cifar-100-python.tar.gz with its train and test pickles (fine and coarse labels); returns what was written."""
    rng = np.random.default_rng(2)
    batches = {}
    with tarfile.open(root / CIFAR100_FILE, "w:gz") as tar:
        for name in ("train", "test"):
            x = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
            fine, coarse = rng.integers(0, 100, size=rows).tolist(), rng.integers(0, 20, size=rows).tolist()
            blob = pickle.dumps({"filenames": [], "data": x, "fine_labels": fine, "coarse_labels": coarse})
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            batches[name] = (x, fine)
    return batches


def png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_omniglot(root: Path) -> dict:
    """The two zips as torchvision ships them (`<set>/<alphabet>/<character>/<image>.png`, 105x105, black strokes on
    white): two alphabets in the background set, one in the evaluation set; blank, full and left-half-black images."""
    pages = {"blank": Image.new("1", (105, 105), 1), "full": Image.new("1", (105, 105), 0)}
    half = Image.new("1", (105, 105), 1)
    half.paste(0, (0, 0, 52, 105))
    pages["half"] = half
    sets = {"images_background": {"Greek": ["blank", "full"], "Alphabet_of_the_Magi": ["half", "blank", "full"]},
            "images_evaluation": {"Tengwar": ["full", "half"]}}
    for part, alphabets in sets.items():
        with zipfile.ZipFile(root / f"{part}.zip", "w") as zf:
            for alphabet, kinds in alphabets.items():
                for i, kind in enumerate(kinds):
                    zf.writestr(f"{part}/{alphabet}/character{i // 2 + 1:02d}/{i:04d}_{i % 2 + 1:02d}.png",
                                png(pages[kind]))
    return sets


def celeba_face(colour: tuple[int, int, int]) -> Image.Image:
    """A 178x218 aligned-CelebA-sized image: `colour` in the central 140x140 crop, black around it."""
    img = Image.new("RGB", (178, 218), (0, 0, 0))
    img.paste(colour, (19, 39, 159, 179))
    return img


CELEBA_COLOURS = {"000001.jpg": (255, 0, 0), "000002.jpg": (0, 255, 0), "000003.jpg": (0, 0, 255),
                  "000004.jpg": (255, 255, 0), "000005.jpg": (255, 255, 255)}
CELEBA_PARTITION = {"000001.jpg": 0, "000002.jpg": 1, "000003.jpg": 2, "000004.jpg": 0, "000005.jpg": 2}


def write_celeba(root: Path) -> None:
    """img_align_celeba.zip (JPEGs under img_align_celeba/) and list_eval_partition.txt (0 train, 1 valid, 2 test)."""
    with zipfile.ZipFile(root / CELEBA_FILES[0], "w") as zf:
        for name, colour in CELEBA_COLOURS.items():
            zf.writestr(f"img_align_celeba/{name}", png(celeba_face(colour), "JPEG"))
    (root / CELEBA_FILES[1]).write_text("".join(f"{n} {p}\n" for n, p in CELEBA_PARTITION.items()))


def torchvision_cfg(url: str, files: dict[str, str]) -> DatasetConfig:
    return DatasetConfig(source="torchvision", url=url, files=files)


def served(root: Path, names) -> dict[str, str]:
    return {name: md5(root / name) for name in names}


def assert_nothing_left(tmp_path: Path) -> None:
    """No npz/json in the output folder and no download folder beside it."""
    parent = tmp_path / "data"
    leftovers = [p for p in parent.rglob("*")] if parent.exists() else []
    assert all(p.is_dir() and not any(p.iterdir()) for p in leftovers), leftovers


# --- digits -------------------------------------------------------------------------------------------------------


def test_digits_shapes_values_and_record(tmp_path):
    out = tmp_path / "digits"
    record = data.prepare("digits", DatasetConfig(test_fraction=0.2, split_seed=0), out)
    bunch = load_digits()
    n_test = math.ceil(0.2 * len(bunch.target))
    x_tr, y_tr = data.load(out, "train")
    x_te, y_te = data.load(out, "test")
    assert x_tr.shape == (len(bunch.target) - n_test, 1, 8, 8) and x_te.shape == (n_test, 1, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) >= 0.0 and float(x_tr.max()) == 1.0
    assert record == read_json(out / "split.json")
    assert (record["n_train"], record["n_test"], record["num_classes"]) == (len(y_tr), n_test, 10)
    assert record["image_shape"] == [1, 8, 8] and record["split_seed"] == 0 and record["source"] == "sklearn"
    assert record["sha256"] == {f: sha256(out / f) for f in ("train.npz", "test.npz")}
    idx = np.array(record["test_indices"])
    np.testing.assert_array_equal(x_te.numpy(), bunch.images[idx, None] / 16.0)
    np.testing.assert_array_equal(y_te.numpy(), bunch.target[idx])
    assert len(set(idx.tolist())) == n_test


def test_digits_split_is_stratified(tmp_path):
    data.prepare("digits", DatasetConfig(test_fraction=0.2, split_seed=3), tmp_path)
    _, y_tr = data.load(tmp_path, "train")
    _, y_te = data.load(tmp_path, "test")
    counts = np.bincount(np.concatenate([y_tr, y_te]), minlength=10)
    np.testing.assert_allclose(np.bincount(y_te.numpy(), minlength=10), 0.2 * counts, atol=1)


def test_digits_split_is_reproducible(tmp_path):
    a = data.prepare("digits", DatasetConfig(split_seed=7), tmp_path / "a")
    b = data.prepare("digits", DatasetConfig(split_seed=7), tmp_path / "b")
    c = data.prepare("digits", DatasetConfig(split_seed=8), tmp_path / "c")
    assert a["test_indices"] == b["test_indices"] and a["sha256"] == b["sha256"]
    assert a["test_indices"] != c["test_indices"]


def test_load_missing_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.npz.*diffrep prepare"):
        data.load(tmp_path, "train")


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="digits, mnist, cifar10"):
        data.prepare("svhn", DatasetConfig(), tmp_path)


def test_source_must_match_the_dataset(tmp_path):
    with pytest.raises(ValueError, match="torchvision"):
        data.prepare("mnist", DatasetConfig(source="sklearn"), tmp_path / "data" / "mnist")
    assert_nothing_left(tmp_path)


# --- downloads ----------------------------------------------------------------------------------------------------


def test_mnist_from_mirror(tmp_path, mirror):
    root, url = mirror
    arrays = write_mnist(root)
    out = tmp_path / "data" / "mnist"
    record = data.prepare("mnist", torchvision_cfg(url, served(root, MNIST_FILES)), out)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = data.load(out, split)
        np.testing.assert_array_equal(x.numpy(), arrays[prefix][0][:, None] / np.float32(255))
        np.testing.assert_array_equal(y.numpy(), arrays[prefix][1])
    assert (record["n_train"], record["n_test"], record["image_shape"]) == (20, 10, [1, 28, 28])
    assert record["split"] == "official" and record["files"] == served(root, MNIST_FILES)
    assert record["sha256"] == {f: sha256(out / f) for f in ("train.npz", "test.npz")}
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mnist"]  # download folder removed
    assert sorted(p.name for p in out.iterdir()) == ["split.json", "test.npz", "train.npz"]


def test_cifar10_from_mirror(tmp_path, mirror):
    root, url = mirror
    batches = write_cifar(root)
    out = tmp_path / "data" / "cifar10"
    record = data.prepare("cifar10", torchvision_cfg(url, served(root, [CIFAR_FILE])), out)
    expected = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    for split, names in expected.items():
        x, y = data.load(out, split)
        want = np.concatenate([batches[n][0] for n in names]).reshape(-1, 3, 32, 32) / np.float32(255)
        np.testing.assert_array_equal(x.numpy(), want)
        np.testing.assert_array_equal(y.numpy(), np.concatenate([batches[n][1] for n in names]))
    assert (record["n_train"], record["n_test"], record["image_shape"]) == (15, 3, [3, 32, 32])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cifar10"]


def test_cifar100_from_mirror_reads_the_fine_labels(tmp_path, mirror):
    root, url = mirror
    batches = write_cifar100(root)
    out = tmp_path / "data" / "cifar100"
    record = data.prepare("cifar100", torchvision_cfg(url, served(root, [CIFAR100_FILE])), out)
    for split in ("train", "test"):
        x, y = data.load(out, split)
        np.testing.assert_array_equal(x.numpy(), batches[split][0].reshape(-1, 3, 32, 32) / np.float32(255))
        np.testing.assert_array_equal(y.numpy(), batches[split][1])
    assert (record["n_train"], record["num_classes"]) == (3, 100)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cifar100"]


@pytest.mark.parametrize("name,write,first_md5", [
    ("cifar10", write_cifar, "c58f30108f718f92721af3b95e74349a"),
    ("omniglot", write_omniglot, "68d2efa1b9178cc56df9314c21c6e718"),  # images_background.zip
    ("celeba64", write_celeba, "00d2c5bc6d35e252742224ab0c1e8fcb"),  # img_align_celeba.zip
])
def test_without_files_the_real_md5s_are_expected(tmp_path, mirror, name, write, first_md5):
    # Our small files cannot match the real archive, so the error shows the md5 that was expected: torchvision's.
    root, url = mirror
    write(root)
    with pytest.raises(data.DataError, match=f"expected {first_md5}"):
        data.prepare(name, torchvision_cfg(url, {}), tmp_path / "data" / name)
    assert_nothing_left(tmp_path)


def test_default_mirrors_are_torchvision_s_or_hold_its_files():
    from torchvision.datasets import Omniglot

    assert data.OMNIGLOT_URL.rstrip("/") == Omniglot.download_url_prefix
    assert data.CELEBA_URL.startswith("https://")


@pytest.mark.parametrize(
    "name,write,bad", [("mnist", write_mnist, MNIST_FILES[2]), ("cifar10", write_cifar, CIFAR_FILE),
                       ("omniglot", write_omniglot, OMNIGLOT_FILES[1]), ("celeba64", write_celeba, CELEBA_FILES[1])]
)
def test_wrong_md5(tmp_path, mirror, name, write, bad):
    root, url = mirror
    write(root)
    files = served(root, FILES[name])
    files[bad] = "0" * 32
    with pytest.raises(data.DataError, match=rf"{name}: {bad}.*md5.*expected 0{{32}}, got {md5(root / bad)}"):
        data.prepare(name, torchvision_cfg(url, files), tmp_path / "data" / name)
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize(
    "name,write,bad", [("mnist", write_mnist, MNIST_FILES[0]), ("cifar10", write_cifar, CIFAR_FILE),
                       ("omniglot", write_omniglot, OMNIGLOT_FILES[0]), ("celeba64", write_celeba, CELEBA_FILES[0]),
                       ("celeba64", write_celeba, CELEBA_FILES[1])]
)
def test_truncated_archive(tmp_path, mirror, name, write, bad):
    root, url = mirror
    write(root)
    blob = (root / bad).read_bytes()
    (root / bad).write_bytes(blob[: len(blob) // 2])  # its md5 is served below, so only parsing can notice
    files = served(root, FILES[name])
    with pytest.raises(data.DataError, match=rf"{name}: {bad}"):
        data.prepare(name, torchvision_cfg(url, files), tmp_path / "data" / name)
    assert_nothing_left(tmp_path)


def test_omniglot_from_mirror_inverts_resizes_and_labels_by_alphabet(tmp_path, mirror):
    root, url = mirror
    write_omniglot(root)
    out = tmp_path / "data" / "omniglot"
    record = data.prepare("omniglot", torchvision_cfg(url, served(root, OMNIGLOT_FILES)), out)
    (x_tr, y_tr), (x_te, y_te) = data.load(out, "train"), data.load(out, "test")
    assert x_tr.shape == (5, 1, 28, 28) and x_te.shape == (2, 1, 28, 28)
    assert float(x_tr.min()) >= 0.0 and float(x_tr.max()) <= 1.0
    # sorted alphabets: Alphabet_of_the_Magi 0, Greek 1; the evaluation set's after them: Tengwar 2
    np.testing.assert_array_equal(y_tr.numpy(), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(y_te.numpy(), [2, 2])
    magi_half, magi_blank, magi_full = x_tr[0, 0], x_tr[1, 0], x_tr[2, 0]
    assert float(magi_blank.max()) == 0.0 and float(magi_full.min()) == 1.0, "strokes (black) are 1, paper 0"
    assert float(magi_half[:, :13].min()) > 0.9 and float(magi_half[:, 15:].max()) < 0.1
    assert (record["n_train"], record["n_test"], record["num_classes"]) == (5, 2, 50)
    assert record["split"] == "official" and record["files"] == served(root, OMNIGLOT_FILES)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["omniglot"]


def test_omniglot_zip_without_images_is_refused(tmp_path, mirror):
    root, url = mirror
    write_omniglot(root)
    with zipfile.ZipFile(root / OMNIGLOT_FILES[1], "w") as zf:
        zf.writestr("README.txt", "no images here")
    with pytest.raises(data.DataError, match=rf"omniglot: {OMNIGLOT_FILES[1]} is damaged.*png"):
        data.prepare("omniglot", torchvision_cfg(url, served(root, OMNIGLOT_FILES)), tmp_path / "data" / "omniglot")
    assert_nothing_left(tmp_path)


def test_celeba64_crops_resizes_and_keeps_the_official_partition(tmp_path, mirror):
    root, url = mirror
    write_celeba(root)
    out = tmp_path / "data" / "celeba64"
    record = data.prepare("celeba64", torchvision_cfg(url, served(root, CELEBA_FILES)), out)
    for split, part in (("train", 0), ("test", 2)):
        x, y = data.load(out, split)
        names = [n for n, p in CELEBA_PARTITION.items() if p == part]  # in the partition file's order
        assert x.shape == (len(names), 3, 64, 64) and (y == 0).all()
        want = torch.tensor([CELEBA_COLOURS[n] for n in names], dtype=torch.float32)[:, :, None, None] / 255
        # the black border lies outside the 140x140 center crop, so only the face's colour is left (JPEG rings at its
        # edge); without the crop, half the image would be black
        assert float((x[:, :, 2:-2, 2:-2] - want).abs().max()) < 0.1
        np.testing.assert_allclose(x.mean(dim=(2, 3)).numpy(), want[:, :, 0, 0].numpy(), atol=0.03)
    assert (record["n_train"], record["n_test"], record["num_classes"]) == (2, 2, 1), "validation (1) left out"
    assert record["image_shape"] == [3, 64, 64] and record["files"] == served(root, CELEBA_FILES)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["celeba64"]


def test_celeba64_partition_naming_a_missing_image_is_refused(tmp_path, mirror):
    root, url = mirror
    write_celeba(root)
    with open(root / CELEBA_FILES[1], "a") as fh:
        fh.write("999999.jpg 0\n")
    with pytest.raises(data.DataError, match=rf"celeba64: {CELEBA_FILES[0]} is damaged.*999999\.jpg"):
        data.prepare("celeba64", torchvision_cfg(url, served(root, CELEBA_FILES)), tmp_path / "data" / "celeba64")
    assert_nothing_left(tmp_path)


def write_celebahq(root: Path) -> None:
    """train/ flat with two 256x256 images and a non-image file; test/ with one 300x300 image in one sub-folder."""
    (root / "train").mkdir(parents=True)
    (root / "test" / "faces").mkdir(parents=True)
    Image.new("RGB", (256, 256), (255, 0, 0)).save(root / "train" / "00000.png")
    Image.new("RGB", (256, 256), (0, 0, 255)).save(root / "train" / "00001.jpg", quality=95)
    (root / "train" / "notes.txt").write_text("not an image")
    Image.new("L", (300, 300), 255).save(root / "test" / "faces" / "29999.png")


def test_celebahq256_from_a_folder_flat_or_in_one_sub_folder(tmp_path):
    write_celebahq(tmp_path / "hq")
    out = tmp_path / "data" / "celebahq256"
    record = data.prepare("celebahq256", DatasetConfig(source="folder", path=str(tmp_path / "hq")), out)
    (x_tr, y_tr), (x_te, y_te) = data.load(out, "train"), data.load(out, "test")
    assert x_tr.shape == (2, 3, 256, 256) and x_te.shape == (1, 3, 256, 256)
    assert (y_tr == 0).all() and (y_te == 0).all() and record["num_classes"] == 1
    np.testing.assert_allclose(x_tr[0].mean(dim=(1, 2)).numpy(), [1, 0, 0], atol=1e-6)  # sorted: 00000.png first
    np.testing.assert_allclose(x_tr[1].mean(dim=(1, 2)).numpy(), [0, 0, 1], atol=0.02)
    np.testing.assert_allclose(x_te.numpy(), 1.0)  # gray 300x300 -> RGB 256x256
    assert record["path"] == str(tmp_path / "hq") and record["split"] == "official"


def test_a_missing_dataset_folder_names_the_path(tmp_path):
    (tmp_path / "hq" / "train").mkdir(parents=True)
    with pytest.raises(data.DataError, match=rf"celebahq256: {tmp_path / 'hq'} needs train/ and test/"):
        data.prepare("celebahq256", DatasetConfig(source="folder", path=str(tmp_path / "hq")),
                     tmp_path / "data" / "celebahq256")
    assert_nothing_left(tmp_path)


def test_a_damaged_image_in_a_folder_is_named(tmp_path):
    write_celebahq(tmp_path / "hq")
    (tmp_path / "hq" / "test" / "faces" / "broken.png").write_bytes(b"\x89PNG half")
    with pytest.raises(data.DataError, match=r"celebahq256: .*test is damaged"):
        data.prepare("celebahq256", DatasetConfig(source="folder", path=str(tmp_path / "hq")),
                     tmp_path / "data" / "celebahq256")
    assert_nothing_left(tmp_path)


def test_every_dataset_has_a_source_shape_class_count_and_loader():
    for table in (data._SOURCES, data._SHAPES, data._NUM_CLASSES, data._LOADERS):
        assert set(table) == set(data.DATASETS)


def test_idx_with_too_few_bytes(tmp_path, mirror):
    root, url = mirror
    write_mnist(root)
    bad = MNIST_FILES[2]
    raw = gzip.decompress((root / bad).read_bytes())
    (root / bad).write_bytes(gzip.compress(raw[:-100]))  # a valid gzip whose idx body is short
    with pytest.raises(data.DataError, match=rf"mnist: {bad}"):
        data.prepare("mnist", torchvision_cfg(url, served(root, MNIST_FILES)), tmp_path / "data" / "mnist")
    assert_nothing_left(tmp_path)


def test_missing_file_on_mirror(tmp_path, mirror):
    root, url = mirror
    write_mnist(root)
    files = served(root, MNIST_FILES)
    (root / MNIST_FILES[3]).unlink()
    with pytest.raises(data.DataError, match=rf"mnist: downloading {MNIST_FILES[3]} .*404"):
        data.prepare("mnist", torchvision_cfg(url, files), tmp_path / "data" / "mnist")
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_unreachable_mirror(tmp_path, name):
    # A socket bound but not listening: connecting is refused, and no other process can take the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        files = {f: "0" * 32 for f in (MNIST_FILES if name == "mnist" else [CIFAR_FILE])}
        with pytest.raises(data.DataError, match=rf"{name}: downloading .* failed.*refused"):
            data.prepare(name, torchvision_cfg(url, files), tmp_path / "data" / name)
    assert_nothing_left(tmp_path)


def test_failure_keeps_an_earlier_preparation(tmp_path, mirror):
    root, url = mirror
    write_mnist(root)
    out = tmp_path / "data" / "mnist"
    first = data.prepare("mnist", torchvision_cfg(url, served(root, MNIST_FILES)), out)
    with pytest.raises(data.DataError):
        data.prepare("mnist", torchvision_cfg(url, {f: "0" * 32 for f in MNIST_FILES}), out)
    assert read_json(out / "split.json") == first
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mnist"]
