"""Pretrained weights fetched like the datasets: from a URL the parameters name, checked against an md5, written
atomically. A local path in the parameters overrides the URL; a profile that names neither uses no such weights.
A file already at the path is kept (a user without network places it by hand); a missing one fails the job that
fetches it, naming the file and the parameters to set, and never the planning of the other jobs.
The run plan imports this module, so torch (through `diffrep.data`) is imported only where a file is fetched.
"""
from __future__ import annotations

import os
from functools import reduce
from pathlib import Path
from urllib.parse import urlparse

from diffrep.config import Config

# Weights by name: the parameter block that holds `<name>_weights` (a local path), `<name>_url` and `<name>_md5`:
# torch-fidelity's Inception-v3 for FID/IS, torchvision's VGG16 (vgg16-397923af.pth) for LPIPS.
WEIGHTS = {"inception": "fidelity", "lpips": "experiments.scorevae"}
FOLDER = Path("weights")


def _fields(cfg: Config, name: str) -> tuple[str, str, str]:
    """The local path, URL and md5 that the parameters give for the weights `name`."""
    if name not in WEIGHTS:
        raise ValueError(f"unknown weights {name!r}; known: {', '.join(WEIGHTS)}")
    block = reduce(getattr, WEIGHTS[name].split("."), cfg)
    return tuple(getattr(block, f"{name}_{field}") for field in ("weights", "url", "md5"))


def local_path(cfg: Config, name: str) -> str:
    """Where the weights `name` are read from: the given path, else weights/<the URL's file name>; "" if neither."""
    path, url, _ = _fields(cfg, name)
    if path or not url:
        return path
    return (FOLDER / Path(urlparse(url).path).name).as_posix()


def fetch_weights(what: str, url: str, md5: str, out: str | Path) -> Path:
    """Download `url` to `out` once its md5 matches; nothing is written at `out` otherwise."""
    from diffrep.data import download, scratch

    if not md5:
        raise ValueError(f"{what}: no md5 given for {url}; weights are only fetched with a checksum")
    out = Path(out)
    with scratch(out) as root:
        os.replace(download(what, url, md5, root), out)
    return out


def fetch_configured(cfg: Config, name: str, out: str | Path) -> Path:
    """Fetch the weights `name` from the URL and md5 in the parameters, or say which parameters to set; a file
    already at `out` is kept."""
    from diffrep.data import DataError

    _, url, md5 = _fields(cfg, name)
    if Path(out).is_file():
        return Path(out)
    if not (url and md5):
        block = WEIGHTS[name]
        raise DataError(f"{name}: {out} is missing; put the file there, or set `{block}.{name}_url` and "
                        f"`{block}.{name}_md5` to fetch it")
    return fetch_weights(name, url, md5, out)
