"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no WebSocket
client needed), for the demo page's browser test, its benchmark and its screenshot.

    with Browser() as browser:
        browser.open("http://127.0.0.1:8000/")
        browser.evaluate("document.title")
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# no sandbox (it refuses to run as root, which CI is) and nothing that reaches outside the machine
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """The first Chromium or Chrome on PATH."""
    return next(filter(None, map(shutil.which, EXECUTABLES)), None)


def _above_4(fd: int) -> int:
    """``fd`` moved to 10 or above, so that putting the pipes on fds 3 and 4 never overwrites one with the other."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless browser with one page. ``events`` keeps every protocol event received (``Network.*`` once
    ``open(..., network=True)``)."""

    def __init__(self, executable: str | None = None, width: int = 1200, height: int = 900, timeout: float = 60):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError(f"no Chromium found (looked for {', '.join(EXECUTABLES)}; apt-get install chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self.events: list[dict] = []
        self._next_id, self._buffer, self._session = 0, b"", None

    def __enter__(self) -> "Browser":
        self._profile = tempfile.TemporaryDirectory(prefix="hmtl-chromium-")
        self._log = open(Path(self._profile.name) / "chromium.log", "w+b")
        to_browser, self._to_browser = os.pipe()  # the browser reads commands on fd 3 and writes on fd 4
        self._from_browser, from_browser = os.pipe()
        to_browser, from_browser = _above_4(to_browser), _above_4(from_browser)
        command = [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}/profile",
                   f"--window-size={self.width},{self.height}", "about:blank"]
        # a small Python puts the two pipe ends on fds 3 and 4, then becomes the browser (no preexec_fn: the caller
        # may run threads; no shell: dash takes single-digit fds only)
        place = (f"import os, sys; os.dup2({to_browser}, 3); os.dup2({from_browser}, 4); os.close({to_browser}); "
                 f"os.close({from_browser}); os.execvp(sys.argv[1], sys.argv[1:])")
        self._process = subprocess.Popen([sys.executable, "-c", place, *command], pass_fds=(to_browser, from_browser),
                                         stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(to_browser)
        os.close(from_browser)
        try:
            target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self.command("Page.enable")
            self.command("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                                "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.close(self._to_browser)  # the browser quits when its command pipe closes
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        finally:
            os.close(self._from_browser)
            self._log.close()
            self._profile.cleanup()

    # ------------------------------------------------------------- the protocol
    def command(self, method: str, params: dict | None = None) -> dict:
        """Send one command (to the page once one is attached) and return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(self.timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply["result"]
            self.events.append(reply)

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError(f"the browser did not answer in {timeout:g} s{self._log_tail()}")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"the browser stopped{self._log_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _log_tail(self) -> str:
        self._log.flush()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return (": " + " | ".join(lines[-5:])) if lines else ""

    # ------------------------------------------------------------- the page
    def open(self, url: str, network: bool = False) -> None:
        """Load ``url`` and wait for its load event; ``network`` records its requests in ``events``."""
        if network:
            self.command("Network.enable")
        self.events.clear()
        self.command("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while not any(event.get("method") == "Page.loadEventFired" for event in self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{url} did not load in {self.timeout:g} s")
            self.events.append(self._receive(left))

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.command("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                   "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout or self.timeout:g} s: {expression}")
            time.sleep(0.02)

    def requested_urls(self) -> list[str]:
        return [event["params"]["request"]["url"] for event in self.events
                if event.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: str | Path) -> None:
        """A PNG of the whole page, as tall as its content."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        self.command("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": height,
                                                            "deviceScaleFactor": 1, "mobile": False})
        data = self.command("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))


def ask(browser: Browser, text: str) -> str | None:
    """On the demo page: type ``text``, press the button and wait until the page has drawn the answer (or the error);
    the error line it shows, None when there is none."""
    runs = "Number(document.body.dataset.runs || 0)"
    before = browser.evaluate(runs)
    browser.evaluate(f"document.getElementById('text').value = {json.dumps(text)}; document.getElementById('submit').click()")
    browser.wait_for(f"{runs} > {before}")
    return browser.evaluate("document.getElementById('error').hidden ? null : document.getElementById('error').textContent")
