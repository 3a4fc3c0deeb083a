"""A throwaway GnuPG home for making keys as an operator would."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def gpg_home() -> Iterator[list[str]]:
    """The gpg command for a new, empty keyring. Its path is short (the agent's sockets live in
    it, and a socket's path holds at most 107 bytes); its agent is stopped and it is removed
    on exit."""
    home = Path(tempfile.mkdtemp(prefix="gpg-"))
    try:
        yield ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    finally:
        stop_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True,
                   check=False)
