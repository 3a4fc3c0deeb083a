"""Object stores behind one small interface: S3 and a local directory.

A writer either commits a complete object or aborts and leaves nothing behind: S3 multipart
uploads are aborted, local files are written under a `.partial` name and renamed on commit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from backstop.errors import NotFoundError, StoreError

PART_SIZE = 16 * 1024 * 1024  # 16 MiB parts: 10,000 parts cover 160 GB
PARALLEL_PARTS = 2
READ_CHUNK = 1024 * 1024


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ObjectStore(Protocol):
    location: str

    def writer(self, key: str) -> ObjectWriter: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def reader(self, key: str) -> BinaryIO: ...
    def keys(self, prefix: str = "") -> Iterator[str]: ...


def open_store(location: str, *, s3_client: Any = None) -> ObjectStore:
    """`s3://bucket/prefix` opens S3; anything else is a local directory."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        if not bucket:
            raise StoreError(f"store {location!r} names no bucket; use s3://bucket/prefix")
        return S3Store(bucket, prefix.strip("/"), client=s3_client)
    return LocalStore(Path(location))


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"key {key!r} escapes the store directory")
        return path

    def writer(self, key: str) -> ObjectWriter:
        return _LocalWriter(self._path(key))

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
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"no object {key} in {self.location}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {key} in {self.location}: {exc.strerror}") from None

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.endswith(".partial"):
                yield key


class _LocalWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.partial, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise StoreError(
                f"cannot write to {path.parent}: {exc.strerror}; check the directory's "
                "permissions and free space"
            ) from None

    def write(self, data: bytes) -> None:
        try:
            self.handle.write(data)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc.strerror}") from None

    def commit(self) -> None:
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot finish {self.path}: {exc.strerror}") from None

    def abort(self) -> None:
        self.handle.close()
        self.partial.unlink(missing_ok=True)


class S3Store:
    def __init__(self, bucket: str, prefix: str, *, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix
        self.location = f"s3://{bucket}/{prefix}".rstrip("/")
        self.client = client or boto3.client("s3")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def writer(self, key: str) -> ObjectWriter:
        return _MultipartWriter(self.client, self.bucket, self._key(key))

    def put(self, key: str, data: bytes) -> None:
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
            )
        except Exception as exc:
            raise StoreError(f"cannot write {self._key(key)} to s3://{self.bucket}: "
                             f"{_s3_reason(exc)}") from None

    def get(self, key: str) -> bytes:
        with self.reader(key) as body:
            return body.read()

    def reader(self, key: str) -> BinaryIO:
        try:
            body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return body
        except self.client.exceptions.NoSuchKey:
            raise NotFoundError(f"no object {self._key(key)} in s3://{self.bucket}") from None
        except Exception as exc:
            raise StoreError(f"cannot read {self._key(key)} from s3://{self.bucket}: "
                             f"{_s3_reason(exc)}") from None

    def keys(self, prefix: str = "") -> Iterator[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][strip:]
        except Exception as exc:
            raise StoreError(f"cannot list s3://{self.bucket}/{self._key(prefix)}: "
                             f"{_s3_reason(exc)}") from None


class _MultipartWriter:
    """Streams parts to S3 while the next part fills; at most PARALLEL_PARTS in flight."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        try:
            self.upload_id = client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
        except Exception as exc:
            raise StoreError(f"cannot start upload of {key} to s3://{bucket}: "
                             f"{_s3_reason(exc)}; check the bucket name and write permission"
                             ) from None
        self.part_size = PART_SIZE
        self.buffer, self.filled = bytearray(self.part_size), 0
        self.spare: list[bytearray] = []  # buffers of finished parts, reused
        self.allocated = 1  # buffers made so far: at most PARALLEL_PARTS + 1
        self.parts: list[Future[dict[str, Any]]] = []
        self.slots = threading.BoundedSemaphore(PARALLEL_PARTS)
        self.pool = ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="s3-part")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            taken = view[:self.part_size - self.filled]
            self.buffer[self.filled:self.filled + len(taken)] = taken
            self.filled += len(taken)
            view = view[len(taken):]
            if self.filled == self.part_size:
                self._send()

    def _send(self) -> None:
        """Upload the filled buffer. At most PARALLEL_PARTS parts are in flight, and their
        buffers are reused: the writer never holds more than PARALLEL_PARTS + 1 buffers,
        whatever the object's size."""
        for done in [p for p in self.parts if p.done()]:
            done.result()  # surface a failed part now, not at the end
        self.slots.acquire()
        full = self.filled == self.part_size
        body = self.buffer if full else self.buffer[:self.filled]  # the last part: a copy
        if full and self.spare:
            self.buffer = self.spare.pop()
        elif full:
            self.buffer = bytearray(self.part_size)
            self.allocated += 1
        self.filled = 0
        number = len(self.parts) + 1
        future = self.pool.submit(self._upload, number, body)

        def recycle(_: Future[dict[str, Any]]) -> None:
            if full:
                self.spare.append(body)
            self.slots.release()

        future.add_done_callback(recycle)
        self.parts.append(future)

    def _upload(self, number: int, body: bytearray) -> dict[str, Any]:
        checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
        try:
            response = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                Body=_BufferReader(body), ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum)
        except Exception as exc:
            raise StoreError(f"cannot upload part {number} of {self.key}: "
                             f"{_s3_reason(exc)}") from None
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}

    def commit(self) -> None:
        try:
            if self.filled or not self.parts:
                self._send()
            parts = [future.result() for future in self.parts]
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": parts})
        except BaseException as exc:
            self.abort()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot complete upload of {self.key}: {_s3_reason(exc)}") from None
        finally:
            self.pool.shutdown(wait=True)

    def abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        # If this fails too, the bucket's lifecycle rule aborts the upload after a day.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class _BufferReader(io.RawIOBase):
    """A part's buffer as a read-only, seekable file, so that it is sent without a copy
    (botocore takes bytes, bytearray or a file; not every S3 implementation takes a
    bytearray)."""

    def __init__(self, data: bytearray) -> None:
        super().__init__()
        self.view, self.position = memoryview(data), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        count = min(len(target), len(self.view) - self.position)
        target[:count] = self.view[self.position:self.position + count]
        self.position += count
        return count

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        start = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: len(self.view)}
        self.position = start[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position


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


def _s3_reason(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', type(exc).__name__)} ({error.get('Message', '')})"
    return type(exc).__name__
