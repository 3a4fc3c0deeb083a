"""Manifest signatures: whoever can write to the store cannot make Backstop believe a manifest
it did not write.

A signature is an HMAC-SHA256 over the SHA-256 of the manifest's canonical JSON (sorted keys,
no whitespace, the `signature` field left out), stored in the manifest as
``{"algorithm": "HMAC-SHA256", "key_id": ..., "mac": <base64>}``. HMAC rather than a public-key
signature because the same party writes and reads (Backstop), a secret key is one file or one
KMS key, and KMS keeps an HMAC key from ever leaving it. The digest, not the manifest, is what
is MACed: KMS takes at most 4 KiB per call.

The key: ``BACKSTOP_SIGNING_KEY_FILE`` (a private file of at least 32 random characters; never
an argument) or ``BACKSTOP_SIGNING_KMS_KEY`` (a KMS HMAC_256 key: GenerateMac / VerifyMac).
Reading refuses an unsigned or altered manifest unless the operator trusts the store
(``--trust-unsigned``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any, Protocol

from backstop.errors import ConfigError, IntegrityError, remember_secret

ALGORITHM = "HMAC-SHA256"
FIELD = "signature"
KEY_FILE_ENV = "BACKSTOP_SIGNING_KEY_FILE"
KMS_KEY_ENV = "BACKSTOP_SIGNING_KMS_KEY"
MIN_KEY_CHARS = 32
HOW = (f"set {KEY_FILE_ENV} to a private file of random text (for example: "
       "head -c 32 /dev/urandom | base64 > signing.key; chmod 600 signing.key) "
       f"or {KMS_KEY_ENV} to a KMS HMAC key")


class Signer(Protocol):
    key_id: str

    def mac(self, digest: bytes) -> bytes: ...
    def valid(self, digest: bytes, mac: bytes) -> bool: ...


class FileKey:
    """An HMAC key read from a private file."""

    def __init__(self, path: Path) -> None:
        try:
            info = path.stat()
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}; "
                              f"{HOW}") from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"signing key {path} can be read by other users; "
                              f"chmod 600 {path}")
        if len(secret) < MIN_KEY_CHARS:
            raise ConfigError(f"signing key {path} is shorter than {MIN_KEY_CHARS} "
                              f"characters; {HOW}")
        remember_secret(secret.decode("utf-8", "replace"))
        self.secret = secret
        self.key_id = "file:" + hashlib.sha256(b"backstop key id\0" + secret).hexdigest()[:16]

    def mac(self, digest: bytes) -> bytes:
        return hmac.new(self.secret, digest, hashlib.sha256).digest()

    def valid(self, digest: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.mac(digest), mac)


class KmsKey:
    """An HMAC key that never leaves AWS KMS."""

    def __init__(self, key_id: str, *, client: Any = None) -> None:
        import boto3

        from backstop.timeouts import aws_config

        self.key_id = key_id
        self.client = client or boto3.client("kms", config=aws_config())

    def mac(self, digest: bytes) -> bytes:
        try:
            return bytes(self.client.generate_mac(
                KeyId=self.key_id, Message=digest, MacAlgorithm="HMAC_SHA_256")["Mac"])
        except Exception as exc:
            raise ConfigError(f"cannot sign with KMS key {self.key_id} ({_aws_reason(exc)}); "
                              "check that it is an HMAC_256 key this role may use") from None

    def valid(self, digest: bytes, mac: bytes) -> bool:
        try:
            return bool(self.client.verify_mac(
                KeyId=self.key_id, Message=digest, Mac=mac,
                MacAlgorithm="HMAC_SHA_256")["MacValid"])
        except self.client.exceptions.KMSInvalidMacException:
            return False
        except Exception as exc:
            raise ConfigError(f"cannot check a signature with KMS key {self.key_id} "
                              f"({_aws_reason(exc)}); check that this role may use it"
                              ) from None


@dataclasses.dataclass(frozen=True)
class Policy:
    """How a store's manifests are sealed and checked."""

    signer: Signer | None
    trust_unsigned: bool = False

    @classmethod
    def from_env(cls, *, trust_unsigned: bool = False, kms_client: Any = None) -> Policy:
        key_file = os.environ.get(KEY_FILE_ENV, "").strip()
        kms_key = os.environ.get(KMS_KEY_ENV, "").strip()
        if key_file and kms_key:
            raise ConfigError(f"both {KEY_FILE_ENV} and {KMS_KEY_ENV} are set; keep one")
        if key_file:
            return cls(FileKey(Path(key_file)), trust_unsigned)
        if kms_key:
            return cls(KmsKey(kms_key, client=kms_client), trust_unsigned)
        return cls(None, trust_unsigned)

    def check_ready(self) -> None:
        """Fail now, not after an hour's dump, when manifests could not be signed."""
        self.seal({})

    def seal(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` with its signature."""
        if self.signer is None:
            raise ConfigError(f"no manifest signing key is configured; {HOW}")
        mac = self.signer.mac(digest(data))
        return {**data, FIELD: {"algorithm": ALGORITHM, "key_id": self.signer.key_id,
                                "mac": base64.b64encode(mac).decode()}}

    def open(self, data: dict[str, Any], *, key: str) -> dict[str, Any]:
        """`data` without its signature, once the signature is proven (or trusted)."""
        body = {k: v for k, v in data.items() if k != FIELD}
        seal = data.get(FIELD)
        if seal is None or self.signer is None:
            if self.trust_unsigned:
                return body
            if seal is None:
                raise IntegrityError(f"manifest {key} is not signed, so Backstop does not "
                                     "trust it; if only you write to this store, pass "
                                     "--trust-unsigned")
            raise ConfigError(f"manifest {key} is signed but no signing key is configured "
                              f"to check it; {HOW}, or pass --trust-unsigned")
        if not isinstance(seal, dict) or seal.get("algorithm") != ALGORITHM:
            raise IntegrityError(f"manifest {key} has a signature Backstop cannot check; "
                                 "it was altered")
        try:
            mac = base64.b64decode(str(seal.get("mac")), validate=True)
        except ValueError:
            mac = b""
        if not self.signer.valid(digest(body), mac):
            other = seal.get("key_id")
            why = ("it was altered after it was signed" if other == self.signer.key_id
                   else f"it was altered, or signed with another key ({other})")
            raise IntegrityError(f"manifest {key} does not match its signature: {why}; do "
                                 "not trust this backup")
        return body


def digest(data: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON: the same for the same content however it was laid out."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode()).digest()


def _aws_reason(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
