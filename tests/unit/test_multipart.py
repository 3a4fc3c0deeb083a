"""The S3 writer's memory is bounded by its configuration, not by the object's size."""

import hashlib
import random

from backstop import store
from backstop.store import open_store


def test_a_large_object_reuses_a_bounded_set_of_part_buffers(s3, monkeypatch):
    monkeypatch.setattr("backstop.store.PART_SIZE", 1024 * 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1024)
    generator = random.Random(12)  # reproducible test data
    # chunks of uneven sizes, so that parts fill across chunk boundaries
    chunks = [generator.randbytes(generator.randrange(1, 300_000)) for _ in range(120)]
    writer = open_store("s3://backups", s3_client=s3).writer("big.bin")
    for chunk in chunks:
        writer.write(chunk)
    writer.commit()

    stored = s3.get_object(Bucket="backups", Key="big.bin")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(b"".join(chunks)).digest()
    parts = int(s3.head_object(Bucket="backups", Key="big.bin")["ETag"].strip('"').split("-")[1])
    assert parts == -(-len(stored) // (1024 * 1024)) > 10
    assert writer.allocated <= store.PARALLEL_PARTS + 1  # type: ignore[attr-defined]
