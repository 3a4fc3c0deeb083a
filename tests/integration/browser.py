"""Open a page in a real headless Chromium (Debian's ``chromium``) and report what happened:
every network request it made, every script error and console or log error, facts read from
the rendered DOM, and the page printed to PDF.

A tiny DevTools-protocol client over ``--remote-debugging-pipe`` (JSON messages ended by NUL
on file descriptors 3 and 4): no WebDriver, no websocket library, no port.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium() -> str | None:
    return shutil.which("chromium")


@dataclass
class Visit:
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # exceptions, console and log errors
    facts: Any = None  # what the probe expression returned
    pdf: bytes = b""


class _Pipe:
    def __init__(self, profile: str) -> None:
        to_child, self._write = map(_high, os.pipe())
        self._read, from_child = map(_high, os.pipe())
        # bash puts the pipes on the descriptors the protocol fixes (3: in, 4: out); dash
        # would do, but takes single-digit descriptors only.
        wire = f'exec "$@" 3<&{to_child} 4>&{from_child} {to_child}<&- {from_child}>&-'
        self.process = subprocess.Popen(
            ["bash", "-c", wire, "bash", str(chromium()), *FLAGS, f"--user-data-dir={profile}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_child, from_child))
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive(timeout)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._read, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


def _high(fd: int) -> int:
    """The descriptor moved above 4, so that the shell's redirections cannot clobber it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def visit(page: Path, probe: str) -> Visit:
    """Load ``page`` (a file), wait for its load event, evaluate ``probe`` (a JavaScript
    expression returning JSON-able data) and print the page to PDF."""
    with tempfile.TemporaryDirectory(prefix="backstop-chromium-") as profile:
        pipe = _Pipe(profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target,
                                                          "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            facts = pipe.send("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                              session=session)["result"].get("value")
            pdf = pipe.send("Page.printToPDF", {"printBackground": True}, session=session)
            result = Visit(facts=facts, pdf=base64.b64decode(pdf["data"]))
            for event in pipe.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Network.requestWillBeSent":
                    result.requests.append(params["request"]["url"])
                elif method == "Runtime.exceptionThrown":
                    details = params["exceptionDetails"]
                    result.errors.append(details.get("exception", {}).get(
                        "description", details.get("text", "exception")))
                elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                    result.errors.append(json.dumps(params.get("args")))
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    result.errors.append(params["entry"]["text"])
            return result
        finally:
            pipe.close()
