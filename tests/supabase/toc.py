"""An archive's table of contents as stock pg_restore shows it, for experiments with stock
tools: `pg_restore --list` lines, each entry's SQL, and restores through an edited list."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

from backstop.connection import Connection
from backstop.tools import pg_tool

# Entry kinds of more than one word, longest first, as pg_restore --list prints them.
KINDS = ("PUBLICATION TABLES IN SCHEMA", "MATERIALIZED VIEW DATA", "SEQUENCE OWNED BY",
         "PUBLICATION TABLE", "MATERIALIZED VIEW", "SECURITY LABEL", "EVENT TRIGGER",
         "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT ACL", "ROW SECURITY", "SEQUENCE SET",
         "TABLE DATA", "LARGE OBJECT", "BLOB METADATA", "STATISTICS DATA")
_LINE = re.compile(r"^(\d+); \d+ \d+ (.*)$")
_HEADER = re.compile(r"^-- Name: (.*); Type: (.*); Schema: (.*); Owner: (.*)$")


@dataclasses.dataclass(frozen=True)
class Entry:
    dump_id: int
    desc: str
    namespace: str
    tag: str
    owner: str
    definition: str = ""

    @property
    def line(self) -> str:
        """The entry as a `pg_restore --use-list` line (only its id is read)."""
        return f"{self.dump_id}; 0 0 {self.desc} {self.namespace} {self.tag} {self.owner}"

    def __str__(self) -> str:
        return f"{self.desc} {self.namespace} {self.tag}"


def entries(archive: Path) -> list[Entry]:
    listing = subprocess.run([pg_tool("pg_restore"), "--list", str(archive)], check=True,
                             capture_output=True, text=True).stdout
    script = subprocess.run([pg_tool("pg_restore"), "--schema-only", "--file=-",
                             str(archive)], check=True, capture_output=True, text=True).stdout
    definitions = _definitions(script)
    found = []
    for line in listing.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        rest = match.group(2)
        desc = next((k for k in KINDS if rest.startswith(k + " ")), rest.split(" ", 1)[0])
        namespace, _, remainder = rest[len(desc) + 1:].partition(" ")
        tag, _, owner = remainder.rpartition(" ")  # an empty owner leaves a trailing space
        found.append(Entry(int(match.group(1)), desc, namespace, tag, owner,
                           definitions.get((desc, namespace, tag), "")))
    return found


def _definitions(script: str) -> dict[tuple[str, str, str], str]:
    """Each entry's SQL, keyed by kind, schema and name, from a pg_restore script."""
    found: dict[tuple[str, str, str], str] = {}
    key: tuple[str, str, str] | None = None
    body: list[str] = []
    for line in [*script.splitlines(), "-- Name: end; Type: end; Schema: -; Owner: -"]:
        header = _HEADER.match(line)
        if header:
            if key is not None:
                found[key] = "\n".join(body).strip()
            key, body = (header.group(2), header.group(3), header.group(1)), []
        elif not line.startswith("--"):
            body.append(line)
    return found


@dataclasses.dataclass(frozen=True)
class Outcome:
    failed: set[int]  # ids of entries that failed
    errors: list[str]  # every error line, attributed or not
    exit_code: int


def restore(archive: Path, target: Connection, keep: list[Entry] | None = None,
            *options: str) -> Outcome:
    """Stock pg_restore --no-owner into `target`, through a list of `keep` when given."""
    args = [pg_tool("pg_restore"), "--no-owner", "--verbose", *options,
            f"--dbname={target.conninfo()}"]
    with target.child_env() as env:
        if keep is not None:
            listing = archive.with_suffix(".list")
            listing.write_text("".join(entry.line + "\n" for entry in keep))
            args.append(f"--use-list={listing}")
        done = subprocess.run([*args, str(archive)], env=env, capture_output=True, text=True,
                              check=False)
    return Outcome({int(n) for n in re.findall(r"from TOC entry (\d+);", done.stderr)},
                   re.findall(r"ERROR: +(.*)", done.stderr), done.returncode)
