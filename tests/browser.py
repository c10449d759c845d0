"""A page opened in headless Chromium, driven over the DevTools protocol: what a person sees.

`open_page(path, width)` loads a local HTML file at a viewport `width` (a phone is 420 px,
with the mobile viewport rules) with the network cut off (every host name fails to resolve),
and returns the requests the page made, its console errors and uncaught exceptions, and a
function that evaluates JavaScript in it. Chromium runs as Debian's `chromium`, with the flags
a root container needs; `CHROMIUM` names another binary. Tests skip with the reason when no
Chromium can be found (`.ci/run` installs it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]
TIMEOUT_SECONDS = 60.0  # a bound for a stuck browser, not a speed target


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        pytest.skip("headless Chromium not found: install Debian's chromium (apt-get install "
                    "-y chromium; .ci/run does it) or set CHROMIUM to a Chromium binary")
    return found


@dataclass
class Page:
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _session: Any = None

    def evaluate(self, expression: str) -> Any:
        answer = self._session.call("Runtime.evaluate", expression=expression,
                                    returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        width = self.evaluate("window.innerWidth")
        shot = self._session.call("Page.captureScreenshot", format="png",
                                  captureBeyondViewport=True,
                                  clip={"x": 0, "y": 0, "width": width, "height": height,
                                        "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))

    @property
    def outside_requests(self) -> list[str]:
        """Requests for anything but the page itself and inline data."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


class _Session:
    """One attached tab over the browser's websocket (flat sessions)."""

    def __init__(self, ws: Any, session_id: str, page: Page) -> None:
        self._ws, self._id, self._page, self._next = ws, session_id, page, 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        number = self._next
        self._ws.send(json.dumps({"id": number, "method": method, "params": params,
                                  "sessionId": self._id}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def wait_for(self, event: str) -> None:
        while True:
            message = json.loads(self._ws.recv())
            self._event(message)
            if message.get("method") == event:
                return

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self._page.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self._page.errors.append("console: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self._page.errors.append("exception: " + str(
                details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self._page.errors.append("log: " + params["entry"].get("text", ""))


@contextlib.contextmanager
def open_page(path: Path, width: int, height: int = 900) -> Iterator[Page]:
    import websocket  # websocket-client, which alpaca-trade-api brings (pinned in dev reqs)

    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        # Its own process group: Chromium's helper processes end with it.
        process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}",
                                    "about:blank"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            ws_url = _devtools_url(process)
            ws = websocket.create_connection(ws_url, timeout=TIMEOUT_SECONDS,
                                             suppress_origin=True)
            page = Page(url=path.resolve().as_uri())
            target = _browser_call(ws, "Target.createTarget", url="about:blank")["targetId"]
            session_id = _browser_call(ws, "Target.attachToTarget", targetId=target,
                                       flatten=True)["sessionId"]
            session = _Session(ws, session_id, page)
            page._session = session
            for domain in ("Page", "Network", "Runtime", "Log"):
                session.call(f"{domain}.enable")
            session.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                         deviceScaleFactor=1, mobile=width < 600)
            session.call("Page.navigate", url=page.url)
            session.wait_for("Page.loadEventFired")
            yield page
            ws.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group we started, by its id
            process.wait(timeout=TIMEOUT_SECONDS)


def _devtools_url(process: subprocess.Popen) -> str:
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            # Keep reading what it says, so that a full pipe never blocks it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return found.group(1)
    raise AssertionError("Chromium exited before it listened: " + "".join(seen[-5:]))


def _browser_call(ws: Any, method: str, **params: Any) -> dict[str, Any]:
    ws.send(json.dumps({"id": 1_000_000, "method": method, "params": params}))
    while True:
        message = json.loads(ws.recv())
        if message.get("id") == 1_000_000:
            if "error" in message:
                raise AssertionError(f"{method}: {message['error']}")
            return message["result"]
