"""Keys as an operator gets them wrong: protected by a passphrase, expired, signing-only.
Each gets one line that names the real problem, and nothing is stored."""

from __future__ import annotations

import subprocess

import pytest

from tests.faults.support import StoreState, assert_held
from tests.support.gpghome import gpg_home

# On the fault suite's one worker (test_faults.py says why).
pytestmark = pytest.mark.xdist_group("faults")


def test_a_passphrase_protected_key(setup, tmp_path):
    cli, _, _ = setup
    public, private = tmp_path / "p.pub", tmp_path / "p.asc"
    with gpg_home() as gpg:
        subprocess.run([*gpg, "--passphrase", "correct horse", "--quick-gen-key", "p <p@x>",
                        "default", "default", "never"], check=True, capture_output=True)
        public.write_bytes(subprocess.run([*gpg, "--armor", "--export"], check=True,
                                          capture_output=True).stdout)
        private.write_bytes(subprocess.run([*gpg, "--passphrase", "correct horse", "--armor",
                                            "--export-secret-keys"], check=True,
                                           capture_output=True).stdout)
    assert cli.call("backup", "--database", "protected", "--quiet",
                   "--recipient-key", str(public)).code == 0
    verify = ["verify", "latest", "--database", "protected", "--private-key", str(private)]

    assert_held(cli.call(*verify), code=5, says="protected by a passphrase",
                secrets=cli.secrets)
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple\n")
    assert_held(cli.call(*verify, "--passphrase-file", str(wrong)), code=5,
                says="does not unlock", secrets=[*cli.secrets, "battery staple"])
    right = tmp_path / "right"
    right.write_text("correct horse\n")
    assert cli.call(*verify, "--passphrase-file", str(right)).code == 0
    assert cli.call(*verify, BACKSTOP_PASSPHRASE="correct horse").code == 0


@pytest.mark.parametrize(("made", "says"), [
    # created in 2020 with a one-day lifetime: expired long ago
    (["--faked-system-time", "20200101T000000!", "--quick-gen-key", "old <o@x>", "default",
      "default", "1d"], "expired on 2020-01-02"),
    (["--quick-gen-key", "signer <s@x>", "ed25519", "sign", "never"], "cannot encrypt"),
])
def test_a_recipient_that_cannot_encrypt_gets_one_line(setup, tmp_path, made, says):
    cli, store, _ = setup
    public = tmp_path / "recipient.asc"
    with gpg_home() as gpg:
        subprocess.run([*gpg, "--passphrase", "", *made], check=True, capture_output=True)
        public.write_bytes(subprocess.run([*gpg, "--armor", "--export"], check=True,
                                          capture_output=True).stdout)
    before = StoreState.of(store)
    result = cli.run("backup", "--database", "quotepro", "--recipient-key", str(public))
    assert_held(result, code=5, says=says, secrets=cli.secrets, store=store, before=before)
    assert result.err.count("\n") == 1  # no warning or traceback before the line either
    assert StoreState.of(store).files == before.files
