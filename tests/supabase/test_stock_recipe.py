"""The stock-tool restore in docs/supabase.md, run exactly as written, restores a Supabase
backup into the RDS-like server as its master without an error, every table and policy equal."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import KeyPair
from tests.supabase import experiment
from tests.supabase.layout import Source, Target
from tests.supabase.servers import embedded_bin

DOC = Path(__file__).parents[2] / "docs" / "supabase.md"
KEPT = {"public", "auth", "storage"}


def recipe() -> str:
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
                if "Restore a `--profile supabase` backup" in b]
    return block


def encrypted_backup(source: Source, directory: Path, keys: KeyPair) -> str:
    """A backup object as Backstop writes it: pg_dump | zstd | gpg, of the profile's scope."""
    dump = experiment.dump(source.postgres, directory / "plain.dump",
                           *experiment.supabase_dump_args(source.postgres))
    backup_id = "20260101T000000Z-5b5b5b"
    compressed = subprocess.run(["zstd", "-q", "-c", str(dump)], check=True,
                                capture_output=True).stdout
    subprocess.run(["gpg", "--homedir", str(keys.home), "--batch", "--trust-model", "always",
                    "--recipient", keys.fingerprint, "--output",
                    str(directory / f"{backup_id}.dump.zst.gpg"), "--encrypt"],
                   input=compressed, check=True, capture_output=True)
    dump.unlink()
    return backup_id


def test_the_documented_stock_restore(supabase: Source, rds: Target, gpg_keys: KeyPair,
                                      tmp_path: Path) -> None:
    backup_id = encrypted_backup(supabase, tmp_path, gpg_keys)
    target = rds.database("stock_recipe")
    env = {**os.environ, "ID": backup_id, "GNUPGHOME": str(gpg_keys.home),
           "PGPASSWORD": str(target.password),
           "TARGET_URL": f"postgresql://{target.user}@/{target.dbname}?host={target.host}"
                         f"&port={target.port}",
           "PATH": f"{embedded_bin()}:{os.environ['PATH']}"}

    done = subprocess.run(["bash", "-c", recipe()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr
    assert experiment.tables(target, KEPT) == experiment.tables(supabase.postgres, KEPT)
    assert experiment.policies(target, KEPT) == experiment.policies(supabase.postgres, KEPT)
    assert experiment.rls_enabled(target, KEPT) == experiment.rls_enabled(
        supabase.postgres, KEPT)
    with target.connect() as conn:
        triggers = {t for (t,) in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()}
    assert {"on_auth_user_created", "quote_accepted_webhook", "update_objects_updated_at"
            } <= triggers
