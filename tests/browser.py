"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`): no port, no
package beyond the standard library. Opens a page, records its console errors, uncaught exceptions and
network requests, evaluates JavaScript, clicks and presses keys as a user would (Input events at the
element's place), and takes screenshots. Used by tests/test_eval_reports.py and scripts/make_report_screenshot.py.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

#: flags for a quiet, offline, throw-away browser (reference/containers-and-clusters.md)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")
#: a safety net for one protocol command (never a measure of speed)
TIMEOUT_S = 120.0


class BrowserError(RuntimeError):
    """The browser did not start, answer or do what was asked."""


class Browser:
    """One headless Chromium with one page; use as a context manager.

    Attributes:
        console_errors: console.error messages, uncaught exceptions and error log entries, as text.
        requests: the URLs of every network request the page made (data: URLs included when reported).
    """

    def __init__(self, executable: str, width: int = 1280, height: int = 900):
        self._profile = tempfile.mkdtemp(prefix="dynsal-chromium-")
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        command = [executable, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
                   "about:blank"]
        # the protocol's pipe is the browser's fd 3 (commands in) and fd 4 (answers out)
        self._process = subprocess.Popen(["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2', *command],
                                         stdin=to_browser, stdout=from_browser, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._messages: queue.Queue[Optional[dict]] = queue.Queue()
        self._reader = threading.Thread(target=self._read_messages, daemon=True)
        self._reader.start()
        self._next_id = 0
        self.events: List[dict] = []
        self.console_errors: List[str] = []
        self.requests: List[str] = []
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=None)["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=None)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})

    # ------------------------------------------------------------------------------------------ protocol

    def _read_messages(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for message in complete:
                self._messages.put(json.loads(message))

    def _record(self, event: dict) -> None:
        self.events.append(event)
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.console_errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.console_errors.append(params["entry"]["text"])
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def _wait(self, match) -> dict:
        while True:
            try:
                message = self._messages.get(timeout=TIMEOUT_S)
            except queue.Empty:
                raise BrowserError(f"no answer from Chromium in {TIMEOUT_S:.0f} s") from None
            if message is None:
                raise BrowserError(f"Chromium exited (status {self._process.poll()})")
            if "id" not in message:
                self._record(message)
            if match(message):
                return message

    def send(self, method: str, params: Optional[Dict[str, Any]] = None, session: Any = "page") -> dict:
        """Send one protocol command (to the page's session unless session=None) and return its result."""
        self._next_id += 1
        message: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session == "page":
            message["sessionId"] = self._session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        answer = self._wait(lambda m: m.get("id") == message["id"])
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    # ------------------------------------------------------------------------------------------ a user's view

    def open(self, path: Path) -> str:
        """Load the file and wait for its load event; returns its URL."""
        url = Path(path).resolve().as_uri()
        self.send("Page.navigate", {"url": url})
        self._wait(lambda m: m.get("method") == "Page.loadEventFired")
        return url

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (BrowserError on an exception)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def _centre(self, selector: str) -> List[float]:
        point = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                              "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                              "return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        if point is None:
            raise BrowserError(f"no element {selector}")
        return point

    def click(self, selector: str) -> None:
        """A left click at the middle of the element (scrolled into view), as the mouse would."""
        x, y = self._centre(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def press(self, selector: str, key: str, code: int) -> None:
        """Focus the element and press one key (e.g. "ArrowRight", 39) as the keyboard would."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        for kind in ("rawKeyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                 "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code})

    def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                self.send("Browser.close", session=None)
        except BrowserError:
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
