"""`python -m bench.component compress|decompress|sha256 IN [OUT]`: one stage of Backstop's
data path alone, on a file, so that its CPU seconds can be measured exactly (bench.measure).
It uses the library's own settings; OUT defaults to /dev/null. `-` is standard input or
output: a stage in a shell pipeline (which then prints nothing else)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
from typing import Any

from backstop import pipeline

CHUNK = 1024 * 1024


def main(stage: str, source: str, target: str = "/dev/null") -> int:
    with _open(source, "rb") as src, _open(target, "wb") as out:
        if stage == "compress":
            with pipeline.compressor().stream_writer(out, closefd=False) as writer:
                shutil.copyfileobj(src, writer, CHUNK)
        elif stage == "decompress":
            with pipeline.decompressor().stream_writer(out, closefd=False) as writer:
                shutil.copyfileobj(src, writer, CHUNK)
        elif stage == "sha256":
            digest = hashlib.sha256()
            while chunk := src.read(CHUNK):
                digest.update(chunk)
        else:
            raise SystemExit(f"unknown stage {stage!r}")
    if target != "-":
        print("{}")
    return 0


def _open(path: str, mode: str) -> Any:
    if path == "-":
        return contextlib.nullcontext(sys.stdout.buffer if "w" in mode else sys.stdin.buffer)
    return open(path, mode)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
