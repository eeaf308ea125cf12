"""Atomic file writes: a file is either its old self or completely the new one, never half
written, whatever happens mid-write (an exception, Ctrl-C, a full disk). Checkpoints,
reports, logs, videos and exported models are all written this way."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


#: The mode a new file gets in this process (read once: ``os.umask`` can only be read by
#: setting it).
_NEW_FILE_MODE = _new_file_mode()


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left in ``folder`` when a process was
    killed mid-write (``.<name>.<pid>.<hex>.tmp``); returns those removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file() and not _writer_alive(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _writer_alive(tmp: Path) -> bool:
    """Whether the process named in a temporary file's name still runs (it may be writing)."""
    parts = tmp.name.split(".")
    try:
        pid = int(parts[-3])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write the new file to. If the block ends
    normally the temporary file is flushed to disk and renamed over ``path`` in one step;
    if it raises, the temporary file is removed and ``path`` is left as it was. Parent
    directories are created.

    The temporary name is hidden and ends in ``.tmp``; with ``keep_suffix`` it ends in
    ``path``'s own suffix instead, for writers that choose the format by it (ffmpeg). The new
    file gets the mode any new file gets (``0o666`` less the umask), whatever mode its writer
    gave the temporary file (safetensors writes ``0o600``). A process killed mid-write can
    leave a temporary file behind: :func:`remove_stale_temporaries` removes them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp = path.with_name(name + (path.suffix if keep_suffix else ""))
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _NEW_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
