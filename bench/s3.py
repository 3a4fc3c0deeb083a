"""S3 for the bench: a moto server on loopback, in its own process so that its CPU and memory
are not counted as Backstop's. `python -m bench.s3 PORT` is that process."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BUCKET = "bench"
# moto accepts any credentials; fixed fake ones keep real AWS credentials out of the bench.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}


def client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[tuple[str, int]]:
    """Start the server (its request log to `log`), create the bucket, yield the endpoint URL
    and the server's pid (its CPU is measured); stop the server on exit."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    with open(log, "wb") as requests:
        server = subprocess.Popen([sys.executable, "-m", "bench.s3", str(port)],
                                  stdout=requests, stderr=requests)
    try:
        _wait_for(port, server)
        endpoint = f"http://{HOST}:{port}"
        client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint, server.pid
    finally:
        server.terminate()
        server.wait()


def _wait_for(port: int, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the moto server exited at start (is moto[server] installed?)")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the moto server did not listen on {HOST}:{port} within {timeout} s")


def serve(port: int) -> None:
    warnings.filterwarnings("ignore", message=".*moto\\[server\\]")
    from moto.server import ThreadedMotoServer

    ThreadedMotoServer(ip_address=HOST, port=port, verbose=False).start()
    threading.Event().wait()  # until terminated


if __name__ == "__main__":
    serve(int(sys.argv[1]))
