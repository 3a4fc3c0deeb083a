"""`make demo`, the main job, end to end: it must keep working at every commit."""

from __future__ import annotations

from backstop import demo


def test_the_demo_backs_up_verifies_and_lists(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", "set by the demo")  # restored afterwards
    monkeypatch.setenv("BACKSTOP_SIGNING_KEY_FILE", "set by the demo")

    assert demo.main() == 0

    out = capsys.readouterr().out
    assert "VERIFIED" in out and "tables matched   5 of 5" in out
    assert "public.document_embeddings" in out
    log = out.split("== backstop list", 1)[1]
    assert "demo" in log and "yes" in log  # the backup log shows it verified
    assert not (tmp_path / ".demo" / "pgdata").exists()  # the embedded server cleaned up
