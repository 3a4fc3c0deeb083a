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


@functools.cache
def database_checks() -> dict[str, dict[str, str]]:
    """database -> {check name: SQL}; databases without checks are absent."""
    try:
        checks = json.loads(os.environ.get("DATABASE_CHECKS") or "{}")
    except json.JSONDecodeError:
        raise ConfigError("DATABASE_CHECKS is not a JSON object of database -> checks; "
                          "deploy this function with the Backstop stack") from None
    return {str(db): {str(k): str(v) for k, v in c.items()} for db, c in checks.items()}


@functools.cache
def database_profiles() -> dict[str, str]:
    """database -> its source profile; databases of the `plain` profile are absent."""
    try:
        profiles = json.loads(os.environ.get("DATABASE_PROFILES") or "{}")
    except json.JSONDecodeError:
        raise ConfigError("DATABASE_PROFILES is not a JSON object of database -> profile; "
                          "deploy this function with the Backstop stack") from None
    return {str(db): str(profile) for db, profile in profiles.items()}


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


@functools.cache
def private_key() -> str:
    """The verifier's armored private key, from its Secrets Manager secret (never an input)."""
    secret_id = env("PRIVATE_KEY_SECRET")
    try:
        value = str(client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    except Exception as exc:
        raise ConfigError(f"cannot read the verifier's private key secret {secret_id} "
                          f"({type(exc).__name__}); create it as docs/restore.md shows and "
                          "check that this role may read it") from None
    if "PRIVATE KEY BLOCK" not in value:
        raise ConfigError(f"secret {secret_id} does not hold an armored OpenPGP private key; "
                          "store the output of gpg --armor --export-secret-keys")
    return value


@functools.cache
def restore_targets() -> tuple[str, ...]:
    """Secrets of the existing databases a manual restore may replace."""
    raw = os.environ.get("RESTORE_TARGET_SECRETS", "").strip() or "[]"
    try:
        targets = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError("RESTORE_TARGET_SECRETS is not a JSON list of secret names") from None
    return tuple(str(t) for t in targets)


def number(name: str) -> float:
    try:
        return float(env(name))
    except ValueError:
        raise ConfigError(f"environment variable {name} is not a number") from None


def reset() -> None:
    for cached in (client, store, databases, database_secrets, database_checks,
                   database_profiles, recipient_keys, private_key, restore_targets):
        cached.cache_clear()
