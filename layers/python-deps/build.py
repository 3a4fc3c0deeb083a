"""Build the Python dependencies layer without Docker.

pip downloads manylinux wheels for the Lambda architecture and Python version and unpacks them
into ``<out>/python`` (the directory Lambda puts on ``sys.path`` for a layer). ``--only-binary``
makes a missing wheel an error instead of a local compile for the wrong platform.

    python layers/python-deps/build.py --arch arm64 --out /tmp/layer
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


def pip_command(out: Path, *, arch: str, python_version: str = "3.12") -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-compile", "--only-binary=:all:", "--implementation", "cp",
            "--platform", PLATFORMS[arch], "--python-version", python_version,
            "--target", str(out / "python"), "--requirement", str(REQUIREMENTS)]


def build(out: Path, *, arch: str, python_version: str = "3.12") -> Path:
    """Install the layer's packages under ``out/python``; return that directory."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(pip_command(out, arch=arch, python_version=python_version), check=True)
    return out / "python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), required=True)
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    build(args.out, arch=args.arch, python_version=args.python_version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
