"""The Python dependencies layer: pinned like the project, and a build that really imports."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "layers" / "python-deps" / "build.py"
LAYER_REQUIREMENTS = ROOT / "layers" / "python-deps" / "requirements.txt"
# import name, and a check that the compiled part loaded (not just the pure-Python shell)
IMPORTS = ("import psycopg, zstandard, gnupg, boto3, aws_xray_sdk; "
           "from aws_lambda_powertools import Logger, Metrics, Tracer; "
           "assert psycopg.pq.__impl__ == 'binary', psycopg.pq.__impl__; "
           "zstandard.ZstdCompressor().compress(b'x'); print('ok')")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]+\])?==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def test_layer_pins_match_the_project_pins() -> None:
    project, layer = _pins(ROOT / "requirements.txt"), _pins(LAYER_REQUIREMENTS)
    runtime = set(project) - {"aws-cdk-lib", "constructs", "cdk-nag"}  # synth-time only
    assert runtime <= set(layer), runtime - set(layer)
    assert {name: layer[name] for name in runtime} == {name: project[name] for name in runtime}
    assert layer["psycopg-binary"] == project["psycopg"]


def _online() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


needs_index = pytest.mark.skipif(not _online(), reason="the package index is not reachable")


def _build(out: Path, arch: str, python_version: str) -> Path:
    subprocess.run([sys.executable, str(BUILD), "--arch", arch, "--python-version",
                    python_version, "--out", str(out)], check=True, timeout=300)
    return out / "python"


@pytest.mark.network
@needs_index
def test_build_for_this_machine_produces_importable_packages(tmp_path: Path) -> None:
    # Same build as the Lambda one, aimed at this interpreter so the result can be imported.
    arch = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[_machine()]
    layer = _build(tmp_path, arch, f"{sys.version_info.major}.{sys.version_info.minor}")
    result = subprocess.run([sys.executable, "-I", "-S", "-c",
                             f"import sys; sys.path.insert(0, {str(layer)!r}); {IMPORTS}"],
                            capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.network
@needs_index
def test_lambda_build_holds_arm64_cpython_312_binaries(tmp_path: Path) -> None:
    layer = _build(tmp_path, "arm64", "3.12")
    binaries = [p.name for p in layer.rglob("*.so")]
    assert any("cpython-312-aarch64-linux-gnu" in name for name in binaries), binaries
    assert not any("x86_64" in name for name in binaries)
    assert (layer / "psycopg_binary").is_dir() and (layer / "aws_lambda_powertools").is_dir()


def _machine() -> str:
    import platform

    return platform.machine()


@pytest.mark.network
@needs_index
def test_cdk_runs_the_local_pip_bundling_instead_of_docker(tmp_path: Path) -> None:
    # The layer as CDK builds it at deploy time: bundling on, the local (no Docker) path.
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from infra.functions import PYTHON_DEPS_DIR, _PipPlatformBundling

    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = cdk.Stack(app, "LayerOnly")
    lambda_.LayerVersion(stack, "Deps", code=lambda_.Code.from_asset(
        str(PYTHON_DEPS_DIR), bundling=cdk.BundlingOptions(
            image=cdk.DockerImage.from_registry("docker-must-not-be-used"),
            local=_PipPlatformBundling("arm64"), command=["false"])))
    app.synth()
    staged = [p for p in (tmp_path / "out").glob("asset.*") if p.is_dir()]
    assert len(staged) == 1
    assert (staged[0] / "python" / "psycopg" / "__init__.py").is_file()
