"""How to reach a database: from a PostgreSQL URL or an RDS-style Secrets Manager secret.

The password stays inside this object (hidden from repr) and leaves it only through
`connect()` (a psycopg keyword) or `child_env()` (a private passfile for pg_dump/pg_restore).

`sslrootcert` is the file of the CA certificates that `sslmode=verify-full` checks the server
against (Supabase's CA, RDS's bundle). A secret holds the certificates themselves (a function
has no files of its own): they are written to a file named by their digest.

Supabase's transaction pooler (port 6543 of its pooler host) is refused: it gives each
transaction any server connection, so pg_dump's session settings and the exported snapshot a
backup reads do not hold there. The session pooler (port 5432) keeps one server connection per
client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backstop.errors import ConfigError, SourceError, scrub

SUPABASE_POOLER = ".pooler.supabase.com"
TRANSACTION_POOLER_PORT = 6543
SESSION = {"DateStyle": "ISO", "IntervalStyle": "postgres", "TimeZone": "UTC",
           "extra_float_digits": "1", "bytea_output": "hex", "client_encoding": "UTF8",
           "lc_monetary": "C", "xmlbinary": "base64", "xmloption": "content"}


@dataclasses.dataclass(frozen=True)
class Connection:
    host: str
    dbname: str
    user: str
    port: int = 5432
    sslmode: str = "prefer"
    password: str | None = dataclasses.field(default=None, repr=False)
    sslrootcert: str | None = None  # a file of CA certificates (sslmode verify-ca/-full)

    def __post_init__(self) -> None:
        if self.port == TRANSACTION_POOLER_PORT and self.host.endswith(SUPABASE_POOLER):
            raise ConfigError(
                f"{self.host}:{self.port} is Supabase's transaction pooler, which cannot hold "
                "a dump's session and snapshot; use the session pooler: the same host on "
                "port 5432 (docs/supabase.md)")

    @classmethod
    def from_url(cls, url: str) -> Connection:
        """Parse `postgresql://user:password@host:port/dbname?sslmode=...&host=/socket/dir`."""
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("database URL must start with postgresql:// (got another scheme)")
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(
                f"database URL is malformed: {scrub(str(exc), [_url_password(url)])}"
            ) from None
        return cls(
            host=str(params.get("host") or "localhost"),
            port=int(params.get("port") or 5432),
            dbname=str(params.get("dbname") or params.get("user") or "postgres"),
            user=str(params.get("user") or "postgres"),
            sslmode=str(params.get("sslmode") or "prefer"),
            password=str(params["password"]) if params.get("password") else None,
            sslrootcert=str(params["sslrootcert"]) if params.get("sslrootcert") else None,
        )

    @classmethod
    def from_secret(cls, secret_id: str, *, client: Any = None,
                    **given: Any) -> Connection:
        """Read an RDS-style secret: JSON with host, port, username, password, dbname.
        `given` fills what the secret lacks: an RDS-managed master secret holds only the
        username and password, the endpoint comes from the instance."""
        import boto3

        client = client or boto3.client("secretsmanager")
        try:
            raw = client.get_secret_value(SecretId=secret_id)["SecretString"]
        except Exception as exc:
            raise SourceError(
                f"cannot read database secret {secret_id}: {type(exc).__name__}; "
                "check the secret ARN and that this role may read it"
            ) from None
        try:
            data = {**given, **json.loads(raw)}
            return cls(
                host=str(data["host"]),
                port=int(data.get("port", 5432)),
                dbname=str(data.get("dbname") or data.get("dbName") or "postgres"),
                user=str(data["username"]),
                sslmode=str(data.get("sslmode", "require")),
                password=str(data["password"]),
                sslrootcert=_ca_file(str(data["sslrootcert"])) if data.get("sslrootcert")
                else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"database secret {secret_id} is not RDS-style JSON (missing or bad {exc}); "
                "it needs host, port, username, password, dbname"
            ) from None

    def with_dbname(self, dbname: str) -> Connection:
        return dataclasses.replace(self, dbname=dbname)

    def conninfo(self) -> str:
        """A libpq connection string without the password (safe for argv)."""
        optional = {"sslrootcert": self.sslrootcert} if self.sslrootcert else {}
        return make_conninfo(
            host=self.host, port=self.port, dbname=self.dbname, user=self.user,
            sslmode=self.sslmode, application_name="backstop", **optional,
        )

    def describe(self) -> str:
        return f"{self.dbname} on {self.host}:{self.port}"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A session whose printed values do not depend on the server's, database's or
        role's settings (timestamps, intervals, floats, bytea, money print one way)."""
        try:
            conn = psycopg.connect(self.conninfo(), password=self.password, **kwargs)
            conn.execute("SELECT pg_catalog.set_config(name, value, false) FROM unnest("
                         "%s::text[], %s::text[]) AS s(name, value)",
                         [list(SESSION), list(SESSION.values())])
            conn.commit()
            return conn
        except psycopg.Error as exc:
            raise SourceError(
                f"cannot connect to database {self.describe()}: {self.scrub(str(exc))}; "
                "check host, port, credentials and sslmode"
            ) from None

    def scrub(self, text: str) -> str:
        return scrub(text, [self.password])

    @contextlib.contextmanager
    def child_env(self) -> Iterator[dict[str, str]]:
        """Environment for a libpq program: the password in a private passfile, never argv."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        with tempfile.TemporaryDirectory(prefix="backstop-pass-") as tmp:
            if self.password is not None:
                passfile = os.path.join(tmp, "pgpass")
                escaped = self.password.replace("\\", "\\\\").replace(":", "\\:")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(f"*:*:*:*:{escaped}\n")
                env["PGPASSFILE"] = passfile
            yield env


def _ca_file(pem: str) -> str:
    """The secret's CA certificates (PEM) as a file libpq can read, named by their digest."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError("the database secret's sslrootcert is not PEM certificates; paste "
                          "the CA certificate file's text (-----BEGIN CERTIFICATE----- ...)")
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"backstop-ca-{digest}.pem")
    if not os.path.exists(path):
        with tempfile.NamedTemporaryFile("w", dir=tempfile.gettempdir(), delete=False) as out:
            out.write(pem)
        os.replace(out.name, path)
    return path


def _url_password(url: str) -> str | None:
    password = urlsplit(url).password
    return unquote(password) if password else None
