"""One error tree. Step Functions Catch/Retry match these class names; the CLI maps them to
exit codes. Every message is one line, names what failed and what to do, and holds no secret."""

from __future__ import annotations

from collections.abc import Iterable


class BackstopError(Exception):
    """Base of every error Backstop raises on purpose."""

    exit_code = 1


class ConfigError(BackstopError):
    """The request or configuration is wrong; fix the input and run again."""

    exit_code = 2


class SourceError(BackstopError):
    """The database cannot be reached or lacks what the request names."""

    exit_code = 3


class DumpError(BackstopError):
    """pg_dump or pg_restore failed."""

    exit_code = 4


class EncryptionError(BackstopError):
    """gpg could not encrypt or decrypt (a wrong or missing key)."""

    exit_code = 5


class StoreError(BackstopError):
    """The object store refused a read or a write."""

    exit_code = 6


class NotFoundError(BackstopError):
    """No backup matches what was asked for."""

    exit_code = 7


class IntegrityError(BackstopError):
    """A backup object does not match its manifest (size, sha256, or it does not decrypt)."""

    exit_code = 8


class VerificationError(BackstopError):
    """A restored database differs from what was dumped."""

    exit_code = 9


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Return `text` with every secret replaced, and folded onto one line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())
