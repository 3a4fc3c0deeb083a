"""The S3 store: its writer's memory is bounded by its configuration, not by the object's
size, and each upload is hashed once."""

import hashlib
import random

from backstop import s3store
from backstop.store import open_store


def test_a_large_object_reuses_a_bounded_set_of_part_buffers(s3, monkeypatch):
    monkeypatch.setattr("backstop.s3store.PART_SIZE", 1024 * 1024)
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
    assert writer.allocated <= s3store.PARALLEL_PARTS + 1  # type: ignore[attr-defined]


def test_each_upload_is_covered_by_its_signed_checksum_and_hashed_once(s3, monkeypatch):
    """Parts and puts carry their SHA-256 in a signed header (what S3 checks the body
    against, and what Object Lock buckets require); the body is not hashed again for the
    signature."""
    monkeypatch.setattr("backstop.s3store.PART_SIZE", 1024 * 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1024)
    own = open_store("s3://backups/own")  # its own client, as the command line makes it
    sent = []
    own.client.meta.events.register(
        "before-send.s3.*", lambda request, event_name, **_: sent.append((event_name, request)))
    data = random.Random(3).randbytes(2_500_000)
    writer = own.writer("big.bin")
    writer.write(data)
    writer.commit()
    own.put("small.json", b"{}")

    uploads = [request for name, request in sent if name.endswith(("UploadPart", "PutObject"))]
    assert len(uploads) == 4  # three parts, one put
    for request in uploads:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v
                   for k, v in request.headers.items()}
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert headers["x-amz-sdk-checksum-algorithm"] == "SHA256"
        assert "x-amz-checksum-sha256" in signed
    assert s3.get_object(Bucket="backups", Key="own/big.bin")["Body"].read() == data
    assert s3.get_object(Bucket="backups", Key="own/small.json")["Body"].read() == b"{}"
