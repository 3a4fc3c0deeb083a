"""Connections checked as docs/supabase.md tells: `sslmode=verify-full` against a CA file,
given in a URL or, in the cloud, as the certificates themselves in the database's secret. A
real server with TLS on (certificates made here) proves that psycopg and pg_dump both check
the server against that CA, and that another CA is refused before anything is stored.
Supabase's transaction pooler is refused by name, pointing at the session pooler."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from backstop import tools
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.errors import ConfigError, DumpError, SourceError
from backstop.store import open_store
from tests.conftest import KeyPair, server_directory
from tests.supabase.servers import RUN_AS, Cluster, server_bin


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                 signer: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[Cluster, Connection, str]]:
    """A server with TLS on 127.0.0.1, its certificate signed by a CA of its own; yields the
    cluster, a password login over TCP (no CA given yet) and the CA's certificate (PEM)."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = _certificate("Backstop test CA", ca_key, "Backstop test CA", ca_key, ca=True)
    served = _certificate("localhost", server_key, "Backstop test CA", ca_key, ca=False)
    root = server_directory("tls")
    with socket.socket() as probe:  # a free port: other servers on this machine use sockets
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    certs = root / "certs"
    certs.mkdir()
    (certs / "server.crt").write_text(_pem(served))
    (certs / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    if os.geteuid() == 0:  # the server runs as its own user and reads its key only if private
        entry = pwd.getpwnam(RUN_AS)
        for path in (certs, *certs.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    (certs / "server.key").chmod(0o600)
    cluster = Cluster(root / "cluster", server_bin(17), superuser="postgres", port=port,
                      settings={"ssl": "on", "ssl_cert_file": str(certs / "server.crt"),
                                "ssl_key_file": str(certs / "server.key"),
                                "listen_addresses": "127.0.0.1"})
    try:
        with open(cluster.data / "pg_hba.conf", "a") as hba:
            hba.write("hostssl all all 127.0.0.1/32 scram-sha-256\n")
        with cluster.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("CREATE ROLE app")
            conn.execute("CREATE TABLE public.quotes (id int PRIMARY KEY, total numeric)")
            conn.execute("INSERT INTO public.quotes SELECT i, i * 1.5 FROM "
                         "generate_series(1, 50) i")
            conn.execute("ALTER TABLE public.quotes OWNER TO app")
        local = cluster.login("app", "postgres")
        yield cluster, Connection(host="localhost", port=port, dbname="postgres", user="app",
                                  password=local.password, sslmode="verify-full"), _pem(ca)
    finally:
        cluster.stop()


@pytest.fixture
def pg_dump_with_tls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client tools of the 17 wheel, built with TLS as the Lambda layer's are (the embedded
    18 wheel's are not), named the way the Lambda names its own: BACKSTOP_PG_BIN."""
    monkeypatch.setenv("BACKSTOP_PG_BIN", str(server_bin(17)))
    tools.pg_tool.cache_clear()
    tools.tool_version.cache_clear()
    yield
    tools.pg_tool.cache_clear()
    tools.tool_version.cache_clear()


def _backup(connection: Connection, directory: Path, keys: KeyPair) -> int:
    made = run_backup(BackupRequest("tls"), connection=connection,
                      store=open_store(str(directory)), recipient_keys=[keys.public])
    return sum(t.rows for t in made.tables)


@pytest.mark.usefixtures("pg_dump_with_tls")
def test_verify_full_with_the_ca_file_in_the_url(
        tls_server: tuple[Cluster, Connection, str], tmp_path: Path, gpg_keys: KeyPair) -> None:
    _, server, ca = tls_server
    (tmp_path / "ca.pem").write_text(ca)
    url = (f"postgresql://app@localhost:{server.port}/postgres?sslmode=verify-full"
           f"&sslrootcert={tmp_path / 'ca.pem'}")
    connection = dataclasses.replace(Connection.from_url(url), password=server.password)

    with connection.connect() as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)
    assert _backup(connection, tmp_path / "backups", gpg_keys) == 50  # pg_dump verified too


@pytest.mark.usefixtures("pg_dump_with_tls")
def test_another_ca_is_refused_and_nothing_is_stored(
        tls_server: tuple[Cluster, Connection, str], tmp_path: Path, gpg_keys: KeyPair) -> None:
    _, server, _ = tls_server
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.pem").write_text(_pem(_certificate("Other CA", key, "Other CA", key,
                                                          ca=True)))
    connection = dataclasses.replace(server, sslrootcert=str(tmp_path / "other.pem"))

    with pytest.raises(SourceError, match="certificate verify failed"):
        _backup(connection, tmp_path / "backups", gpg_keys)
    assert not list((tmp_path / "backups").rglob("*.gpg"))


@pytest.mark.usefixtures("pg_dump_with_tls")
@mock_aws
def test_the_ca_in_a_database_secret(tls_server: tuple[Cluster, Connection, str],
                                     tmp_path: Path, gpg_keys: KeyPair) -> None:
    """A function has no CA file: the secret holds the certificates, as deploy.md says."""
    _, server, ca = tls_server
    client = boto3.client("secretsmanager", region_name="eu-central-1")
    client.create_secret(Name="backstop/tls", SecretString=json.dumps({
        "host": "localhost", "port": server.port, "username": "app",
        "password": server.password, "dbname": "postgres", "sslmode": "verify-full",
        "sslrootcert": ca}))

    connection = Connection.from_secret("backstop/tls", client=client)

    assert connection.sslrootcert and Path(connection.sslrootcert).read_text() == ca
    assert _backup(connection, tmp_path / "backups", gpg_keys) == 50
    client.put_secret_value(SecretId="backstop/tls", SecretString=json.dumps({
        "host": "localhost", "username": "app", "password": "x", "sslrootcert": "not a cert"}))
    with pytest.raises(ConfigError, match="sslrootcert is not PEM"):
        Connection.from_secret("backstop/tls", client=client)


def test_a_pg_dump_without_tls_is_named_as_the_cause(
        tls_server: tuple[Cluster, Connection, str], tmp_path: Path, gpg_keys: KeyPair) -> None:
    """The embedded 18 wheel's pg_dump has no TLS: its own error is the one reported, not the
    cancel of the row counts that its failure causes."""
    _, server, ca = tls_server
    (tmp_path / "ca.pem").write_text(ca)
    connection = dataclasses.replace(server, sslrootcert=str(tmp_path / "ca.pem"))

    with pytest.raises(DumpError, match="SSL support is not compiled in"):
        _backup(connection, tmp_path / "backups", gpg_keys)


@pytest.mark.parametrize("url", [
    "postgresql://postgres.abcdefghijklmnop@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
    "postgresql://postgres.abcdefghijklmnop@aws-1-us-east-1.pooler.supabase.com:6543/postgres"
    "?sslmode=require"])
def test_the_transaction_pooler_is_refused_naming_the_session_pooler(url: str) -> None:
    with pytest.raises(ConfigError, match="transaction pooler.*use the session pooler: the same "
                                          "host on port 5432"):
        Connection.from_url(url)
    session = Connection.from_url(url.replace(":6543", ":5432"))
    assert session.port == 5432


def test_the_ca_files_a_secret_needed_go_with_the_process(
        tls_server: tuple[Cluster, Connection, str]) -> None:
    _, _, ca = tls_server
    made = subprocess.run(
        [sys.executable, "-c", "import sys; from backstop import connection; "
         "print(connection._ca_file(sys.stdin.read()))"],
        input=ca, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": "functions"}).stdout.strip()

    assert made.endswith(".pem") and not Path(made).parent.exists()
