"""How to reach a database: from a PostgreSQL URL or an RDS-style Secrets Manager secret.

The password stays inside this object (hidden from repr) and leaves it only through
`connect()` (a psycopg keyword) or `child_env()` (a private passfile for pg_dump/pg_restore).
Every other libpq parameter in a URL (`connect_timeout`, `sslrootcert`, `keepalives_idle`,
`options`, ...) is kept and passed on; what the URL leaves out gets Backstop's bounded
defaults (`timeouts.py`), so no network wait is unbounded.

`sslrootcert` is the file of the CA certificates that `sslmode=verify-full` checks the server
against (Supabase's CA, RDS's bundle). A secret holds the certificates themselves (a function
has no files of its own): they are written to a file named by their digest, in a directory
only this process can write to (a certificate file planted in a shared directory would choose
which servers are trusted).

Supabase's transaction pooler (port 6543 of its pooler host) is refused: it gives each
transaction any server connection, so pg_dump's session settings and the exported snapshot a
backup reads do not hold there. The session pooler (port 5432) keeps one server connection per
client.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backstop import processes, timeouts
from backstop.errors import ConfigError, SourceError, remember_secret, scrub

# Parameters with a field of their own; every other libpq parameter travels in `params`.
_FIELDS = ("host", "port", "dbname", "user", "sslmode", "password", "sslrootcert")
_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@")
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
    params: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        remember_secret(self.password)
        if self.port == TRANSACTION_POOLER_PORT and self.host.lower().endswith(SUPABASE_POOLER):
            raise ConfigError(
                f"{self.host}:{self.port} is Supabase's transaction pooler, which cannot hold "
                "a dump's session and snapshot; use the session pooler: the same host on "
                "port 5432 (docs/supabase.md)")

    @classmethod
    def from_url(cls, url: str) -> Connection:
        """Parse `postgresql://user:password@host:port/dbname?sslmode=...&host=/socket/dir`."""
        for secret in _url_secrets(url):
            remember_secret(secret)
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("database URL must start with postgresql:// (got another scheme)")
        try:
            params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
            port = int(params.get("port") or 5432)
        except (psycopg.ProgrammingError, ValueError) as exc:
            raise ConfigError(
                f"database URL is malformed: {scrub(exc, _url_secrets(url))}; write it as "
                "postgresql://user@host:5432/dbname?sslmode=require"
            ) from None
        return cls(
            host=params.get("host") or "localhost",
            port=port,
            dbname=params.get("dbname") or params.get("user") or "postgres",
            user=params.get("user") or "postgres",
            sslmode=params.get("sslmode") or "prefer",
            password=params.get("password") or None,
            sslrootcert=params.get("sslrootcert") or None,
            params={k: v for k, v in params.items() if k not in _FIELDS},
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
        """A libpq connection string without the password (safe for argv): the URL's own
        parameters, and bounded connect and keepalive defaults where it gives none."""
        params: dict[str, str] = {
            "application_name": "backstop", **timeouts.libpq_defaults(), **self.params,
            "host": self.host, "port": str(self.port), "dbname": self.dbname,
            "user": self.user, "sslmode": self.sslmode}
        if self.sslrootcert:
            params["sslrootcert"] = self.sslrootcert
        return make_conninfo("", **params)

    def describe(self) -> str:
        return f"{self.dbname} on {self.host}:{self.port}"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """Backstop's own session: its statements are bounded by the statement timeout, and
        its printed values do not depend on the server's, database's or role's settings
        (timestamps, intervals, floats, bytea, money print one way)."""
        options = " ".join(filter(None, [self.params.get("options"),
                                         timeouts.statement_options()]))
        try:
            conn = psycopg.connect(self.conninfo(), password=self.password, options=options,
                                   **kwargs)
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
        """Environment for a libpq program: only what it needs (no inherited PG* or
        BACKSTOP_* variables), the password in a private passfile, never argv. The
        passfile lives in memory where the platform allows (`processes.private_dir`)."""
        env = processes.child_env()
        with processes.private_dir("pass") as tmp:
            if self.password is not None:
                passfile = os.path.join(tmp, "pgpass")
                escaped = self.password.replace("\\", "\\\\").replace(":", "\\:")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(f"*:*:*:*:{escaped}\n")
                env["PGPASSFILE"] = passfile
            yield env


_ca_dir: list[Path] = []  # this process's private directory for CA files, made on first need


def _ca_file(pem: str) -> str:
    """The secret's CA certificates (PEM) as a file libpq can read, named by their digest."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError("the database secret's sslrootcert is not PEM certificates; paste "
                          "the CA certificate file's text (-----BEGIN CERTIFICATE----- ...)")
    if not _ca_dir:
        _ca_dir.append(processes.make_private_dir("ca"))
        atexit.register(processes.remove_dir, _ca_dir[0])  # a killed process's: swept later
    path = _ca_dir[0] / f"{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    with contextlib.suppress(FileExistsError), processes.private_file(path) as out:
        out.write(pem.encode())
    return str(path)


def _url_secrets(url: str) -> list[str]:
    """The password of a URL, raw and decoded, found without a URL parser that could fail
    on the rest of it (`[::1:5432` makes urlsplit raise)."""
    match = _USERINFO.match(url)
    if not match or ":" not in match.group(1):
        return []
    raw = match.group(1).split(":", 1)[1]
    return [secret for secret in {raw, unquote(raw)} if secret]
