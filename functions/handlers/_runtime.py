"""What the handlers share: settings read from the environment once per container, and AWS
clients created once per container (never per invocation, never at import, so tests can start
their mocks first). ``reset()`` forgets both; tests call it between mocked accounts."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import boto3

from backstop.errors import ConfigError
from backstop.store import ObjectStore, open_store


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set; deploy this function "
                          "with the Backstop stack")
    return value


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service)


@functools.cache
def store() -> ObjectStore:
    return open_store(env("BACKUP_LOCATION"), s3_client=client("s3"))


@functools.cache
def databases() -> tuple[str, ...]:
    return tuple(name for name in env("DATABASES").split(",") if name)


@functools.cache
def database_secrets() -> dict[str, str]:
    try:
        secrets = json.loads(env("DATABASE_SECRETS"))
    except json.JSONDecodeError:
        raise ConfigError("DATABASE_SECRETS is not a JSON object of database -> secret; "
                          "deploy this function with the Backstop stack") from None
    if not isinstance(secrets, dict):
        raise ConfigError("DATABASE_SECRETS is not a JSON object of database -> secret")
    return {str(k): str(v) for k, v in secrets.items()}


def secret_for(database: str) -> str:
    secrets = database_secrets()
    if database not in secrets:
        raise ConfigError(f"database {database!r} is not configured for this stack; "
                          f"configured: {', '.join(sorted(secrets))}")
    return secrets[database]


@functools.cache
def recipient_keys() -> tuple[str, ...]:
    """The recipients' armored public keys, from the SSM parameters the stack wrote."""
    names = [n for n in env("RECIPIENT_KEY_PARAMETERS").split(",") if n]
    try:
        found = client("ssm").get_parameters(Names=names)
    except Exception as exc:
        raise ConfigError(f"cannot read the recipient key parameters ({type(exc).__name__}); "
                          "check that this role may read them") from None
    if found.get("InvalidParameters"):
        raise ConfigError("recipient key parameters are missing: "
                          f"{', '.join(found['InvalidParameters'])}; redeploy the stack")
    by_name = {p["Name"]: p["Value"] for p in found["Parameters"]}
    return tuple(by_name[n] for n in names)


def number(name: str) -> float:
    try:
        return float(env(name))
    except ValueError:
        raise ConfigError(f"environment variable {name} is not a number") from None


def reset() -> None:
    for cached in (client, store, databases, database_secrets, recipient_keys):
        cached.cache_clear()
