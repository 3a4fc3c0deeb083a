"""The fault suite: the real `backstop` command, a real PostgreSQL, real gpg, S3 through a
moto server process, hurt the way a bad night or an attacker would. Every test asserts the
same invariants (support.assert_held): exit code, one error line, no secret in any output or
left on disk, no DONE manifest for a bad backup, earlier backups untouched, no process or
scratch database left behind."""

from __future__ import annotations

import contextlib
import json
import signal
import stat
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from tests.faults.support import (
    Result,
    StoreState,
    assert_held,
    leftover_processes,
    moto_server,
    orphans,
    running,
    silent_listener,
)

SLOW_CHECK = "slow=SELECT count(*) FROM generate_series(1, 40000000)"

# One worker runs the fault suite: its commands sweep what killed commands left, and
# another fault test's kill must not be swept before it is looked at.
pytestmark = pytest.mark.xdist_group("faults")


def scratch_databases(pg) -> list[str]:
    with pg.server.admin() as conn:
        return [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'backstop\\_verify\\_%'")]


# -- kill at each phase, SIGTERM and SIGINT

@pytest.mark.parametrize(("sig", "code", "says"), [
    (signal.SIGKILL, -9, None),
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
    (signal.SIGINT, 130, "interrupted"),
])
def test_a_backup_stopped_while_dumping(setup, pg, sig, code, says, tmp_path):
    cli, store, db = setup
    before = StoreState.of(store)
    temp = tmp_path / "tmp"  # its own TMPDIR: nothing may stay there, private dir or not
    temp.mkdir()
    result = cli.hurt(["backup", "--database", "quotepro", "--check", SLOW_CHECK],
                      running("pg_dump"), sig, TMPDIR=str(temp))
    if says is None:  # SIGKILL runs no cleanup: the next run must
        assert result.code == code and result.err == ""
        follow = cli.run("backup", "--database", "quotepro", "--quiet", TMPDIR=str(temp))
        assert follow.code == 0, follow.err
        assert orphans() == []
        assert leftover_processes(db.dbname) == []
        assert list(temp.iterdir()) == []
        return
    assert_held(result, code=code, says=says, secrets=cli.secrets, store=store, before=before,
                marker=db.dbname)
    assert not [p for p in store.rglob("*.partial")]
    assert list(temp.iterdir()) == []


def test_verify_killed_while_decrypting_leaves_nothing_the_next_run_keeps(setup, pg):
    cli, _, _ = setup
    result = cli.hurt(["verify", "latest", "--database", "quotepro"], running("--decrypt"),
                      signal.SIGKILL)
    assert result.code == -9
    # The killed run could not stop the agent serving its keyring (looked at first: any
    # Backstop command started elsewhere on this machine now would sweep it) ...
    assert [o for o in orphans(within=0) if "gpg-agent" in o]
    assert scratch_databases(pg)  # ... nor drop its scratch database
    follow = cli.run("verify", "latest", "--database", "quotepro")
    assert follow.code == 0, follow.err
    assert scratch_databases(pg) == []  # ... the next one did all of it, and its own
    assert orphans() == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_verify_stopped_while_restoring_or_checking(setup, pg, sig):
    cli, store, _ = setup
    cli.run("backup", "--database", "quotepro", "--quiet", "--check", SLOW_CHECK)
    before = StoreState.of(store)
    result = cli.hurt(["verify", "latest", "--database", "quotepro", "--check", SLOW_CHECK],
                      running("pg_restore"), sig)
    assert leftover_processes("pg_restore") == []
    if sig == signal.SIGTERM:
        assert_held(result, code=143, says="stopped by SIGTERM", secrets=cli.secrets,
                    store=store, before=before)
        assert scratch_databases(pg) == []
    follow = cli.run("verify", "latest", "--database", "quotepro", "--check", SLOW_CHECK)
    assert follow.code == 0, follow.err
    assert scratch_databases(pg) == []


# -- the database: stalled, dead, dying

def test_a_database_that_accepts_and_never_answers(setup):
    cli, store, _ = setup
    before = StoreState.of(store)
    with silent_listener() as port:
        result = cli.call("backup", "--database", "quotepro",
                         BACKSTOP_DATABASE_URL=f"postgresql://u:s3cret-pw@127.0.0.1:{port}/db",
                         BACKSTOP_CONNECT_TIMEOUT="2")
    assert result.seconds < 30
    assert_held(result, code=3, says="cannot connect to database db on 127.0.0.1",
                secrets=["s3cret-pw"], store=store, before=before)


def test_a_dead_database(setup):
    cli, store, _ = setup
    before = StoreState.of(store)
    with silent_listener() as port:
        pass  # closed: nothing listens there now
    result = cli.call("backup", "--database", "quotepro",
                     BACKSTOP_DATABASE_URL=f"postgresql://u:s3cret-pw@127.0.0.1:{port}/db")
    assert_held(result, code=3, says="cannot connect", secrets=["s3cret-pw"], store=store,
                before=before)


def test_a_database_that_dies_mid_backup(setup, pg):
    cli, store, db = setup
    before = StoreState.of(store)

    def dump_running_then_kill_backends(pid: int) -> bool:
        if not running("pg_dump")(pid):
            return False
        with pg.server.admin() as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s", [db.dbname])
        return True

    process = cli.start("backup", "--database", "quotepro", "--check", SLOW_CHECK)
    deadline = time.monotonic() + 60
    while not dump_running_then_kill_backends(process.pid):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    out, err = process.communicate(timeout=60)
    assert_held(Result(process.returncode, out, err, 0), code=(3, 4), says=db.dbname,
                secrets=cli.secrets, store=store, before=before, marker=db.dbname)


# -- the object store: stalled, dead

@pytest.fixture
def s3_endpoint():
    with moto_server() as (server, endpoint):
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket="backups")
        yield server, endpoint


def s3_objects(endpoint: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return [o["Key"] for o in client.list_objects_v2(Bucket="backups").get("Contents", [])]


def test_an_object_store_that_stalls_mid_upload(setup, s3_endpoint, monkeypatch):
    cli, _, db = setup
    server, endpoint = s3_endpoint

    def stall(pid: int) -> bool:
        if running("pg_dump")(pid):
            server.send_signal(signal.SIGSTOP)
            return True
        return False

    process = cli.start("backup", "--database", "quotepro", "--store", "s3://backups/prod",
                        AWS_ENDPOINT_URL=endpoint, BACKSTOP_S3_TIMEOUT="2",
                        BACKSTOP_STALL_TIMEOUT="3")
    deadline = time.monotonic() + 60
    while not stall(process.pid):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    started = time.monotonic()
    out, err = process.communicate(timeout=120)
    server.send_signal(signal.SIGCONT)
    result = Result(process.returncode, out, err, time.monotonic() - started)
    assert result.seconds < 90
    assert_held(result, code=6, says="s3://backups", secrets=cli.secrets, marker=db.dbname)
    assert not [k for k in s3_objects(endpoint) if k.endswith(".dump.zst.gpg")]


def test_an_object_store_that_is_gone(setup, s3_endpoint):
    cli, _, _ = setup
    server, endpoint = s3_endpoint
    server.kill()
    server.wait()
    result = cli.run("backup", "--database", "quotepro", "--store", "s3://backups/prod",
                     AWS_ENDPOINT_URL=endpoint, BACKSTOP_S3_TIMEOUT="2")
    assert_held(result, code=6, says="s3://backups", secrets=cli.secrets)


# -- a full disk, for real: a small tmpfs

@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs file systems (real ones: the kernel says ENOSPC), root only."""
    mounted = []

    def mount(size_bytes: int) -> Path:
        point = tmp_path / f"small{len(mounted)}"
        point.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700",
                               "tmpfs", str(point)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs(512 * 1024)


def test_a_store_that_fills_up(setup, small_disk):
    cli, _, db = setup
    result = cli.run("backup", "--database", "quotepro", "--store", str(small_disk / "store"))
    assert_held(result, code=6, says="No space left on device", secrets=cli.secrets,
                marker=db.dbname)
    assert not list((small_disk / "store").rglob("*.partial"))
    assert not [p for p in (small_disk / "store").rglob("*.manifest.json")
                if json.loads(p.read_text())["status"] == "DONE"]


def test_restore_staging_that_fills_up(setup, pg, tmpfs):
    cli, store, _ = setup
    (manifest,) = [json.loads(p.read_text()) for p in store.rglob("*.manifest.json")]
    # room enough for Backstop to choose staging (1.1x the plain dump), then filled under it
    disk = tmpfs(int(manifest["dump"]["plain_size"] * 1.2) + 2**20)
    before = StoreState.of(store)

    modes = []

    def fill_when_staging(pid: int) -> bool:
        staged = list(disk.glob("backstop-*-restore-*/*.dump"))
        if not staged:
            return False
        modes.append(stat.S_IMODE(staged[0].stat().st_mode))  # the plain dump: owner only
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
            while True:  # a disk already full fails the open itself: full is the aim
                filler.write(b"\0" * 65536)
        return True

    process = cli.start("verify", "latest", "--database", "quotepro", TMPDIR=str(disk))
    deadline = time.monotonic() + 120
    while not fill_when_staging(process.pid):
        assert time.monotonic() < deadline and process.poll() is None, process.poll()
        time.sleep(0.005)
    out, err = process.communicate(timeout=120)
    result = Result(process.returncode, out, err, 0)
    assert_held(result, code=6, says="cannot stage backup", secrets=cli.secrets, store=store,
                before=before)
    assert not list(disk.glob("backstop-*"))  # the staged part of the dump is gone
    assert modes == [0o600]
    assert scratch_databases(pg) == []


def test_a_missing_store_is_named(setup, tmp_path):
    cli, _, _ = setup
    result = cli.call("list", "--store", str(tmp_path / "no-such-store"))
    assert_held(result, code=7, says="does not exist", secrets=cli.secrets)


# -- hostile store contents

def manifests(store: Path) -> list[Path]:
    return sorted(store.rglob("*.manifest.json"))


def test_an_altered_manifest_is_refused_and_its_sql_never_runs(setup, tmp_path):
    cli, store, _ = setup
    (path,) = manifests(store)
    data = json.loads(path.read_text())
    pwned = tmp_path / "pwned"
    data["health"] = {"x": {"query": f"COPY (SELECT 1) TO PROGRAM 'touch {pwned}'",
                            "value": "1"}}
    path.write_text(json.dumps(data))
    before = StoreState.of(store)

    result = cli.call("verify", "latest", "--database", "quotepro")
    assert_held(result, code=7, says="no DONE", secrets=cli.secrets,
                store=store, before=before)
    assert "does not match its signature" in result.err  # the warning names it

    data.pop("signature")
    path.write_text(json.dumps(data))
    trusted = cli.call("verify", "latest", "--database", "quotepro", "--trust-unsigned")
    assert trusted.code == 0, trusted.err
    assert not pwned.exists()  # recorded SQL is data, never run


def test_truncated_and_linked_manifests_are_skipped_by_name(setup, tmp_path):
    cli, store, _ = setup
    assert cli.call("backup", "--database", "quotepro", "--quiet").code == 0
    older, newer = manifests(store)
    newer.write_bytes(newer.read_bytes()[:100])
    outside = tmp_path / "elsewhere.json"
    outside.write_text(older.read_text())
    (older.parent / "20990101T000000Z-abcdef.manifest.json").symlink_to(outside)

    listing = cli.call("list", "--json")
    assert listing.code == 0
    assert [e["file"] for e in json.loads(listing.out)] == [
        older.name.replace(".manifest.json", ".dump.zst.gpg")]
    assert newer.name in listing.err and "20990101T000000Z-abcdef" in listing.err
    verify = cli.call("verify", "latest", "--database", "quotepro")
    assert verify.code == 0 and older.name.split(".")[0] in verify.out


def test_a_missing_or_damaged_object(setup):
    cli, store, _ = setup
    (path,) = manifests(store)
    obj = path.with_name(path.name.replace(".manifest.json", ".dump.zst.gpg"))
    backup_id = path.name.split(".")[0]
    obj.write_bytes(obj.read_bytes()[:-10])
    before = StoreState.of(store)
    result = cli.call("verify", backup_id)
    assert_held(result, code=8, says="does not match its manifest", secrets=cli.secrets,
                store=store, before=before)
    obj.unlink()
    result = cli.call("restore", backup_id, "--target-url", "postgresql://x@127.0.0.1:1/x")
    assert_held(result, code=(7, 3), says="", secrets=cli.secrets)


def test_a_planted_partial_link_does_not_overwrite_its_target(setup, tmp_path):
    cli, store, _ = setup
    victim = tmp_path / "victim"
    victim.write_text("precious")
    day = next(store.rglob("*.manifest.json")).parent
    for name in ("20990101T000000Z-000000.dump.zst.gpg.partial",):
        (day / name).symlink_to(victim)
    assert cli.call("backup", "--database", "quotepro", "--quiet").code == 0
    assert victim.read_text() == "precious"


# -- hostile input

def test_hostile_input_gets_one_line(setup, tmp_path, gpg_keys):
    cli, store, _ = setup
    before = StoreState.of(store)
    garbage = tmp_path / "garbage.asc"
    garbage.write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\nnot a key\n")
    binary = tmp_path / "binary.key"
    binary.write_bytes(bytes(range(256)))
    public_as_private = tmp_path / "pub.asc"
    public_as_private.write_text(gpg_keys.public)
    private_as_recipient = tmp_path / "priv.asc"
    private_as_recipient.write_text(gpg_keys.private)
    cases = [
        (["backup", "--reason", "x" * 500], 2, "keep it to 200"),
        (["backup", "--check", "c=COPY (SELECT 1) TO PROGRAM 'id'"], 2, "must be a SELECT"),
        (["backup", "--check", "c=SELECT pg_read_file('/etc/passwd')"], 2, "pg_read_file"),
        (["backup", "--recipient-key", str(private_as_recipient)], 5, "is a private key"),
        (["backup", "--recipient-key", str(binary)], 2, "is not text"),
        (["backup", "--retention", "forever"], 2, "invalid choice"),
        (["verify", "latest", "--database", "quotepro", "--private-key", str(garbage)], 5,
         "export-secret-keys"),
        (["verify", "latest", "--database", "quotepro", "--private-key",
          str(public_as_private)], 5, "holds only a public key"),
        (["restore", "latest", "--database", "quotepro", "--target-url",
          "postgresql://u:pw-in-argv@h/db"], 2, "holds a password"),
        (["show", "../../etc/passwd"], 7, "no backup"),
    ]
    for args, code, says in cases:
        assert_held(cli.call(*args), code=code, says=says, secrets=[*cli.secrets, "pw-in-argv"],
                    store=store, before=before)
    for url in ("postgresql://u:hunter2-pw@[::1:5432/db", "postgresql://u:hunter2-pw@h/db?x=1",
                "postgresql://u:hunter2-pw@aws-0-x.pooler.supabase.com:6543/postgres"):
        assert_held(cli.call("backup", BACKSTOP_DATABASE_URL=url), code=2, says="",
                    secrets=["hunter2-pw"], store=store, before=before)


def test_escapes_in_a_reason_reach_no_terminal(setup):
    cli, _, _ = setup
    reason = "line one\nbackstop: error: forged\x1b[2J\x1b]0;title\x07"
    assert cli.call("backup", "--database", "quotepro", "--quiet", "--reason", reason).code == 0
    listing = cli.call("list")
    assert "\x1b" not in listing.out and "forged" in listing.out
    assert not any(line.startswith("backstop: error") for line in listing.out.splitlines())
