"""Headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``):
no driver binary and no Python package beyond the standard library. Used by the tests (and by
``tools``) to open a report or a TensorBoard page as a person would, read the console errors
and save screenshots.

Example:
    >>> from ember.report.chromium import find_chromium
    >>> find_chromium() is None or find_chromium().startswith("/")
    True
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any

__all__ = ["Browser", "BrowserError", "find_chromium"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str | None:
    """The Chromium binary: ``$EMBER_CHROMIUM``, else the first of the usual names on PATH.

    Example:
        >>> isinstance(find_chromium(), (str, type(None)))
        True
    """
    env = os.environ.get("EMBER_CHROMIUM")
    if env:
        return env
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page.

    ``open(url)`` loads a page; ``evaluate(js)`` returns a JSON value; ``wait_for(js)``
    polls until it is truthy; ``screenshot(path)`` writes a PNG; ``errors`` lists the console
    errors and uncaught exceptions seen so far. Use as a context manager.

    Example:
        >>> from ember.report.chromium import Browser, find_chromium
        >>> if find_chromium():
        ...     with Browser() as b:
        ...         b.open("data:text/html,<p>hi</p>")
        ...         b.evaluate("document.body.textContent")
        ... else:
        ...     'hi'
        'hi'
    """

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError(
                "no Chromium found (install Debian's `chromium` package, or set "
                "EMBER_CHROMIUM to the browser binary)"
            )
        self.width, self.height = width, height
        self.errors: list[str] = []
        self._events: queue.Queue = queue.Queue()
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._next = 0
        self._session: str | None = None
        self._profile = tempfile.mkdtemp(prefix="ember-chromium-")
        self._start()

    # -- process and pipe -----------------------------------------------------------------
    def _start(self) -> None:
        cmd_r, self._cmd_w = os.pipe()  # we write commands; Chromium reads them on fd 3
        self._res_r, res_w = os.pipe()  # Chromium writes replies on fd 4

        def child_fds():  # pragma: no cover - runs in the child between fork and exec
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args: list[str] = [
            str(self.binary),
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=False,
                preexec_fn=child_fds,
            )
        except OSError as e:
            raise BrowserError(f"cannot start {self.binary}: {e}") from e
        finally:
            os.close(cmd_r)
            os.close(res_w)
        threading.Thread(target=self._reader, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)
        att = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, True
        )
        self._session = att["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._res_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[-1] = {"error": {"message": "Chromium exited"}}
                    self._cond.notify_all()
                return
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            for raw in msgs:
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self._on_event(msg)

    def _on_event(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            self.errors.append(f"console.{p['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "")
            self.errors.append(f"uncaught: {desc}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"{e.get('source', 'log')}: {e.get('text')} {e.get('url', '')}")
        self._events.put(msg)

    def call(self, method: str, params: dict | None = None, browser: bool = False, timeout=30):
        """Send one DevTools command (to the page unless ``browser``) and return its result."""
        with self._cond:
            self._next += 1
            mid = self._next
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if not browser and self._session:
            msg["sessionId"] = self._session
        try:
            os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        except OSError as e:
            raise BrowserError(f"Chromium is not running ({e})") from e
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies and -1 not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"Chromium did not answer {method} in {timeout} s")
                self._cond.wait(left)
            reply = self._replies.pop(mid, None) or self._replies[-1]
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    # -- page -----------------------------------------------------------------------------
    def open(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait for the load event."""
        while not self._events.empty():
            self._events.get_nowait()
        res = self.call("Page.navigate", {"url": url})
        if res.get("errorText"):
            raise BrowserError(f"cannot open {url}: {res['errorText']}")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{url} did not finish loading in {timeout} s")
            try:
                ev = self._events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.get("method") == "Page.loadEventFired":
                return

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises are awaited)."""
        res = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise BrowserError(d.get("exception", {}).get("description") or d.get("text"))
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, every: float = 0.2) -> Any:
        """Poll ``expression`` until it is truthy; returns its value (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout} s: {expression}")
            time.sleep(every)

    def screenshot(self, path: str, full_page: bool = True) -> str:
        """Write a PNG of the page (all of it when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self) -> None:
        if getattr(self, "proc", None) is None:
            return
        with contextlib.suppress(BrowserError):
            self.call("Browser.close", browser=True, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.proc = None  # type: ignore[assignment]  # closed: close() again does nothing
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
