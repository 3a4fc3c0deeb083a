"""OpenPGP through python-gnupg, in a throwaway GNUPGHOME, streaming in both directions.

Data is already zstd-compressed when it reaches gpg, so gpg's own compression is off.
Keys are checked on import, each with its own sentence: a recipient must be a public key
that can encrypt now (not expired or revoked, not sign-only); a private key must be one. A
passphrase-protected private key gets its passphrase from a file (`--passphrase-file`, or
BACKSTOP_PASSPHRASE_FILE) or BACKSTOP_PASSPHRASE, never an argument; gpg reads it from its
stdin (`--pinentry-mode loopback`), so no prompt can ever wait for a person.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import gnupg

from backstop import processes
from backstop.errors import ConfigError, EncryptionError, remember_secret

CHUNK = 1024 * 1024
PASSPHRASE_ENV = "BACKSTOP_PASSPHRASE"  # noqa: S105 - a variable name
PASSPHRASE_FILE_ENV = "BACKSTOP_PASSPHRASE_FILE"  # noqa: S105 - a variable name
_NO_PASSPHRASE = "(none given)"  # noqa: S105 - a placeholder, see Keyring.decrypt
_BAD_PASSPHRASE = {11, 177}  # gpg-error codes: bad passphrase, no passphrase
# python-gnupg logs the first 256 characters of every imported key at DEBUG: for a private
# key that is key material. Its warnings (gpg's own complaints) stay visible.
logging.getLogger("gnupg").setLevel(logging.WARNING)
Sink = Callable[[bytes], object]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def gpg_binary() -> str:
    path = shutil.which("gpg") or shutil.which("gpg2")
    if path is None:
        raise ConfigError("gpg is not installed; install it (Debian/Ubuntu: apt install gnupg, "
                          "Amazon Linux/Fedora: dnf install gnupg2, macOS: brew install gnupg)")
    return path


class Keyring:
    """A private, temporary keyring; deleted (and its agent stopped) on exit."""

    def __init__(self) -> None:
        self.binary = gpg_binary()
        self.home = str(processes.make_private_dir("gpg"))
        self.gpg = gnupg.GPG(gpgbinary=self.binary, gnupghome=self.home,
                             env=processes.child_env())
        self.gpg.buffer_size = CHUNK

    def __enter__(self) -> Keyring:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        processes.remove_dir(Path(self.home))

    def import_keys(self, armored: Sequence[str], *, what: str) -> list[str]:
        """Import recipients' armored public keys; return their fingerprints. `what` names
        them in errors. Each must be able to encrypt today."""
        if not armored:
            raise ConfigError(f"no {what} configured; give at least one armored OpenPGP key")
        fingerprints: list[str] = []
        for number, text in enumerate(armored, 1):
            if "PRIVATE KEY BLOCK" in text:
                raise EncryptionError(f"{what} #{number} is a private key; give only its public "
                                  "half (gpg --armor --export), and keep the private key off "
                                  "the machine that takes backups")
            result = self.gpg.import_keys(text)
            if not result.fingerprints:
                raise EncryptionError(
                    f"{what} #{number} is not a usable OpenPGP key (gpg imported nothing); "
                    "export it again with gpg --armor --export")
            for fingerprint in result.fingerprints:
                if fingerprint not in fingerprints:
                    self._check_can_encrypt(fingerprint, f"{what} #{number}")
                    fingerprints.append(fingerprint)
        return fingerprints

    def _check_can_encrypt(self, fingerprint: str, name: str) -> None:
        (key,) = self.gpg.list_keys(keys=[fingerprint])
        who = f"{name} ({fingerprint}, {', '.join(key.get('uids') or []) or 'no user id'})"
        if key.get("trust") == "r":
            raise EncryptionError(f"{who} is revoked; use a current key")
        if key.get("trust") == "e" or _past(key.get("expires")):
            raise EncryptionError(f"{who} expired on {_date(key.get('expires'))}; extend it "
                              "(gpg --quick-set-expire) and export it again, or use another")
        if "E" not in (key.get("cap") or ""):
            raise EncryptionError(f"{who} cannot encrypt (a signing-only key, or its encryption "
                              "subkey expired); give a key with a valid encryption subkey")

    def import_private(self, armored: str) -> None:
        """Import the private key that decrypts backups."""
        result = self.gpg.import_keys(armored)
        if not result.fingerprints:
            raise EncryptionError("the private key is not an OpenPGP key (gpg imported nothing); "
                              "export it again with gpg --armor --export-secret-keys")
        if not int(result.sec_imported or 0) and not self.gpg.list_keys(secret=True):
            raise EncryptionError("the private key file holds only a public key; export the "
                              "private one with gpg --armor --export-secret-keys")

    def encrypt(self, source: Readable, recipients: Sequence[str], sink: Sink) -> None:
        """Encrypt `source` to every recipient, handing ciphertext chunks to `sink`."""
        result = self._stream(sink, lambda: self.gpg.encrypt_file(
            source, list(recipients), armor=False, always_trust=True,
            extra_args=["--compress-algo", "none"]))
        if not (result.ok and result.returncode == 0):
            raise EncryptionError(
                f"gpg could not encrypt to the recipient keys ({_reason(result)}); check that "
                "each key is a valid, unexpired public key with an encryption subkey")

    def decrypt(self, source: Readable, sink: Sink) -> None:
        """Decrypt `source` with an imported private key, handing plaintext chunks to `sink`."""
        given = passphrase()
        # Always a passphrase, so gpg runs with --pinentry-mode loopback and never prompts;
        # an unprotected key ignores it (python-gnupg mishandles an empty one).
        result = self._stream(sink, lambda: self.gpg.decrypt_file(
            source, always_trust=True, passphrase=given or _NO_PASSPHRASE))
        if not (result.ok and result.returncode == 0):
            if _error_codes(result) & _BAD_PASSPHRASE:
                raise EncryptionError(
                    "the passphrase does not unlock the private key; check "
                    f"--passphrase-file or {PASSPHRASE_ENV}" if given else
                    "the private key is protected by a passphrase; give it in a file "
                    f"(--passphrase-file, or {PASSPHRASE_FILE_ENV}) or in {PASSPHRASE_ENV}")
            raise EncryptionError(
                f"gpg could not decrypt ({_reason(result)}); the private key does not match "
                "the backup's recipients, or the object is damaged")

    def _stream(self, sink: Sink, run: Callable[[], Any]) -> Any:
        def on_data(chunk: bytes) -> bool:
            if chunk:
                sink(chunk)
            return False  # never accumulate in memory

        self.gpg.on_data = on_data
        try:
            result = run()
        finally:
            self.gpg.on_data = None
        failure = getattr(result, "on_data_failure", None)
        if failure is not None:
            raise failure
        return result


def passphrase() -> str | None:
    """The private key's passphrase, from BACKSTOP_PASSPHRASE_FILE or BACKSTOP_PASSPHRASE."""
    path = os.environ.get(PASSPHRASE_FILE_ENV, "").strip()
    if path:
        try:
            value: str | None = Path(path).read_text().rstrip("\r\n")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the passphrase file {path}: "
                              f"{getattr(exc, 'strerror', None) or 'not text'}") from None
    else:
        value = os.environ.get(PASSPHRASE_ENV) or None
    remember_secret(value)
    return value


def _error_codes(result: Any) -> set[int]:
    """gpg-error codes from `ERROR <where> <code>` status lines (the low 16 bits)."""
    codes = set()
    for line in str(getattr(result, "stderr", "")).splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[:2] == ["[GNUPG:]", "ERROR"] and parts[3].isdigit():
            codes.add(int(parts[3]) & 0xFFFF)
    return codes


def _past(epoch: str | None) -> bool:
    return bool(epoch) and str(epoch).isdigit() and int(str(epoch)) < datetime.now(UTC).timestamp()


def _date(epoch: str | None) -> str:
    if not epoch or not str(epoch).isdigit():
        return "an earlier date"
    return f"{datetime.fromtimestamp(int(str(epoch)), UTC):%Y-%m-%d}"


def _reason(result: Any) -> str:
    status = getattr(result, "status", None) or "no status"
    problems = [p.get("status", "") for p in getattr(result, "problems", []) or []]
    return "; ".join([status, *[p for p in problems if p and p != status]])
