"""The built docs site, opened in headless Chromium: no console error, every diagram drawn.

The site is built with ``mkdocs build --strict``, served on 127.0.0.1, and each page with
a ```` ```mermaid ```` block (and the home page) is loaded through the DevTools protocol.
A page fails on any console error, uncaught exception or failed load; on any request
that leaves 127.0.0.1 (the site must work offline: mermaid.js and the fonts are served
by the site itself); and on any Mermaid block not replaced by an ``<svg>`` (material
draws it into a closed shadow root, which ``DOM.getDocument(pierce=True)`` reaches) or
drawn as Mermaid's "Syntax error" picture.

Needs Chromium (``apt-get install chromium``) and npm (the site's build fetches
mermaid.js with it). Without them the test is skipped, except under ``CI``, which must
install them (``.ci/run`` does).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PAGE_TIMEOUT = 15.0  # seconds for one page to load and draw its diagrams

MERMAID_PAGES = sorted(
    path.relative_to(DOCS).as_posix()
    for path in DOCS.rglob("*.md")
    if re.search(r"^```mermaid\s*$", path.read_text(encoding="utf-8"), re.MULTILINE)
)
PAGES = sorted({"index.md", *MERMAID_PAGES})


def _url_path(page: str) -> str:
    stem = page.removesuffix(".md")
    if stem == "index":
        return "/"
    return "/" + stem.removesuffix("/index") + "/"


def _need(tool: str | None, what: str) -> str:
    if tool is not None:
        return tool
    message = f"{what} is not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, and CI must have it (see .ci/run)")
    pytest.skip(f"{message}: the docs are not checked in a browser")


def test_the_guides_have_diagrams() -> None:
    # Guards the page list: a change of fence style must not make this file check nothing.
    expected = {
        "index.md",
        "guides/weighted.md",
        "guides/sticky.md",
        "guides/mirroring.md",
        "guides/failover.md",
    }
    assert expected <= set(MERMAID_PAGES)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The built site, served on 127.0.0.1: its base URL."""
    _need(shutil.which("npm") or os.environ.get("MERMAID_JS"), "npm (to fetch mermaid.js)")
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", tmp],
            cwd=ROOT,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        handler = functools.partial(_QuietHandler, directory=tmp)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Page:
    """One DevTools page session: commands, and the events collected meanwhile."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = PAGE_TIMEOUT, **params: Any) -> Any:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == self._id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event} within {timeout} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@pytest.fixture(scope="module")
def browser() -> Iterator[str]:
    """A headless Chromium: its DevTools HTTP endpoint."""
    binary = _need(
        next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None),
        "Chromium (apt-get install chromium)",
    )
    # Chromium's helper processes may still write to the profile for a moment after the
    # browser exits: a leftover file there must not fail the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1200,1600",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its helpers end with it
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 20
            while not (port_file.is_file() and port_file.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("Chromium did not open its DevTools port")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the helpers of this browser only


def _problems(events: list[dict[str, Any]], origin: str) -> list[str]:
    problems = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            problems.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            problems.append(f"log error: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((origin + "/", "data:", "blob:", "about:")):
                problems.append(f"request leaving the site: {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"load failed: {params.get('errorText')}")
    return problems


def _shadow_svgs(node: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Each ``div.mermaid`` element with the text of the SVG in its shadow root, or ''."""
    attributes = node.get("attributes", [])
    classes = dict(zip(attributes[::2], attributes[1::2], strict=True)).get("class", "").split()
    if node.get("localName") == "div" and "mermaid" in classes:
        svg = [
            child
            for root in node.get("shadowRoots", [])
            for child in root.get("children", [])
            if child.get("localName") == "svg"
        ]
        yield node, _text(svg[0]) if svg else ""
        return
    for child in node.get("children", []) + node.get("shadowRoots", []):
        yield from _shadow_svgs(child)


def _text(node: dict[str, Any]) -> str:
    own = node.get("nodeValue", "") if node.get("nodeType") == 3 else ""
    return own + "".join(_text(child) for child in node.get("children", []))


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium_without_errors(site: str, browser: str, page: str) -> None:
    source = (DOCS / page).read_text(encoding="utf-8")
    expected = len(re.findall(r"^```mermaid\s*$", source, re.MULTILINE))
    request = urllib.request.Request(f"{browser}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        target = json.load(response)
    try:
        with connect(
            target["webSocketDebuggerUrl"], max_size=None, open_timeout=10, close_timeout=2
        ) as ws:
            tab = _Page(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                tab.call(f"{domain}.enable")
            tab.call("Page.navigate", url=site + _url_path(page))
            tab.wait_for("Page.loadEventFired", PAGE_TIMEOUT)
            # Material replaces each <pre class="mermaid"> by a <div class="mermaid">
            # once mermaid.render has resolved: wait for that (or give up, bounded).
            deadline = time.monotonic() + PAGE_TIMEOUT
            while time.monotonic() < deadline:
                drawn = tab.evaluate(
                    "[document.querySelectorAll('pre.mermaid').length,"
                    " document.querySelectorAll('div.mermaid').length]"
                )
                if drawn == [0, expected] or _problems(tab.events, site):
                    break
                time.sleep(0.1)
            time.sleep(0.2)  # late console messages of the last render
            tab.evaluate("0")  # collects the events sent meanwhile
            problems = _problems(tab.events, site)
            root = tab.call("DOM.getDocument", depth=-1, pierce=True)["root"]
            diagrams = list(_shadow_svgs(root))
            if len(diagrams) != expected:
                problems.append(f"{len(diagrams)} of {expected} diagrams drawn")
            for n, (_, text) in enumerate(diagrams, start=1):
                if not text.strip():
                    problems.append(f"diagram {n}: no <svg> (or an empty one)")
                elif "Syntax error" in text:
                    problems.append(f"diagram {n}: {text.strip()[:200]}")
            assert problems == [], f"{page}: " + "; ".join(problems)
    finally:
        urllib.request.urlopen(f"{browser}/json/close/{target['id']}", timeout=10).close()
