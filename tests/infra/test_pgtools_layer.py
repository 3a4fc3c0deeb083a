"""The pgtools layer's layout: gpg finds its agent in the layer, not in its compiled-in
directory, and the build installs what PostgreSQL 17+ needs to compile.

The layer itself is built at deploy time in the AL2023 image (Docker); here the same layout
script runs with this machine's GnuPG, and GnuPG itself is asked where its parts are."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.infra.conftest import ROOT

PGTOOLS = ROOT / "layers" / "pgtools"


def _layout(tmp_path: Path) -> Path:
    layer = tmp_path / "opt"
    subprocess.run(["bash", str(PGTOOLS / "install-gpg.sh"), str(layer), str(layer)],
                   check=True, capture_output=True)
    return layer


def test_gpg_tools_look_for_each_other_in_the_layer(tmp_path: Path) -> None:
    layer = _layout(tmp_path)
    assert sorted(p.name for p in (layer / "bin").iterdir()) == [
        "gpg", "gpg-agent", "gpgconf", "gpgconf.ctl"]
    dirs = subprocess.run([str(layer / "bin" / "gpgconf"), "--list-dirs"], check=True,
                          capture_output=True, text=True).stdout
    assert f"bindir:{layer}/bin" in dirs.splitlines()
    # the agent gpg starts is the layer's, not /usr/bin's
    components = subprocess.run([str(layer / "bin" / "gpgconf"), "--list-components"],
                                check=True, capture_output=True, text=True).stdout
    agent = next(line for line in components.splitlines() if line.startswith("gpg-agent:"))
    assert agent.endswith(f"{layer}/bin/gpg-agent")


def test_the_lambda_layer_points_gpg_at_opt(tmp_path: Path) -> None:
    layer = tmp_path / "out"
    subprocess.run(["bash", str(PGTOOLS / "install-gpg.sh"), str(layer)], check=True,
                   capture_output=True)
    assert (layer / "bin" / "gpgconf.ctl").read_text() == "rootdir=/opt\n"
    build = (PGTOOLS / "build.sh").read_text()
    assert 'install-gpg.sh" "$OUT" /opt' in build


def test_build_installs_the_tools_postgresql_17_needs_to_compile() -> None:
    build = (PGTOOLS / "build.sh").read_text()
    (install,) = re.findall(r"dnf install ([^>]*)>", build.replace("\\\n", " "))
    packages = set(install.split())
    assert {"bison", "flex", "perl", "pkgconf-pkg-config", "gcc", "make"} <= packages


def test_restore_image_gets_the_whole_layer_folder() -> None:
    dockerfile = (ROOT / "containers" / "restore" / "Dockerfile").read_text()
    assert "COPY layers/pgtools/ /build/" in dockerfile
