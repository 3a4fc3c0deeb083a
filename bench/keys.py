"""A throwaway OpenPGP key pair for the bench, made once in `.bench/gnupg` and reused."""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import subprocess
from pathlib import Path

UID = "Backstop bench <bench@backstop.invalid>"
RECIPIENT = "bench@backstop.invalid"


@dataclasses.dataclass(frozen=True)
class BenchKeys:
    home: Path  # a GNUPGHOME holding both halves, for the stock `gpg --encrypt -r` pipeline
    public: Path  # armored public key, Backstop's recipient key
    private: Path  # armored private key, for Backstop's restore


def bench_keys(work: Path) -> BenchKeys:
    keys = BenchKeys(work / "gnupg", work / "recipient.asc", work / "private.asc")
    if keys.private.is_file():
        return keys
    shutil.rmtree(keys.home, ignore_errors=True)  # a half-made key pair from an interrupted run
    keys.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    gpg = ["gpg", "--homedir", str(keys.home), "--batch"]

    def run(*args: str) -> bytes:
        return subprocess.run([*gpg, *args], check=True, capture_output=True).stdout

    run("--passphrase", "", "--quick-gen-key", UID, "default", "default", "never")
    keys.public.write_bytes(run("--armor", "--export", RECIPIENT))
    keys.private.write_bytes(run("--armor", "--export-secret-keys", RECIPIENT))
    subprocess.run(["gpgconf", "--homedir", str(keys.home), "--kill", "gpg-agent"],
                   check=False, capture_output=True)
    return keys


def signing_key(work: Path) -> Path:
    """The bench's manifest signing key (backstop.signing), made once, private."""
    path = work / "signing.key"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(32))
    path.chmod(0o600)
    return path
