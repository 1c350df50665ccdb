"""Atomic file writes: a crash at any moment leaves either the old file or the new one, never a partial."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared like any written file
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files `atomic_path` left in `folder` when its process was killed (SIGKILL runs no
    cleanup); the files they were to replace are whole, old or new."""
    orphans = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for p in orphans:
        p.unlink(missing_ok=True)
    return orphans


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_text_if_changed(path: Path, text: str) -> None:
    """Keep the file (and its mtime) when its content is already `text`."""
    if path.is_file() and path.read_text() == text:
        return
    write_text(path, text)


def write_npz(path: str | Path, **arrays: Any) -> None:
    """Arrays as one uncompressed .npz file (numpy.savez), written atomically."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
