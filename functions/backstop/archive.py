"""The table of contents of a pg_dump custom-format archive, read from its first bytes.

pg_dump writing to a pipe puts its header and every TOC entry (with dependencies) before any
data, so the TOC can be read from the stream as it passes (at backup time) or from the head
of a staged dump (at restore time). The restore plans its `pg_restore -L` lists from it, and
the backup records the sequence values the dump holds. Format: pg_backup_archiver.c
(ReadHead, ReadToc); versions 1.14 to 1.16 (pg_dump 12 to 18).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from backstop import names
from backstop.errors import IntegrityError

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
OLDEST, NEWEST = (1, 14), (1, 16)
SECTIONS = {1: "none", 2: "pre-data", 3: "data", 4: "post-data"}
_SETVAL = re.compile(r", (-?\d+), (true|false)\);\s*$")


@dataclasses.dataclass(frozen=True)
class Entry:
    dump_id: int
    desc: str  # TABLE, TABLE DATA, INDEX, SEQUENCE SET, ... as `pg_restore -l` shows
    namespace: str | None
    tag: str
    owner: str | None
    section: str
    defn: str | None
    deps: tuple[int, ...]
    had_data: bool  # a data block follows in the archive (TABLE DATA, BLOBS, ...)
    oid: str | None

    def list_line(self) -> str:
        """This entry's line in a `pg_restore -L` list (only the dump id is read)."""
        return f"{self.dump_id}; 0 0 {self.desc} {self.namespace or '-'} {self.tag} -"


@dataclasses.dataclass(frozen=True)
class Toc:
    version: tuple[int, int, int]
    dbname: str
    server_version: str
    dump_version: str
    entries: tuple[Entry, ...]

    def by_id(self) -> dict[int, Entry]:
        return {e.dump_id: e for e in self.entries}

    def sequence_values(self) -> dict[str, dict[str, object]]:
        """`schema.name` (names.qualified) -> {"last_value", "is_called"} as the dump will
        set them."""
        values: dict[str, dict[str, object]] = {}
        for entry in self.entries:
            if entry.desc == "SEQUENCE SET" and entry.defn:
                found = _SETVAL.search(entry.defn)
                if found:
                    values[names.qualified(entry.namespace or "", entry.tag)] = {
                        "last_value": int(found.group(1)), "is_called": found.group(2) == "true"}
        return values


class Incomplete(Exception):
    """More bytes are needed to read the whole table of contents."""


class _Cursor:
    def __init__(self, data: bytes | bytearray) -> None:
        self.data, self.pos = data, 0
        self.int_size = 4
        self.off_size = 8

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise Incomplete
        chunk = bytes(self.data[self.pos:self.pos + count])
        self.pos += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def str(self) -> str | None:
        length = self.int()
        if length < 0:
            return None
        return self.take(length).decode("utf-8", "replace")


def parse(head: bytes | bytearray) -> Toc:
    """Read the header and TOC from the first bytes of a custom-format archive. Raises
    Incomplete when `head` ends before the TOC does, IntegrityError when it is not one."""
    cur = _Cursor(head)
    if cur.take(5) != MAGIC:
        raise IntegrityError("the backup is not a pg_dump custom-format archive")
    version = (cur.byte(), cur.byte(), cur.byte())
    if not OLDEST <= version[:2] <= NEWEST:
        raise IntegrityError(f"archive format {version[0]}.{version[1]} is not one this "
                             f"Backstop reads ({OLDEST[0]}.{OLDEST[1]} to "
                             f"{NEWEST[0]}.{NEWEST[1]})")
    cur.int_size, cur.off_size = cur.byte(), cur.byte()
    if cur.byte() != FORMAT_CUSTOM:
        raise IntegrityError("the backup is a pg_dump archive, but not in custom format")
    cur.byte()  # compression algorithm
    for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
        cur.int()
    dbname, server_version, dump_version = cur.str(), cur.str(), cur.str()
    entries = tuple(_entries(cur, version))
    return Toc(version, dbname or "", server_version or "", dump_version or "", entries)


def _entries(cur: _Cursor, version: tuple[int, int, int]) -> Iterator[Entry]:
    for _ in range(cur.int()):
        dump_id, had_dumper = cur.int(), cur.int()
        cur.str()  # table oid
        oid, tag, desc = cur.str(), cur.str(), cur.str()
        section = SECTIONS.get(cur.int(), "none")
        defn = cur.str()
        cur.str()  # drop statement
        cur.str()  # copy statement
        namespace = cur.str()
        cur.str()  # tablespace
        cur.str()  # table access method
        if version[:2] >= (1, 16):
            cur.int()  # relkind
        owner = cur.str()
        cur.str()  # "with oids", always false
        deps = []
        while (dep := cur.str()) is not None:
            deps.append(int(dep))
        flag = cur.byte()  # the data block's offset: a flag and off_size bytes
        cur.take(cur.off_size)
        yield Entry(dump_id=dump_id, desc=desc or "", namespace=namespace, tag=tag or "",
                    owner=owner, section=section, defn=defn, deps=tuple(deps),
                    had_data=bool(had_dumper) and flag != 3, oid=oid)


class Reader:
    """Feed it the archive's first chunks; `toc` is set once the whole TOC has passed."""

    LIMIT = 256 * 1024**2  # a TOC larger than this is not a pg_dump archive we can read

    def __init__(self) -> None:
        self.head = bytearray()
        self.toc: Toc | None = None
        self.next_try = 0  # parse again only once the head has doubled: linear, not quadratic

    def feed(self, chunk: bytes) -> None:
        if self.toc is not None:
            return
        self.head += chunk
        if len(self.head) < self.next_try:
            return
        self.next_try = 2 * len(self.head)
        try:
            self.toc = parse(self.head)
        except Incomplete:
            if len(self.head) > self.LIMIT:
                raise IntegrityError("the archive's table of contents is larger than "
                                     f"{self.LIMIT // 1024**2} MiB") from None
            return
        self.head = bytearray()
