"""The table of contents of a pg_dump custom-format archive, read from its first bytes.

pg_dump writing to a pipe puts its header and every TOC entry (with dependencies) before any
data, so the TOC can be read from the stream as it passes (at backup time) or from the head
of a staged dump (at restore time). The restore plans its `pg_restore -L` lists from it, and
the backup records the sequence values the dump holds. Format: pg_backup_archiver.c
(ReadHead, ReadToc) and pg_backup_custom.c; versions 1.14 to 1.16 (pg_dump 12 to 18).

pg_dump writing to a pipe cannot go back to record where each table's data starts: its TOC
says "position not set". Given such an archive, `pg_restore --jobs` cannot size the tables,
so it starts them in dump-id order (the largest may well come last, and then load alone),
and each worker reads the archive from its start to find its block. While a restore stages
the dump on disk, `Reader` can also find where each data block starts, and `place_blocks`
writes those positions into the staged copy's TOC, where pg_dump would have written them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from backstop import names
from backstop.errors import IntegrityError

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
POSITION_NOT_SET, POSITION_SET = 1, 2  # an entry's data offset flag (K_OFFSET_*)
BLOCK_DATA = 1  # a data block's type byte (BLK_DATA); large objects have their own
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
    # where the TOC stores this entry's data offset, when the entry has a data block whose
    # position pg_dump could not record (it wrote to a pipe)
    unplaced_at: int | None = None

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
    int_size: int = 4
    off_size: int = 8
    compressed: bool = False  # pg_dump compressed the data blocks (Backstop's never are)
    end: int = 0  # where the TOC ends and the first data block starts

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
    compression = cur.byte()
    for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
        cur.int()
    dbname, server_version, dump_version = cur.str(), cur.str(), cur.str()
    entries = tuple(_entries(cur, version))
    return Toc(version, dbname or "", server_version or "", dump_version or "", entries,
               cur.int_size, cur.off_size, compression != 0, cur.pos)


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
        offset_at = cur.pos
        flag = cur.byte()  # the data block's offset: a flag and off_size bytes
        cur.take(cur.off_size)
        yield Entry(dump_id=dump_id, desc=desc or "", namespace=namespace, tag=tag or "",
                    owner=owner, section=section, defn=defn, deps=tuple(deps),
                    had_data=bool(had_dumper) and flag != 3, oid=oid,
                    unplaced_at=offset_at if flag == POSITION_NOT_SET else None)


class Reader:
    """Feed it the archive's chunks in order; `toc` is set once the whole TOC has passed.
    With `find_blocks`, it also finds where each data block starts (see the module's
    docstring)."""

    LIMIT = 256 * 1024**2  # a TOC larger than this is not a pg_dump archive we can read

    def __init__(self, *, find_blocks: bool = False) -> None:
        self.head = bytearray()
        self.toc: Toc | None = None
        self.next_try = 0  # parse again only once the head has doubled: linear, not quadratic
        self.find_blocks = find_blocks
        self.blocks: _Blocks | None = None

    def feed(self, chunk: bytes) -> None:
        if self.blocks is not None:
            self.blocks.feed(chunk)
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
        if self.find_blocks:
            self.blocks = _Blocks(self.toc)
            self.blocks.feed(bytes(self.head[self.toc.end:]))
        self.head = bytearray()

    def place_blocks(self, path: Path) -> bool:
        """Write the data blocks' positions into the TOC of `path`, the staged copy of what
        was fed, if every block was found. Returns whether it did."""
        if self.toc is None or self.blocks is None or not self.blocks.complete():
            return False
        with open(path, "r+b") as staged:
            for entry, position in zip(self.blocks.pending, self.blocks.found, strict=True):
                assert entry.unplaced_at is not None
                staged.seek(entry.unplaced_at)
                staged.write(bytes([POSITION_SET])
                             + position.to_bytes(self.toc.off_size, "little"))
        return True


class _Blocks:
    """Finds the data blocks in the bytes after the TOC. They come in TOC order; the first
    starts where the TOC ends; each starts with its type and dump id and ends with a
    zero-length chunk, so the next one is where that end is followed by its start. The rows
    between are COPY text, which holds no NUL byte, so nothing else matches. Archives whose
    blocks hold binary data (compressed, or large objects) are left as they are."""

    def __init__(self, toc: Toc) -> None:
        self.pending = [e for e in toc.entries if e.unplaced_at is not None]
        self.searching = not toc.compressed and all(
            e.desc == "TABLE DATA" for e in self.pending)
        self.found: list[int] = []
        self.first = toc.end
        self.end_chunk = b"\x00" + bytes(toc.int_size)  # a zero-length chunk
        self.int_size = toc.int_size
        self.position = toc.end  # of the next byte fed
        self.carry = b""  # the last bytes fed, for a pattern across two chunks
        self.keep = 2 * len(self.end_chunk) + 1  # as long as the longest pattern

    def complete(self) -> bool:
        return self.searching and len(self.found) == len(self.pending)

    def feed(self, data: bytes) -> None:
        if not self.searching or len(self.found) == len(self.pending):
            return
        joint = self.carry + data[:self.keep]  # patterns that begin in the carried bytes
        self._scan(joint, self.position - len(self.carry), before=len(self.carry))
        self._scan(data, self.position, before=len(data))
        self.carry = data[-self.keep:] if len(data) >= self.keep \
            else (self.carry + data)[-self.keep:]
        self.position += len(data)

    def _scan(self, data: bytes, base: int, *, before: int) -> None:
        """Record the next blocks whose pattern begins in data[:before] (data is at stream
        position `base`)."""
        while self.searching and len(self.found) < len(self.pending):
            dump_id = self.pending[len(self.found)].dump_id
            start = bytes([BLOCK_DATA, 0]) + dump_id.to_bytes(self.int_size, "little")
            pattern = self.end_chunk + start if self.found else start
            after = (self.found[-1] if self.found else self.first) - base
            at = data.find(pattern, max(0, after))
            if at < 0 or at >= before:
                return
            block = base + at + len(pattern) - len(start)
            if not self.found and block != self.first:
                self.searching = False  # not the layout described above: leave it as it is
                return
            self.found.append(block)
