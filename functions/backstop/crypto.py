"""OpenPGP through python-gnupg, in a throwaway GNUPGHOME, streaming in both directions.

Data is already zstd-compressed when it reaches gpg, so gpg's own compression is off.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

import gnupg

from backstop.errors import ConfigError, EncryptionError

CHUNK = 1024 * 1024
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
        self.home = tempfile.mkdtemp(prefix="backstop-gpg-")
        self.binary = gpg_binary()
        self.gpg = gnupg.GPG(gpgbinary=self.binary, gnupghome=self.home)
        self.gpg.buffer_size = CHUNK

    def __enter__(self) -> Keyring:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"],
                       capture_output=True, check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    def import_keys(self, armored: Sequence[str], *, what: str) -> list[str]:
        """Import armored keys; return their fingerprints. `what` names them in errors."""
        if not armored:
            raise ConfigError(f"no {what} configured; give at least one armored OpenPGP key")
        fingerprints: list[str] = []
        for number, text in enumerate(armored, 1):
            result = self.gpg.import_keys(text)
            if not result.fingerprints:
                raise EncryptionError(
                    f"{what} #{number} is not a usable OpenPGP key (gpg imported nothing); "
                    "export it again with gpg --armor --export")
            fingerprints.extend(fp for fp in result.fingerprints if fp not in fingerprints)
        return fingerprints

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
        result = self._stream(sink, lambda: self.gpg.decrypt_file(source, always_trust=True))
        if not (result.ok and result.returncode == 0):
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


def _reason(result: Any) -> str:
    status = getattr(result, "status", None) or "no status"
    problems = [p.get("status", "") for p in getattr(result, "problems", []) or []]
    return "; ".join([status, *[p for p in problems if p and p != status]])
