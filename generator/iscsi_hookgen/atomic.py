"""Replace a file's content so that a reader sees either the old or the new bytes.

A crash, a full disk or a concurrent edit must never leave a half-written
mkinitcpio.conf or hook behind: the new content goes to a temporary file in the
same directory, is flushed to disk, and is renamed over the old name; the
directory is flushed too so that the rename itself survives a power cut.
"""

import contextlib
import os
from pathlib import Path


class ChangedOnDiskError(OSError):
    """The file no longer holds what we read, so our edit would lose someone's change."""


def resolve_target(path: Path) -> Path:
    """Follow symlinks, so that a linked config is edited where it lives and stays a link."""
    return Path(os.path.realpath(path))


def atomic_write(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    keep_mode: bool = True,
    expected: bytes | None = None,
    like: os.stat_result | None = None,
) -> None:
    """Write `data` to `path` atomically.

    An existing file keeps its owner, and its mode unless `keep_mode` is false
    (a file holding secrets gets `mode` whatever it had); a new file gets `mode`.
    With `expected`, the write is refused with ChangedOnDiskError when the file
    no longer holds exactly those bytes. On any failure the original is intact
    and no temporary file is left behind.
    With `like`, the file gets that mode and owner instead, new or not: a backup
    must be exactly as private as the file it copies.
    """
    target = resolve_target(path)
    try:
        old = target.stat()
    except FileNotFoundError:
        old = None
    if expected is not None:
        _check_unchanged(target, expected)

    fd = -1
    tmp = target.with_name(f".{target.name}.iscsi-hookgen.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if like is not None:
            os.fchown(fd, like.st_uid, like.st_gid)
            os.fchmod(fd, like.st_mode & 0o7777)
        else:
            if old is not None:
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, old.st_mode & 0o7777 if old is not None and keep_mode else mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        if expected is not None:
            _check_unchanged(target, expected)
        os.rename(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(target.parent)


def _check_unchanged(target: Path, expected: bytes) -> None:
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current != expected:
        raise ChangedOnDiskError(f"{target} changed on disk while it was being edited")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
