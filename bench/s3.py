"""S3 for the bench: a moto server on loopback, in its own process so that its CPU and memory
are not counted as Backstop's. `python -m bench.s3 PORT CERT KEY` is that process.

It speaks HTTPS, as S3 does: botocore signs the body of every request sent over plain HTTP
(a SHA-256 of each part, on top of the part checksum Backstop already sends), and over HTTPS
it does not (the signed checksum header covers the body), so plain HTTP would charge Backstop
a hash that it never computes against S3. The certificate is a throwaway self-signed one for
127.0.0.1, made once in `.bench/tls`; Backstop trusts it through AWS_CA_BUNDLE.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BUCKET = "bench"
# moto accepts any credentials; fixed fake ones keep real AWS credentials out of the bench.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}


def client(endpoint: str, certificate: Path) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                        verify=str(certificate))


@contextlib.contextmanager
def moto_server(work: Path) -> Iterator[tuple[str, Mapping[str, str], int]]:
    """Start the server (its request log to `work`/moto.log), create the bucket; yield the
    endpoint URL, the environment that points Backstop at it, and the server's pid (its CPU
    is measured); stop the server on exit."""
    certificate, key = tls_certificate(work / "tls")
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    with open(work / "moto.log", "wb") as requests:
        server = subprocess.Popen([sys.executable, "-m", "bench.s3", str(port), str(certificate),
                                   str(key)], stdout=requests, stderr=requests)
    try:
        _wait_for(port, server)
        endpoint = f"https://{HOST}:{port}"
        client(endpoint, certificate).create_bucket(Bucket=BUCKET)
        yield endpoint, {"AWS_ENDPOINT_URL": endpoint, "AWS_CA_BUNDLE": str(certificate)}, \
            server.pid
    finally:
        server.terminate()
        server.wait()


def tls_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for HOST and its private key, made once."""
    certificate, key = directory / "server.pem", directory / "server.key"
    if certificate.is_file() and key.is_file():
        return certificate, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(private, hashes.SHA256()))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key.chmod(0o600)
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certificate, key


def _wait_for(port: int, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the moto server exited at start (is moto[server] installed?)")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the moto server did not listen on {HOST}:{port} within {timeout} s")


def serve(port: int, certificate: str, key: str) -> None:
    """moto's threaded server (as moto.server.ThreadedMotoServer makes it), over TLS."""
    warnings.filterwarnings("ignore", message=".*moto\\[server\\]")
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    make_server(HOST, port, DomainDispatcherApplication(create_backend_app), threaded=True,
                request_handler=MotoRequestHandler,
                ssl_context=(certificate, key)).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3])
