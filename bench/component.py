"""`python -m bench.component compress|decompress|sha256 IN [OUT]`: one stage of Backstop's
data path alone, on a file, so that its CPU seconds can be measured exactly (bench.measure).
It uses the library's own settings; OUT defaults to /dev/null."""

from __future__ import annotations

import hashlib
import shutil
import sys

from backstop import pipeline

CHUNK = 1024 * 1024


def main(stage: str, source: str, target: str = "/dev/null") -> int:
    with open(source, "rb") as src, open(target, "wb") as out:
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
    print("{}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
