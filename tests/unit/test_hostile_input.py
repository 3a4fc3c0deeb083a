"""Hostile input without a server: URLs, store contents, health-check SQL, temp files."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from backstop import health, leftovers, processes
from backstop.connection import Connection
from backstop.errors import ConfigError, StoreError, escape, scrub
from backstop.store import LocalStore
from tests.support import procs


def test_the_scrubber_cannot_fail_and_hides_every_remembered_secret():
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert scrub(Hostile()) == "(the message could not be shown safely)"
    assert scrub("a\nb\x1b[2Jc", ["b"]) == "a ***\\x1b[2Jc"
    with pytest.raises(ConfigError) as caught:
        Connection.from_url("postgresql://u:hunter2-secret@[::1:5432/db")
    assert "hunter2-secret" not in str(caught.value) and "malformed" in str(caught.value)
    # once seen, a password is scrubbed from any later message too
    assert scrub("login failed for hunter2-secret") == "login failed for ***"


@pytest.mark.parametrize("url", [
    "postgresql://u:p%40ss-w0rd@[::1:5432/db", "postgresql://u:p%40ss-w0rd@h:notaport/db",
    "postgresql://u:p%40ss-w0rd@h/db?bogus=1", "postgresql://u:p%40ss-w0rd@h/db?port=x",
])
def test_malformed_urls_are_one_line_without_the_password(url):
    with pytest.raises(ConfigError) as caught:
        Connection.from_url(url)
    message = str(caught.value)
    assert "p@ss-w0rd" not in message and "p%40ss-w0rd" not in message and "\n" not in message


def test_libpq_parameters_in_the_url_are_honoured():
    c = Connection.from_url("postgresql://u@db.example/q?sslmode=verify-full"
                            "&sslrootcert=/etc/ca.pem&connect_timeout=3&keepalives_idle=7"
                            "&target_session_attrs=read-write")
    info = c.conninfo()
    for part in ("sslmode=verify-full", "sslrootcert=/etc/ca.pem", "connect_timeout=3",
                 "keepalives_idle=7", "target_session_attrs=read-write", "keepalives=1"):
        assert part in info


def test_default_timeouts_bound_every_connection(monkeypatch):
    monkeypatch.setenv("BACKSTOP_CONNECT_TIMEOUT", "4")
    info = Connection(host="h", dbname="d", user="u").conninfo()
    assert "connect_timeout=4" in info and "tcp_user_timeout=" in info
    monkeypatch.setenv("BACKSTOP_STALL_TIMEOUT", "soon")
    from backstop import timeouts
    with pytest.raises(ConfigError, match="BACKSTOP_STALL_TIMEOUT='soon' is not a number"):
        timeouts.seconds("BACKSTOP_STALL_TIMEOUT")


def test_supabase_transaction_pooler_is_refused_with_the_session_pooler_named():
    with pytest.raises(ConfigError, match="transaction pooler.*session pooler.*port 5432"):
        Connection.from_url("postgresql://postgres.abc@aws-0-eu-west-1.pooler.supabase.com:6543"
                            "/postgres")
    Connection.from_url("postgresql://postgres.abc@aws-0-eu-west-1.pooler.supabase.com:5432"
                        "/postgres")


def test_output_escapes_control_characters():
    assert escape("before\nafter\x1b]0;pwned\x07") == "before\\nafter\\x1b]0;pwned\\x07"


# -- the local store trusts nothing inside it

def test_a_planted_partial_link_cannot_redirect_a_write(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    store = LocalStore(tmp_path / "store")
    store.put("daily/db/x.manifest.json", b"{}")
    (tmp_path / "store/daily/db/y.dump.zst.gpg.partial").symlink_to(victim)

    store.put("daily/db/y.dump.zst.gpg", b"written")

    assert victim.read_text() == "precious"
    assert store.get("daily/db/y.dump.zst.gpg") == b"written"


def test_two_writers_of_one_key_both_finish_and_the_last_commit_wins(tmp_path):
    store = LocalStore(tmp_path / "store")
    first, second = store.writer("daily/db/x.manifest.json"), store.writer(
        "daily/db/x.manifest.json")
    first.write(b"first")
    second.write(b"second")
    first.commit()
    assert store.get("daily/db/x.manifest.json") == b"first"
    second.commit()

    assert store.get("daily/db/x.manifest.json") == b"second"
    assert list(store.partials()) == []


def test_links_in_the_store_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.manifest.json").write_text("{}")
    store = LocalStore(tmp_path / "store")
    store.put("daily/db/a.manifest.json", b"{}")
    (tmp_path / "store/daily/evil").symlink_to(outside)
    (tmp_path / "store/daily/db/b.manifest.json").symlink_to(outside / "secret.manifest.json")

    with pytest.raises(StoreError, match="is a link or not a directory"):
        store.get("daily/evil/secret.manifest.json")
    with pytest.raises(StoreError, match="it is a link"):
        store.get("daily/db/b.manifest.json")
    with pytest.raises(StoreError, match="is a link or not a directory"):
        store.put("daily/evil/new.manifest.json", b"{}")
    assert not (outside / "new.manifest.json").exists()
    assert "daily/evil/secret.manifest.json" not in list(store.keys())
    with pytest.raises(StoreError, match="escapes the store"):
        store.get("../outside/secret.manifest.json")


def test_a_store_others_can_write_to_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(StoreError, match="writable by every user; remove that permission"):
        LocalStore(shared / "store").put("daily/db/a.manifest.json", b"{}")
    shared.chmod(0o777 | stat.S_ISVTX)  # like /tmp: others cannot replace our entries
    LocalStore(shared / "store").put("daily/db/a.manifest.json", b"{}")


def test_objects_are_private_and_old_partials_are_swept(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put("daily/db/a.dump.zst.gpg", b"x")
    assert stat.S_IMODE((tmp_path / "store/daily/db/a.dump.zst.gpg").stat().st_mode) == 0o640
    old = tmp_path / "store/daily/db/b.dump.zst.gpg.partial"
    new = tmp_path / "store/daily/db/c.dump.zst.gpg.partial"
    old.write_bytes(b"left by kill -9")
    new.write_bytes(b"a backup under way")
    day_ago = time.time() - 86400 - 60
    os.utime(old, (day_ago, day_ago))

    leftovers.sweep_local(store)

    assert not old.exists() and new.exists()
    assert [k for k, _ in store.partials()] == ["daily/db/c.dump.zst.gpg.partial"]


# -- health checks are validated SQL, never a manifest's

@pytest.mark.parametrize(("query", "why"), [
    ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'", "must be a SELECT"),
    ("SELECT 1; DROP TABLE quotes", "exactly one statement"),
    ("WITH gone AS (DELETE FROM quotes RETURNING 1) SELECT count(*) FROM gone", "modifies data"),
    ("SELECT * INTO stolen FROM quotes", "SELECT INTO"),
    ("SELECT id FROM quotes FOR UPDATE", "FOR UPDATE"),
    ("SELECT set_config('role', 'postgres', false)", "calls set_config()"),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "calls pg_read_file()"),
    ("SELECT lo_export(1, '/tmp/x')", "calls lo_export()"),
    ("SELECT query_to_xml('DELETE FROM quotes', true, true, '')", "calls query_to_xml()"),
    ("SELECT dblink_exec('host=evil', 'x')", "calls dblink_exec()"),
    ("SELEC 1", "is not valid SQL"),
])
def test_health_checks_must_be_one_read_only_select(query, why):
    with pytest.raises(ConfigError, match=why):
        health.validate("check", query)


def test_ordinary_health_checks_pass():
    for query in ("SELECT max(created_at) FROM quotes",
                  "SELECT (SELECT count(*) FROM companies) || '/' || (SELECT count(*) FROM q)",
                  "WITH r AS (SELECT 1 AS v) SELECT sum(v) FROM r"):
        assert health.validate("ok", query) == query


# -- children and temporary directories

def test_children_get_only_what_they_need(monkeypatch):
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", "postgresql://u:pw@h/db")
    monkeypatch.setenv("PGPASSWORD", "pw")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws")
    env = processes.child_env()
    assert "PATH" in env
    assert not {"BACKSTOP_DATABASE_URL", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY"} & set(env)
    with Connection(host="h", dbname="d", user="u", password="pw").child_env() as pg_env:
        assert set(pg_env) - set(env) == {"PGPASSFILE"}
        assert stat.S_IMODE(Path(pg_env["PGPASSFILE"]).parent.stat().st_mode) == 0o700


def test_a_child_group_is_killed_as_a_whole():
    process = processes.popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    time.sleep(0.3)
    assert len(live_in_group(process.pid, within=0)) >= 3  # sh and its two sleeps
    processes.stop(process)
    assert live_in_group(process.pid, within=5) == []


def live_in_group(pgid: int, *, within: float) -> list[str]:
    """Processes of a group that are still running (not zombies) after up to `within` s."""
    deadline = time.monotonic() + within
    while True:
        live = [f"{p.pid} {p.args}" for p in procs.live() if p.pgid == pgid]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


def test_stale_private_directories_are_swept_with_their_agents(tmp_path):
    dead = subprocess.run(["true"], check=True)  # a pid that has exited
    stale = tmp_path / f"backstop-{2**22 + 12345}-gpg-abc"
    stale.mkdir(mode=0o700)
    (stale / "private-key").write_text("key material")
    mine = processes.make_private_dir("gpg", tmp_path)
    assert dead.returncode == 0

    removed = processes.sweep_temp_dirs([tmp_path])

    assert removed == [stale] and not stale.exists() and mine.exists()
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
