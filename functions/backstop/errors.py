"""One error tree. Step Functions Catch/Retry match these class names; the CLI maps them to
exit codes. Every message is one line, names what failed and what to do, and holds no secret."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SECRETS: set[str] = set()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


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


def remember_secret(secret: str | None) -> None:
    """Add a secret (a password, a passphrase, a signing key) that no message may show."""
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)


def scrub(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Return `text` with every given and remembered secret replaced, folded onto one line,
    with control characters escaped. It never raises: it is what error paths rely on."""
    try:
        result = text if isinstance(text, str) else str(text)
        for secret in sorted({*(s for s in secrets if s), *_SECRETS}, key=len, reverse=True):
            result = result.replace(secret, "***")
        return escape(" ".join(result.split()))
    except Exception:  # a str() that raises, a secret that is not text: say nothing of it
        return "(the message could not be shown safely)"


def escape(text: str) -> str:
    """Control characters (newlines, terminal escape sequences) as visible escapes, so a
    value can neither split a log line nor reach the terminal as a command."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
