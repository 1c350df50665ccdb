"""Datasets prepared once into `train.npz` / `test.npz` (x float32 [N, C, H, W] in [0, 1], y int64) and `split.json`.

digits comes with scikit-learn and is split here (stratified, seeded); MNIST, CIFAR-10/100, OMNIGLOT and CelebA are
downloaded from a mirror, checked against md5 sums and keep their official train/test split; MiniImageNet and
CelebA-HQ are read from a folder the user gives. Nothing is written to the output folder until every file has been
downloaded, checked and parsed, so a failure leaves the folder as it was. The arrays are float32 like every other
dataset's, so the large ones are large: CelebA 64x64 about 9 GB (8.0 train, 1.0 test), CelebA-HQ 256x256 about
0.79 MB per image (24 GB for its 30k).
"""
from __future__ import annotations

import hashlib
import http.client
import pickle
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffrep.config import DATASETS, DatasetConfig
from diffrep.io import write_json, write_npz

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"
OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"  # torchvision's
# torchvision fetches CelebA from Google Drive (needs gdown, and the files' daily quota is often spent); this public
# mirror holds the same files under the same names, checked against torchvision's md5s.
CELEBA_URL = "https://graal.ift.ulaval.ca/public/celeba/"
SPLITS = ("train", "test")

_SOURCES = {"digits": "sklearn", "mnist": "torchvision", "cifar10": "torchvision", "cifar100": "torchvision",
            "miniimagenet": "folder", "omniglot": "torchvision", "celeba64": "torchvision", "celebahq256": "folder"}
_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32),
           "miniimagenet": (3, 84, 84), "omniglot": (1, 28, 28), "celeba64": (3, 64, 64), "celebahq256": (3, 256, 256)}
# CelebA and CelebA-HQ are unlabelled here (one class): nothing that reads labels (silhouette, few-shot, LaplaceNet)
# is planned on them, and the domain classifier trained on one class learns nothing (its cross-entropy is 0).
_NUM_CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10, "cifar100": 100, "miniimagenet": 100, "omniglot": 50,
                "celeba64": 1, "celebahq256": 1}

# What a download can fail with: URLError/HTTPError and socket errors are OSErrors, a connection cut mid-body is
# an HTTPException, a redirect loop a RecursionError (checked before RuntimeError, of which it is a subclass).
_NETWORK_ERRORS = (OSError, http.client.HTTPException, RecursionError)
# What unpacking or parsing a damaged file can fail with (torchvision's idx reader asserts and reshapes).
_PARSE_ERRORS = (
    AssertionError, EOFError, KeyError, OSError, RuntimeError, TypeError, ValueError,
    pickle.UnpicklingError, tarfile.TarError, zipfile.BadZipFile, zlib.error,
)

Arrays = tuple[np.ndarray, np.ndarray]


class DataError(RuntimeError):
    """A download that failed, a checksum that does not match, or a file that cannot be parsed."""


def prepare(name: str, dcfg: DatasetConfig, out_dir: str | Path) -> dict[str, Any]:
    """Write `train.npz`, `test.npz` and `split.json` for dataset `name` into `out_dir`; return the split record."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if dcfg.source != _SOURCES[name]:
        raise ValueError(f"dataset {name!r} comes from source {_SOURCES[name]!r}, not {dcfg.source!r}")
    out_dir = Path(out_dir)
    train, test, info = _LOADERS[name](dcfg, out_dir)
    for split, (x, y) in zip(SPLITS, (train, test)):
        _check(name, split, x, y)
    return _write(out_dir, name, dcfg, train, test, info)


def load(data_dir: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (float32 [N, C, H, W]) and labels (int64 [N]) of one prepared split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    path = Path(data_dir) / f"{split}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; create it with `diffrep prepare --config CONFIG --dataset NAME --out {data_dir}`"
        )
    with np.load(path) as arrays:
        x, y = arrays["x"], arrays["y"]
    return torch.from_numpy(x.astype(np.float32, copy=False)), torch.from_numpy(y.astype(np.int64, copy=False))


def _digits(dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """scikit-learn's 8x8 digits (values 0..16), split stratified by class with the configured seed."""
    # scikit-learn and torchvision are imported where used: `load`, which training calls, needs neither.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=dcfg.test_fraction, random_state=dcfg.split_seed, stratify=y
    )
    # The order is kept: row i of test.npz is image test_indices[i] of load_digits().
    info = {"split": "stratified", "test_fraction": dcfg.test_fraction, "split_seed": dcfg.split_seed,
            "test_indices": test_idx.tolist()}
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx]), info


def _mnist(dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """The four idx.gz files of MNIST, official 60k/10k split."""
    from torchvision.datasets import MNIST

    base = dcfg.url or MNIST_URL
    md5s = _md5s(dcfg, dict(MNIST.resources))
    with scratch(out_dir) as root:
        paths = {f: _fetch("mnist", base, f, md5, root) for f, md5 in md5s.items()}
        train, test = _mnist_pair(paths, "train"), _mnist_pair(paths, "t10k")
    return train, test, _official(base, md5s)


def _mnist_pair(paths: dict[str, Path], prefix: str) -> Arrays:
    """Images and labels of one MNIST split, read with torchvision's idx readers."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images, labels = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    with _parsing("mnist", images):
        x = read_image_file(str(paths[images])).numpy()
    with _parsing("mnist", labels):
        y = read_label_file(str(paths[labels])).numpy()
    return (x[:, None] / np.float32(255)).astype(np.float32), y.astype(np.int64)


def _cifar(name: str, dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """The python-pickle release of CIFAR-10 or CIFAR-100 (its fine labels), official 50k/10k split."""
    from torchvision.datasets import CIFAR10, CIFAR100

    release, label_key = {"cifar10": (CIFAR10, "labels"), "cifar100": (CIFAR100, "fine_labels")}[name]
    base = dcfg.url or CIFAR10_URL
    md5s = _md5s(dcfg, {release.filename: release.tgz_md5})
    with scratch(out_dir) as root:
        folder = _fetch(name, base, release.filename, md5s[release.filename], root) / release.base_folder
        # The batch names come from torchvision; their md5s are not checked again, the archive's already was.
        train, test = (_cifar_batches(name, release, folder, [batch for batch, _ in files], label_key)
                       for files in (release.train_list, release.test_list))
    return train, test, _official(base, md5s)


def _miniimagenet(dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """MiniImageNet from the user's folder: train/ and test/ in ImageFolder layout, images resized to 84x84."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    root = _split_folders("miniimagenet", dcfg, "with one sub-folder per class")
    to_array = transforms.Compose([transforms.Resize((84, 84)), transforms.ToTensor()])
    splits = []
    for split in SPLITS:
        with _parsing("miniimagenet", str(root / split)):
            folder = ImageFolder(str(root / split), transform=to_array)
            x = torch.stack([img for img, _ in folder]).numpy()
            splits.append((x, np.asarray(folder.targets, dtype=np.int64)))
    return splits[0], splits[1], _from_folder(root)


def _celebahq256(dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """CelebA-HQ 256x256 (LSGM Fig. 4; not in torchvision) from the user's folder: train/ and test/ of images, flat or
    in sub-folders (all one class), resized to 256x256; the split is the user's (LSGM's: 27k train, 3k test)."""
    from torchvision import transforms
    from torchvision.datasets.folder import is_image_file

    root = _split_folders("celebahq256", dcfg, "of images (flat, or in one sub-folder)")
    to_tensor = transforms.Compose([transforms.Resize((256, 256)), transforms.ToTensor()])
    splits = []
    for split in SPLITS:
        files = sorted(p for p in (root / split).rglob("*") if p.is_file() and is_image_file(str(p)))
        with _parsing("celebahq256", str(root / split)):
            x = _images(files, lambda f: f.open("rb"), to_tensor, "RGB", _SHAPES["celebahq256"])
        splits.append((x, np.zeros(len(x), dtype=np.int64)))
    return splits[0], splits[1], _from_folder(root)


def _split_folders(name: str, dcfg: DatasetConfig, layout: str) -> Path:
    """The user's folder of a `folder` dataset, which must hold train/ and test/ (the planning checks it too)."""
    root = Path(dcfg.path)
    if not all((root / split).is_dir() for split in SPLITS):
        raise DataError(f"{name}: {root} needs train/ and test/ folders {layout}")
    return root


def _from_folder(root: Path) -> dict[str, Any]:
    """split.json fields of a dataset read from the user's folder: its train/test split, and where it came from."""
    return {"split": "official", "test_fraction": None, "split_seed": None, "path": str(root)}


def _omniglot(dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """OMNIGLOT (LSGM Table 4) from torchvision's two zips: 105x105 PNGs resized to 28x28, strokes 1 on 0.

    LSGM, after IWAE, used the 28x28 split of `chardata.mat` (24,345 train and 8,070 test images, all 50 alphabets),
    which torchvision does not ship; this is torchvision's release instead: the background set (30 alphabets,
    19,280 images) as train, the evaluation set (the 20 other alphabets, 13,180 images) as test, so the test
    characters are new ones. The label is the alphabet: its index in the sorted background alphabets, then in the
    sorted evaluation alphabets after them (0..29 train, 30..49 test), as chardata.mat labels its 50 alphabets.
    The runs binarize the gray levels afresh at every draw (LSGM sec. 5.1).
    """
    from torchvision.datasets import Omniglot

    base = dcfg.url or OMNIGLOT_URL
    md5s = _md5s(dcfg, {f"{part}.zip": md5 for part, md5 in Omniglot.zips_md5.items()})
    with scratch(out_dir) as root:
        paths = {f: download("omniglot", base.rstrip("/") + "/" + f, md5, root) for f, md5 in md5s.items()}
        train = _omniglot_zip(paths["images_background.zip"], 0)
        test = _omniglot_zip(paths["images_evaluation.zip"], int(train[1].max()) + 1)
    return train, test, _official(base, md5s)


def _omniglot_zip(path: Path, first_label: int) -> Arrays:
    """The `<set>/<alphabet>/<character>/<image>.png` members of one OMNIGLOT zip, inverted, labelled by alphabet."""
    from torchvision import transforms

    with _parsing("omniglot", path.name), zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png") and n.count("/") == 3)
        if not names:
            raise ValueError("no <set>/<alphabet>/<character>/<image>.png members")
        alphabets = sorted({n.split("/")[1] for n in names})
        # black strokes on white in the PNGs; the binarized models want the stroke to be the 1
        to_tensor = transforms.Compose([transforms.Resize((28, 28)), transforms.ToTensor(), lambda t: 1.0 - t])
        x = _images(names, zf.open, to_tensor, "L", _SHAPES["omniglot"])
    y = np.array([first_label + alphabets.index(n.split("/")[1]) for n in names], dtype=np.int64)
    return x, y


def _celeba64(dcfg: DatasetConfig, out_dir: Path) -> tuple[Arrays, Arrays, dict[str, Any]]:
    """CelebA 64x64 (ScoreVAE Table 2): the aligned 178x218 images center-cropped to 140x140 and resized to 64x64 (the
    usual CelebA-64 protocol, score-SDE's among others), the official partition (0 train: 162,770; 2 test: 19,962;
    the 1s, validation, are left out), one class."""
    from torchvision import transforms
    from torchvision.datasets import CelebA

    needed = ("img_align_celeba.zip", "list_eval_partition.txt")
    base = dcfg.url or CELEBA_URL
    md5s = _md5s(dcfg, {f: md5 for _, md5, f in CelebA.file_list if f in needed})
    to_tensor = transforms.Compose([transforms.CenterCrop(140), transforms.Resize((64, 64)), transforms.ToTensor()])
    with scratch(out_dir) as root:
        paths = {f: download("celeba64", base.rstrip("/") + "/" + f, md5, root) for f, md5 in md5s.items()}
        with _parsing("celeba64", needed[1]):
            partition = _celeba_partition(paths[needed[1]])
        splits = []
        with _parsing("celeba64", needed[0]), zipfile.ZipFile(paths[needed[0]]) as zf:
            for part in (0, 2):
                names = [f"img_align_celeba/{f}" for f, p in partition.items() if p == part]
                x = _images(names, zf.open, to_tensor, "RGB", _SHAPES["celeba64"])
                splits.append((x, np.zeros(len(x), dtype=np.int64)))
    return splits[0], splits[1], _official(base, md5s)


def _celeba_partition(path: Path) -> dict[str, int]:
    """list_eval_partition.txt: `<image> <0|1|2>` per line, in the file's order."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows or any(len(r) != 2 or r[1] not in ("0", "1", "2") for r in rows):
        raise ValueError("expected lines of `<image> <0|1|2>`")
    return {name: int(part) for name, part in rows}


def _images(items: list, open_item, to_tensor, mode: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Each item opened with `open_item`, decoded (PIL), converted to `mode` and through `to_tensor`, into one
    preallocated float32 array (a list and a stack would hold the large sets twice)."""
    from PIL import Image

    x = np.empty((len(items), *shape), dtype=np.float32)
    for i, item in enumerate(items):
        with open_item(item) as fh, Image.open(fh) as img:
            x[i] = to_tensor(img.convert(mode)).numpy()
    return x


def _cifar_batches(dataset: str, release, folder: Path, names: list[str], label_key: str) -> Arrays:
    """Concatenated images and labels of the pickled batches `names` in `folder`."""
    xs, ys = [], []
    for name in names:
        with _parsing(dataset, f"{release.filename} ({release.base_folder}/{name})"):
            with open(folder / name, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            # The original (Python 2) pickles load with str keys under latin1; re-pickled copies may have bytes keys.
            batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return (np.concatenate(xs) / np.float32(255)).astype(np.float32), np.concatenate(ys)


def _md5s(dcfg: DatasetConfig, defaults: dict[str, str]) -> dict[str, str]:
    """md5 per needed file: the configured ones when `files` is set (it must cover them all), else torchvision's."""
    if not dcfg.files:
        return dict(defaults)
    missing = [f for f in defaults if f not in dcfg.files]
    if missing:
        raise ValueError(f"files: no md5 given for {', '.join(missing)} (needed: {', '.join(defaults)})")
    return {f: dcfg.files[f] for f in defaults}


def _official(base: str, md5s: dict[str, str]) -> dict[str, Any]:
    """split.json fields of a downloaded dataset: the official split, and where the files came from."""
    return {"split": "official", "test_fraction": None, "split_seed": None,
            "note": "official train/test split; test_fraction and split_seed are not used",
            "url": base, "files": md5s}


@contextmanager
def scratch(out_dir: Path) -> Iterator[Path]:
    """A download folder beside `out_dir` (same file system, so a rename into place is atomic), removed whatever
    happens."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.download-", dir=out_dir.parent))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def download(what: str, url: str, md5: str, root: Path) -> Path:
    """Download `url` into `root` under its file name and check its md5; a DataError names `what`, file and URL."""
    from torchvision.datasets.utils import calculate_md5, download_url

    filename = url.rstrip("/").rsplit("/", 1)[-1]
    path = root / filename
    try:
        download_url(url, str(root), filename=filename, md5=md5)
    except _NETWORK_ERRORS as e:
        raise DataError(f"{what}: downloading {filename} from {url} failed: {e}") from e
    except RuntimeError as e:
        # torchvision reports a checksum mismatch only as "File not found or corrupted."; say which it was.
        got = calculate_md5(path) if path.is_file() else None
        if got is None or got == md5:
            raise DataError(f"{what}: downloading {filename} from {url} failed: {e}") from e
        raise DataError(f"{what}: {filename} from {url} has the wrong md5 checksum: expected {md5}, got {got}") from e
    return path


def _fetch(dataset: str, base: str, filename: str, md5: str, root: Path) -> Path:
    """Download `filename` from `base` into `root`, check its md5 and unpack it; return what it unpacked to."""
    from torchvision.datasets.utils import extract_archive

    path = download(dataset, base.rstrip("/") + "/" + filename, md5, root)
    with _parsing(dataset, filename):
        return Path(extract_archive(str(path), str(root)))


@contextmanager
def _parsing(dataset: str, filename: str) -> Iterator[None]:
    """Turn a failure to unpack or parse `filename` into a DataError that names it."""
    try:
        yield
    except _PARSE_ERRORS as e:
        raise DataError(f"{dataset}: {filename} is damaged or not in the expected format: "
                        f"{type(e).__name__}: {e}") from e


def _check(name: str, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Refuse data that parsed but does not look like the dataset (wrong image size, labels, counts)."""
    problem = None
    if x.shape[1:] != _SHAPES[name]:
        problem = f"images of shape {list(x.shape[1:])}, expected {list(_SHAPES[name])}"
    elif len(x) != len(y) or len(x) == 0:
        problem = f"{len(x)} images but {len(y)} labels"
    elif y.min() < 0 or y.max() >= _NUM_CLASSES[name]:
        problem = f"labels outside 0..{_NUM_CLASSES[name] - 1}"
    if problem:
        raise DataError(f"{name}: {split} split has {problem}")


def _write(out_dir: Path, name: str, dcfg: DatasetConfig, train: Arrays, test: Arrays,
           info: dict[str, Any]) -> dict[str, Any]:
    """The two npz files, then split.json last, so its presence means the folder is complete."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sha = {f"{split}.npz": _save_npz(out_dir / f"{split}.npz", *arrays) for split, arrays in zip(SPLITS, (train, test))}
    record = {"dataset": name, "source": dcfg.source, "n_train": len(train[1]), "n_test": len(test[1]),
              "image_shape": list(_SHAPES[name]), "num_classes": _NUM_CLASSES[name], **info, "sha256": sha}
    write_json(out_dir / "split.json", record)
    return record


def _save_npz(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    """Write x and y atomically; return the file's sha256."""
    write_npz(path, x=x, y=y)
    return _sha256(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


_LOADERS = {"digits": _digits, "mnist": _mnist, "cifar10": partial(_cifar, "cifar10"),
            "cifar100": partial(_cifar, "cifar100"), "miniimagenet": _miniimagenet, "omniglot": _omniglot,
            "celeba64": _celeba64, "celebahq256": _celebahq256}
