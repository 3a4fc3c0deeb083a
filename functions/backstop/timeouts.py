"""Every network wait Backstop makes is bounded, and each bound can be changed.

Seconds, from the environment (the same names in the CLI, Lambda and the Fargate task):

    BACKSTOP_CONNECT_TIMEOUT    10    connecting to PostgreSQL (libpq connect_timeout)
    BACKSTOP_STATEMENT_TIMEOUT  3600  one statement of Backstop's own sessions
    BACKSTOP_S3_TIMEOUT         60    connecting to and each read from the object store
    BACKSTOP_STALL_TIMEOUT      300   an upload that makes no progress at all

TCP keepalives are on (a dead peer is noticed in about a minute). libpq parameters given in a
database URL (`connect_timeout`, `keepalives_idle`, `tcp_user_timeout`, `options`, ...) win
over these defaults.
"""

from __future__ import annotations

import os
from typing import Any

from backstop.errors import ConfigError

DEFAULTS = {"BACKSTOP_CONNECT_TIMEOUT": 10.0, "BACKSTOP_STATEMENT_TIMEOUT": 3600.0,
            "BACKSTOP_S3_TIMEOUT": 60.0, "BACKSTOP_STALL_TIMEOUT": 300.0}
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10",
              "keepalives_count": "3", "tcp_user_timeout": "60000"}


def seconds(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULTS[name]
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 7 * 86400:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds between 0 and a week; "
                          f"unset it for the default ({DEFAULTS[name]:g})")
    return value


def libpq_defaults() -> dict[str, str]:
    """Connection parameters for every libpq client (psycopg, pg_dump, pg_restore)."""
    connect = max(2, round(seconds("BACKSTOP_CONNECT_TIMEOUT")))  # libpq: whole seconds, >= 2
    return {"connect_timeout": str(connect), **KEEPALIVES}


def statement_options() -> str:
    """Server options for Backstop's own sessions (not pg_dump's or pg_restore's, which set
    their own and may legitimately run for hours)."""
    millis = round(seconds("BACKSTOP_STATEMENT_TIMEOUT") * 1000)
    return f"-c statement_timeout={millis}"


def aws_config() -> Any:
    """botocore settings: bounded connect and read waits, a few retries, no more."""
    from botocore.config import Config

    wait = seconds("BACKSTOP_S3_TIMEOUT")
    return Config(connect_timeout=wait, read_timeout=wait,
                  retries={"mode": "standard", "max_attempts": 3})
