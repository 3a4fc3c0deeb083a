"""`make demo`, the main job, end to end: it must keep working at every commit."""

from __future__ import annotations

import shutil

import pytest

from backstop import demo
from tests.conftest import server_directory


@pytest.fixture
def workdir():
    path = server_directory("demo")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_demo_backs_up_verifies_and_lists(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", "set by the demo")  # restored afterwards

    assert demo.main() == 0

    out = capsys.readouterr().out
    assert "VERIFIED" in out and "tables matched   5 of 5" in out
    assert "public.document_embeddings" in out
    log = out.split("== backstop list", 1)[1]
    assert "demo" in log and "yes" in log  # the backup log shows it verified
    assert not (workdir / ".demo" / "pgdata").exists()  # the embedded server cleaned up
