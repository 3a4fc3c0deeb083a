"""Running pg_restore: straight into an empty database (in parallel when the dump is staged on
disk), or as a script through psql in one transaction, between SQL of Backstop's own.

The script form is how a restore replaces data all-or-nothing: psql runs Backstop's
preparation, pg_restore's statements and Backstop's finishing work in a single transaction,
so any failure leaves the target as it was. It is also how a restore reaches a server older
than the client tools: pg_restore always sets `transaction_timeout`, which servers before 17
reject, and the script form leaves that line out.

Both forms start their programs in a process group of their own and end the whole group
(pg_restore's parallel workers included) if Backstop stops early.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from backstop import processes
from backstop.archive import Entry
from backstop.connection import Connection
from backstop.errors import DumpError
from backstop.tools import pg_tool

CHUNK = 1024 * 1024
COMMON = ("--no-owner", "--no-tablespaces", "--no-password")
OLD_SERVER_SET = b"SET transaction_timeout = 0;\n"  # servers before 17 reject it
Feed = Callable[[IO[bytes]], None]  # writes the plain dump into a pipe


@contextlib.contextmanager
def _list_file(entries: Sequence[Entry]) -> Iterator[str]:
    with processes.private_dir("list") as tmp:  # swept at the next start if Backstop is killed
        path = tmp / "list.txt"
        with processes.private_file(path) as handle:
            handle.write("".join(e.list_line() + "\n" for e in entries).encode())
        yield str(path)


def direct(target: Connection, entries: Sequence[Entry], *, dump: Path | None, feed: Feed,
           jobs: int) -> None:
    """pg_restore straight into `target` (an empty database): parallel from a staged dump,
    else a single job reading the decrypted stream."""
    with _list_file(entries) as listed, target.child_env() as env:
        args = [pg_tool("pg_restore"), *COMMON, "--exit-on-error", f"--use-list={listed}",
                f"--dbname={target.conninfo()}"]
        if dump is not None:
            args += [f"--jobs={jobs}", str(dump)]
        with _Group(args, env, stdin=dump is None) as restore:
            if dump is None:
                _feed_into(restore.process, feed)
            restore.finish(target, "pg_restore")


def scripted(target: Connection, entries: Sequence[Entry], *, dump: Path | None, feed: Feed,
             preamble: str = "", postamble: str = "", old_server: bool = False) -> None:
    """pg_restore's statements for `entries`, between `preamble` and `postamble`, run by psql
    in one transaction."""
    with _list_file(entries) as listed, target.child_env() as env:
        restore_args = [pg_tool("pg_restore"), *COMMON, f"--use-list={listed}", "--file=-"]
        if dump is not None:
            restore_args.append(str(dump))
        psql_args = [pg_tool("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                     "--single-transaction", "--file=-", f"--dbname={target.conninfo()}"]
        with _Group(psql_args, env, stdin=True) as psql, \
                _Group(restore_args, env, stdin=dump is None, stdout=True) as restore:
            failures: list[BaseException] = []
            feeder = threading.Thread(target=_feed_into, args=(restore.process, feed, failures),
                                      daemon=True)
            if dump is None:
                feeder.start()
            script = _Script(psql.process, old_server)
            script.write(preamble.encode())
            assert restore.process.stdout is not None
            while chunk := restore.process.stdout.read(CHUNK):
                script.write(chunk)
            if not script.open:
                restore.kill()  # psql stopped at an error: nothing reads pg_restore any more
            if feeder.is_alive():
                feeder.join()
            restored = restore.process.wait()
            if failures or restored != 0 or not script.open:
                psql.kill()  # never commit a partial script: the server rolls back
                if failures:
                    raise failures[0]
                if script.open:
                    restore.finish(target, "pg_restore")
            script.write(postamble.encode())
            script.close()
            psql.finish(target, "the restore")


class _Script:
    """psql's input. Stops accepting (open = False) once psql has stopped reading."""

    def __init__(self, psql: subprocess.Popen[bytes], old_server: bool) -> None:
        assert psql.stdin is not None
        self.pipe, self.old_server, self.open, self.started = psql.stdin, old_server, True, False

    def write(self, data: bytes) -> None:
        if not self.open:
            return
        if self.old_server and not self.started and OLD_SERVER_SET in data:
            data = data.replace(OLD_SERVER_SET, b"", 1)
            self.started = True
        try:
            self.pipe.write(data)
        except BrokenPipeError:
            self.open = False

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.pipe.close()


def _feed_into(process: subprocess.Popen[bytes], feed: Feed,
               failures: list[BaseException] | None = None) -> None:
    assert process.stdin is not None
    try:
        with process.stdin as pipe:
            feed(pipe)
    except BrokenPipeError:
        pass  # the program stopped early; its exit code and stderr say why
    except BaseException as exc:  # e.g. the object changed since it was checked
        if failures is None:
            raise
        failures.append(exc)


class _Group:
    """A child program in a process group of its own, ended with its group on any failure."""

    def __init__(self, args: list[str], env: dict[str, str], *, stdin: bool = False,
                 stdout: bool = False) -> None:
        self.args, self.env, self.stdin, self.stdout = args, env, stdin, stdout
        self.stderr: Any = None
        self.process: subprocess.Popen[bytes]

    def __enter__(self) -> _Group:
        self.stderr = tempfile.TemporaryFile()
        self.process = processes.popen(  # a group of its own, killed if Backstop dies
            self.args, env=self.env, stderr=self.stderr,
            stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.stdout else subprocess.DEVNULL)
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.kill()
        self.stderr.close()

    def kill(self) -> None:
        processes.stop(self.process)

    def finish(self, target: Connection, what: str) -> None:
        code = self.process.wait()
        if code != 0:
            self.stderr.seek(0)
            raise DumpError(f"{what} into {target.describe()} failed (exit {code}): "
                            f"{target.scrub(first_error(self.stderr.read()))}")


def first_error(raw: bytes) -> str:
    """The first ERROR of pg_restore's or psql's output, with the statement it came from."""
    lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines()]
    for number, line in enumerate(lines):
        if "ERROR:" in line:
            message = line[line.index("ERROR:"):]
            for detail in lines[number + 1:number + 4]:
                if detail.startswith(("Command was:", "DETAIL:", "CONTEXT:")):
                    message += " / " + detail.split("\n")[0][:200]
                    break
            return message
    return " / ".join(line for line in lines[-3:] if line) or "no error output"


class Runner:
    """Runs a selection: straight into an empty database, or as one transaction."""

    def __init__(self, target: Connection, dump: Path | None, feed: Feed, jobs: int,
                 old_server: bool, keep: Callable[[Sequence[Entry]], list[Entry]]) -> None:
        self.target, self.dump, self.feed, self.jobs = target, dump, feed, jobs
        self.old_server = old_server
        self.keep = keep  # drops what the target cannot hold (rules.Skips)

    def whole(self, entries: Sequence[Entry], *, clean: str | None = None) -> None:
        """Restore `entries`; with `clean` (the SQL that drops what they create), in one
        transaction that drops first."""
        entries = self.keep(entries)
        if clean is not None or self.old_server:
            self.script(entries, preamble=clean or "")
        else:
            # parallel jobs only load rows: without rows they only race for locks
            loads = any(e.desc == "TABLE DATA" for e in entries)
            jobs = self.jobs if loads and self.dump is not None else 1
            first, last = _attachments_last(entries) if jobs > 1 else (list(entries), [])
            direct(self.target, first, dump=self.dump, feed=self.feed, jobs=jobs)
            if last:
                direct(self.target, last, dump=self.dump, feed=self.feed, jobs=1)

    def script(self, entries: Sequence[Entry], *, preamble: str = "",
               postamble: str = "") -> None:
        entries = self.keep(entries)
        scripted(self.target, entries, dump=self.dump, feed=self.feed, preamble=preamble,
                 postamble=postamble, old_server=self.old_server)


def _attachments_last(entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """Index attachments, and what needs them, apart for a pass of their own with one job:
    attached at once by parallel workers, a partitioned index can stay INVALID (each one's
    check that every partition is attached misses the other's uncommitted attachment)."""
    later: set[int] = set()
    for entry in entries:  # archive order: what an entry needs comes before it
        if entry.desc == "INDEX ATTACH" or later.intersection(entry.deps):
            later.add(entry.dump_id)
    return ([e for e in entries if e.dump_id not in later],
            [e for e in entries if e.dump_id in later])
