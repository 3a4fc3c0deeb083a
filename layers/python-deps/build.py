"""Build the Python dependencies layer without Docker.

pip downloads manylinux wheels for the Lambda architecture and Python version and unpacks them
into ``<out>/python`` (the directory Lambda puts on ``sys.path`` for a layer). ``--only-binary``
makes a missing wheel an error instead of a local compile for the wrong platform.

The platform is ``manylinux2014_<arch>`` and, because some wheels (psycopg-binary 3.3 for
aarch64 is ``manylinux_2_28``) need a newer glibc, every ``manylinux_2_<N>_<arch>`` up to 2.34,
the glibc of Amazon Linux 2023 that the python3.12 runtime runs on. pip does not widen an
explicit ``--platform`` to older glibc versions by itself, so each one is listed.

    python layers/python-deps/build.py --arch arm64 --out /tmp/layer
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
RUNTIME_GLIBC_MINOR = 34  # Amazon Linux 2023
PLATFORMS = {arch: (f"manylinux2014_{m}", *(f"manylinux_2_{minor}_{m}"
                                          for minor in range(17, RUNTIME_GLIBC_MINOR + 1)))
             for arch, m in MACHINES.items()}


def pip_command(out: Path, *, arch: str, python_version: str = "3.12") -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-compile", "--only-binary=:all:", "--implementation", "cp",
            *(flag for p in PLATFORMS[arch] for flag in ("--platform", p)),
            "--python-version", python_version,
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
