"""Atomic file writes: a file is either its old self or completely the new one, never half
written, whatever happens mid-write (an exception, Ctrl-C, a full disk). Checkpoints,
reports, logs, videos and exported models are all written this way."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write the new file to. If the block ends
    normally the temporary file is flushed to disk and renamed over ``path`` in one step;
    if it raises, the temporary file is removed and ``path`` is left as it was. Parent
    directories are created.

    The temporary name is hidden and ends in ``.tmp``; with ``keep_suffix`` it ends in
    ``path``'s own suffix instead, for writers that choose the format by it (ffmpeg).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp = path.with_name(name + (path.suffix if keep_suffix else ""))
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
