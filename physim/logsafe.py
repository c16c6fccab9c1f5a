"""Files are never destroyed: checks before a log is created, a writer lock, clean read errors.

Policy (one place for every writer — ``physim run --log``, the demo, ``physim train``, study
points):

* an existing file is overwritten only with ``force`` (the CLI's ``--force``), and never when
  it is not an HDF5 file (a device TOML given as ``--log`` is refused even with ``--force``);
* a directory is refused before anything is written;
* a second writer of the same path is refused *before it touches the file*: the writer first
  takes an exclusive ``fcntl`` lock on the sidecar ``<path>.lock`` (released by the kernel when
  the process dies, so a SIGKILL never leaves a stale lock), and only then checks and creates.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

#: the 8-byte HDF5 signature, at offset 0 or at a user-block boundary (512 · 2^k)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_SIGNATURE_OFFSETS = (0, 512, 1024, 2048, 4096)


class LogError(ValueError):
    """A log path or file that cannot be used; the message is one line naming the fix."""


def is_hdf5(path: str | Path) -> bool:
    """Whether ``path`` starts with the HDF5 signature (no HDF5 library call: never raises)."""
    try:
        with open(path, "rb") as fh:
            for off in _SIGNATURE_OFFSETS:
                fh.seek(off)
                if fh.read(8) == HDF5_SIGNATURE:
                    return True
    except OSError:
        return False
    return False


def check_readable(path: str | Path) -> Path:
    """``path`` is an existing, non-empty HDF5 file, or :class:`LogError` saying what it is."""
    path = Path(path)
    if path.is_dir():
        raise LogError(f"{path} is a directory, not a log file; give the path of an .h5 log")
    if not path.exists():
        raise LogError(f"{path} does not exist; give the path of an .h5 log")
    if path.stat().st_size == 0:
        raise LogError(f"{path} is empty (0 bytes): a writer was killed before it wrote anything")
    if not is_hdf5(path):
        raise LogError(f"{path} is not an HDF5 file (no HDF5 signature); give a physim .h5 log")
    return path


def check_writable(path: str | Path, *, force: bool = False) -> Path:
    """Refuse a path a new log must not be written to (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        raise LogError(f"log path {path} is a directory; give a file path such as {path}/run.h5")
    if path.exists():
        # a zero-byte file is what a writer killed before its first flush leaves behind
        if not is_hdf5(path) and not (force and path.stat().st_size == 0):
            raise LogError(
                f"log path {path} exists and is not an HDF5 file; physim never overwrites it "
                "(not even with --force): choose another log path"
            )
        if not force:
            raise LogError(
                f"log path {path} exists; pass --force (force=True) to overwrite it, or choose "
                "another path"
            )
    if not path.parent.exists():
        raise LogError(f"the folder of log path {path} does not exist; create {path.parent} first")
    return path


class WriterLock:
    """Exclusive lock of one log path, held for a writer's lifetime (``<path>.lock``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        folder = self.path.parent
        if not folder.is_dir():  # else the open below names the lock file, not the log
            raise LogError(
                f"{self.path}: its folder {folder} does not exist; create it first "
                f"(mkdir -p {folder}) or choose another log path"
            )
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LogError(
                    f"{self.path} is being written by another process (lock {self.lock_path} "
                    "is held); wait for it to finish or choose another log path"
                ) from None
            # the previous holder may have unlinked the lock file between our open and flock:
            # only a lock on the inode that is still at lock_path counts
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return self
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.lock_path)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
