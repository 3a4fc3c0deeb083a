"""Object stores behind one small interface: S3 (s3store.py) and a local directory.

A writer either commits a complete object or aborts and leaves nothing behind: S3 multipart
uploads are aborted, local files are written under a `.partial` name and renamed on commit.
Two writers of one key both succeed and the last to commit wins, as in S3.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from backstop.errors import NotFoundError, StoreError
from backstop.s3store import S3Store
from backstop.signing import Policy

READ_CHUNK = 1024 * 1024
PARTIAL = ".partial"
WRITEBACK_BYTES = 32 * 1024 * 1024  # a local object goes to disk in 32 MiB steps as it grows


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ObjectStore(Protocol):
    location: str
    signing: Policy  # how its manifests are signed and checked (catalog.save / load)

    def writer(self, key: str) -> ObjectWriter: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def reader(self, key: str) -> BinaryIO: ...
    def keys(self, prefix: str = "") -> Iterator[str]: ...


def open_store(location: str, *, signing: Policy | None = None,
               s3_client: Any = None) -> ObjectStore:
    """`s3://bucket/prefix` opens S3; anything else is a local directory. Without a
    `signing` policy, the signing key comes from the environment (signing.py)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        if not bucket:
            raise StoreError(f"store {location!r} names no bucket; use s3://bucket/prefix")
        return S3Store(bucket, prefix.strip("/"), signing=signing, client=s3_client)
    return LocalStore(Path(location), signing=signing)


class LocalStore:
    """A directory. Nothing inside it is trusted: every file and directory is opened without
    following links, new files are created exclusively under a name no one can guess (a
    planted `.partial` can neither redirect nor block a write), and a store path that other
    users may write to is refused."""

    def __init__(self, root: Path, *, signing: Policy | None = None) -> None:
        self.root = root
        self.location = str(root)
        self.signing = signing or Policy.from_env()

    def _root_fd(self, *, create: bool) -> int:
        if create:
            try:
                self.root.mkdir(mode=0o750, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot write to {self.root}: {exc.strerror}; check the "
                                 "directory's permissions and free space") from None
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise NotFoundError(f"store directory {self.root} does not exist; check --store "
                                "(or BACKSTOP_STORE)") from None
        except OSError as exc:
            raise StoreError(f"cannot open store directory {self.root}: {exc.strerror}"
                             ) from None
        for path in [self.root.resolve(), *self.root.resolve().parents]:
            _refuse_shared(path, os.stat(path))
        return fd

    def _dir_fd(self, key: str, *, create: bool) -> tuple[int, str]:
        """An open descriptor of the key's directory, reached without following a link,
        and the key's file name."""
        parts = key.split("/")
        if any(part in ("", ".", "..") or "\0" in part for part in parts):
            raise StoreError(f"key {key!r} escapes the store directory")
        fd = self._root_fd(create=create)
        try:
            for part in parts[:-1]:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o750, dir_fd=fd)
                try:
                    inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                    dir_fd=fd)
                except FileNotFoundError:
                    raise NotFoundError(f"no object {key} in {self.location}") from None
                except OSError:
                    raise StoreError(f"{part} in {key} is a link or not a directory; the "
                                     f"store {self.location} holds something Backstop did not "
                                     "write: inspect it") from None
                os.close(fd)
                fd = inner
                _refuse_shared(Path(self.location, key).parent, os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def writer(self, key: str) -> ObjectWriter:
        return _LocalWriter(self, key)

    def put(self, key: str, data: bytes) -> None:
        writer = self.writer(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def get(self, key: str) -> bytes:
        with self.reader(key) as handle:
            return handle.read()

    def reader(self, key: str) -> BinaryIO:
        fd, name = self._dir_fd(key, create=False)
        try:
            handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            raise NotFoundError(f"no object {key} in {self.location}") from None
        except OSError as exc:
            reason = "it is a link" if exc.errno == errno.ELOOP else exc.strerror
            raise StoreError(f"cannot read {key} in {self.location}: {reason}") from None
        finally:
            os.close(fd)
        return os.fdopen(handle, "rb")

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every object (and every link, which reading then refuses), never following a
        link into another directory; `.partial` files are unfinished writes."""
        if not self.root.exists():
            return  # nothing written yet (a command that needs the store says so: cli.py)
        os.close(self._root_fd(create=False))
        found = []
        for directory, subdirs, files in os.walk(self.root, followlinks=False):
            subdirs.sort()
            for name in files + [d for d in subdirs if os.path.islink(Path(directory, d))]:
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix) and not key.endswith(PARTIAL):
                    found.append(key)
        yield from sorted(found)

    def partials(self) -> Iterator[tuple[str, float]]:
        """Unfinished writes and their age in seconds (a killed backup leaves one)."""
        now = time.time()
        if not self.root.is_dir():
            return
        for directory, _, files in os.walk(self.root, followlinks=False):
            for name in files:
                if name.endswith(PARTIAL):
                    path = Path(directory, name)
                    yield (path.relative_to(self.root).as_posix(),
                           now - path.lstat().st_mtime)

    def delete(self, key: str) -> None:
        fd, name = self._dir_fd(key, create=False)
        try:
            os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)


def _refuse_shared(path: Path, info: os.stat_result) -> None:
    """A directory others may write to (and that lacks the sticky bit) lets them replace
    what Backstop writes or reads: refuse it."""
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise StoreError(f"store path {path} is writable by every user; remove that "
                         f"permission (chmod o-w {path}) or choose another directory")


class _LocalWriter:
    def __init__(self, store: LocalStore, key: str) -> None:
        self.key, self.location = key, store.location
        self.partial = f"{Path(key).name}.{secrets.token_hex(8)}{PARTIAL}"
        self.dir_fd, self.name = store._dir_fd(key, create=True)
        try:
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o640, dir_fd=self.dir_fd)
        except OSError as exc:
            os.close(self.dir_fd)
            raise StoreError(f"cannot write to {store.location}: {exc.strerror}; check the "
                             "directory's permissions and free space") from None
        self.handle = os.fdopen(fd, "wb")
        self.open = True
        self.written = self.flushed = 0

    def write(self, data: bytes) -> None:
        try:
            self.handle.write(data)
            self.written += len(data)
            if self.written - self.flushed >= WRITEBACK_BYTES:
                self._start_writeback()
        except OSError as exc:
            raise StoreError(f"cannot write {self.key} in {self.location}: {exc.strerror}"
                             ) from None

    def _start_writeback(self) -> None:
        """Have the kernel start writing what is written so far to disk, without waiting
        for it: commit's fsync then finds little left (measured on the bench: a 450 MB
        object's fsync took 0.9 s at commit, 0.1-0.2 s this way)."""
        self.handle.flush()
        # Linux starts writeback of the dirty range; a hint, never a reason to fail a write
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(self.handle.fileno(), self.flushed, self.written - self.flushed,
                             os.POSIX_FADV_DONTNEED)
        self.flushed = self.written

    def commit(self) -> None:
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.rename(self.partial, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            os.fsync(self.dir_fd)
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot finish {self.key} in {self.location}: {exc.strerror}"
                             ) from None
        self._close()

    def abort(self) -> None:
        """Never raises: it runs on failure paths (a full disk fails the close too)."""
        if not self.open:
            return
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self.partial, dir_fd=self.dir_fd)
        self._close()

    def _close(self) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(OSError):
                os.close(self.dir_fd)


class HashingReader:
    """Reads an object while counting and hashing it (sha256), to prove it is the one
    its manifest describes."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size, self.digest = raw, 0, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.size += len(data)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass

    def sha256(self) -> str:
        return self.digest.hexdigest()

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()
