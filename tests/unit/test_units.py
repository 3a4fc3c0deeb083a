"""Pure logic, no network: connection parsing, secrets handling, manifests, names."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from backstop.connection import Connection
from backstop.errors import ConfigError, IntegrityError, SourceError, scrub
from backstop.manifest import DONE, Manifest, Scope, manifest_key, object_key
from backstop.tables import Catalog, Table


def test_url_parsing_with_socket_host_and_sslmode():
    c = Connection.from_url("postgresql://app:p%40ss@/quotepro?host=/run/pg&port=6432"
                            "&sslmode=require")
    assert (c.host, c.port, c.user, c.dbname, c.sslmode, c.password) == (
        "/run/pg", 6432, "app", "quotepro", "require", "p@ss")
    assert "p@ss" not in repr(c) and "p@ss" not in c.conninfo()


def test_a_bad_url_is_refused_without_echoing_the_password():
    with pytest.raises(ConfigError, match="must start with postgresql://"):
        Connection.from_url("mysql://u:secretpw@h/db")
    with pytest.raises(ConfigError) as caught:
        Connection.from_url("postgresql://u:secretpw@h/db?nonsense_option=1")
    assert "secretpw" not in str(caught.value)


def test_passfile_escapes_and_is_private():
    c = Connection(host="h", dbname="d", user="u", password="a:b\\c")
    with c.child_env() as env:
        path = env["PGPASSFILE"]
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        with open(path) as handle:
            assert handle.read() == "*:*:*:*:a\\:b\\\\c\n"
    assert not os.path.exists(path)


def test_secret_parsing(monkeypatch):
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="db", SecretString=json.dumps(
            {"host": "db.example", "port": 5432, "username": "app", "password": "pw",
             "dbname": "quotepro"}))["ARN"]
        bad = client.create_secret(Name="bad", SecretString='{"host": "x"}')["ARN"]
        c = Connection.from_secret(arn, client=client)
        assert (c.host, c.user, c.dbname, c.sslmode, c.password) == (
            "db.example", "app", "quotepro", "require", "pw")
        managed = client.create_secret(Name="rds!db-1", SecretString=json.dumps(
            {"username": "postgres", "password": "pw2"}))["ARN"]
        m = Connection.from_secret(managed, client=client, host="scratch.rds", port=5433,
                                   dbname="postgres")
        assert (m.host, m.port, m.user, m.password) == ("scratch.rds", 5433, "postgres", "pw2")
        with pytest.raises(ConfigError, match="is not RDS-style JSON"):
            Connection.from_secret(bad, client=client)
        with pytest.raises(SourceError, match="cannot read database secret nope"):
            Connection.from_secret("nope", client=client)


def test_scrub_folds_lines_and_hides_secrets():
    assert scrub("bad\n password hunter2 here", ["hunter2", None]) == "bad password *** here"


def test_scope_and_names_are_validated():
    with pytest.raises(ConfigError, match="not one of full"):
        Scope("everything")
    with pytest.raises(ConfigError, match="either tables to include or tables to exclude"):
        Scope(tables=("a",), exclude_tables=("b",))


def test_dump_patterns_quote_everything():
    assert Table("public", 'we"ird*').dump_pattern() == '"public"."we""ird*"'
    # a filter file's quotes read a backslash as an escape and drop carriage returns
    assert Table("a\\b", "new\nline").dump_pattern() == '"a\\\\b"."new\\nline"'
    with pytest.raises(ConfigError, match="carriage return"):
        Table("public", "cr\rname").dump_pattern()


def test_resolving_table_names():
    catalog = Catalog([Table("public", "quotes"), Table("audit", "quotes"),
                       Table("public", "items"), Table("odd", "We.ird")], {})
    assert catalog.resolve(["items", "audit.quotes", 'odd."We.ird"'], where="db") == [
        Table("public", "items"), Table("audit", "quotes"), Table("odd", "We.ird")]
    with pytest.raises(ConfigError, match="ambiguous"):
        catalog.resolve(["quotes"], where="db")
    with pytest.raises(ConfigError, match="'nope' is not in db"):
        catalog.resolve(["nope"], where="db")
    with pytest.raises(ConfigError):  # a schema is never ignored
        catalog.resolve(["other.items"], where="db")


def test_a_partitioned_table_selects_its_partitions_and_a_parent_only_itself():
    leaves = [Table("public", "events_2024"), Table("public", "events_2025_q1"),
              Table("public", "parent"), Table("public", "child")]
    partitions = {Table("public", "events_2024"): Table("public", "events"),
                  Table("public", "events_2025"): Table("public", "events"),
                  Table("public", "events_2025_q1"): Table("public", "events_2025")}
    catalog = Catalog(leaves, partitions)
    assert catalog.resolve(["events"], where="db") == [Table("public", "events_2024"),
                                                       Table("public", "events_2025_q1")]
    assert catalog.resolve(["parent"], where="db") == [Table("public", "parent")]


def test_keys_follow_the_retention_layout():
    key = object_key("weekly", "quotepro", datetime(2026, 3, 1, tzinfo=UTC), "ID")
    assert key == "weekly/quotepro/2026/03/01/ID.dump.zst.gpg"
    assert manifest_key(key) == "weekly/quotepro/2026/03/01/ID.manifest.json"


def test_manifests_round_trip_and_reject_what_they_cannot_read():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    m = Manifest(id="ID", database="db", retention="daily", reason="r", scope=Scope(),
                 status=DONE, started_at=now, finished_at=now, key="k")
    assert Manifest.from_json(m.to_json(), key="k") == m
    with pytest.raises(IntegrityError, match="schema version 99"):
        Manifest.from_json(json.dumps({**m.to_dict(), "schema_version": 99}).encode(), key="k")
    with pytest.raises(IntegrityError, match="manifest k is unreadable"):
        Manifest.from_json(b"{not json", key="k")


def test_a_local_object_larger_than_a_writeback_step_reads_back_whole(tmp_path):
    from backstop.store import WRITEBACK_BYTES, LocalStore

    store = LocalStore(tmp_path)
    chunks = [os.urandom(1024 * 1024) for _ in range(WRITEBACK_BYTES // 1024 ** 2 * 2 + 3)]
    writer = store.writer("daily/db/x.dump.zst.gpg")
    for chunk in chunks:
        writer.write(chunk)
    writer.commit()
    with store.reader("daily/db/x.dump.zst.gpg") as read:
        assert read.read() == b"".join(chunks)
