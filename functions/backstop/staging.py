"""A backup object from its store to a plain dump: proved against its manifest (size and
sha256), decrypted with the private key, and staged on local disk when it fits.

Nothing reaches a target before this succeeds. A staged dump lets pg_restore run jobs in
parallel; one that does not fit is only checked here and restored by streaming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import zstandard

from backstop import archive, processes
from backstop.crypto import Keyring
from backstop.errors import EncryptionError, IntegrityError, StoreError
from backstop.manifest import Manifest
from backstop.store import HashingReader, ObjectStore

HEADROOM = 1.1  # staged dumps need their plain size plus this margin of free space


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A backup object, checked and decrypted: staged on disk, or to be streamed."""

    path: Path | None  # the plain dump, when it fit on local disk
    manifest: Manifest
    toc: archive.Toc


@contextlib.contextmanager
def fetch(store: ObjectStore, manifest: Manifest, private_key: str,
          staging: Path | None = None) -> Iterator[Fetched]:
    """Check the object against the manifest and that it decrypts; stage the plain dump on
    disk when it fits (for parallel pg_restore), else check only and restore by streaming."""
    directory = Path(staging or tempfile.gettempdir())
    plain_size = int(manifest.dump.get("plain_size", 0))
    fits = shutil.disk_usage(directory).free > plain_size * HEADROOM
    toc = archive.Reader(find_blocks=fits)
    with processes.private_dir("restore", directory) as tmp:
        path = Path(tmp) / f"{manifest.id}.dump"
        try:
            with processes.private_file(path) if fits else open(os.devnull, "wb") as out:
                decrypt(store, manifest, private_key, out, tap=toc.feed)
        except OSError as exc:  # a full disk while staging
            raise StoreError(f"cannot stage backup {manifest.id} in {directory}: "
                             f"{exc.strerror}; free space there or restore elsewhere") from None
        if toc.toc is None:
            raise IntegrityError(f"backup {manifest.id} holds no pg_dump archive; it was not "
                                 "written by Backstop")
        if fits:  # pg_restore --jobs then starts the largest tables first, and seeks to each
            toc.place_blocks(path)
        yield Fetched(path if fits else None, manifest, toc.toc)


def check_object(store: ObjectStore, manifest: Manifest, private_key: str) -> None:
    """The integrity pre-check on its own: size, sha256 and decryption, nothing written.
    The cloud workflow runs it before paying for a scratch instance."""
    with open(os.devnull, "wb") as sink:
        decrypt(store, manifest, private_key, sink)


class _Tee:
    """A file-like sink that also shows every chunk to a tap."""

    def __init__(self, out: IO[bytes] | BinaryIO, tap: Any) -> None:
        self.out, self.tap = out, tap

    def write(self, data: bytes) -> int:
        self.tap(data)
        return self.out.write(data)


def decrypt(store: ObjectStore, manifest: Manifest, private_key: str,
            out: IO[bytes] | BinaryIO, tap: Any = None) -> None:
    """Write the object's plain dump into `out` (each chunk shown to `tap`); then prove its
    size and sha256 against the manifest, and that it decrypted."""
    hashing = HashingReader(store.reader(manifest.key))
    failure: BaseException | None = None
    with Keyring() as keyring, hashing:
        keyring.import_private(private_key)
        plain = zstandard.ZstdDecompressor().stream_writer(
            _Tee(out, tap) if tap else out, closefd=False)  # type: ignore[arg-type]
        try:
            keyring.decrypt(hashing, plain.write)
        except (EncryptionError, zstandard.ZstdError) as exc:
            failure = exc
        hashing.drain()
    if hashing.size != manifest.size or hashing.sha256() != manifest.sha256:
        raise IntegrityError(
            f"backup {manifest.id}: object {manifest.key} does not match its manifest "
            f"({hashing.size} bytes, expected {manifest.size}; sha256 "
            f"{'differs' if hashing.sha256() != manifest.sha256 else 'equal'}); it is damaged "
            "or was replaced: nothing was restored, choose another backup")
    if failure is not None:
        recipients = ", ".join(manifest.encryption.get("recipients", []))
        raise EncryptionError(f"backup {manifest.id} does not decrypt with the given private "
                              f"key ({failure}); it was encrypted to {recipients}") from None
