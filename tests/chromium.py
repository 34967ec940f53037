"""A page opened in real headless Chromium (Debian's `chromium`), driven over the DevTools
protocol with a small WebSocket client of the standard library: what the page logged to
its console, what it fetched, and the value of a script run in it once it loaded.

Flags: the ones that work on these machines (no sandbox as root, no GPU, no network
chatter that a closed network refuses, a fresh profile)."""
from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from urllib.parse import urlparse

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--remote-debugging-port=0"]
TIMEOUT_S = 60                  # a guard against a browser that hangs, not a measurement


def binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class WebSocket:
    """RFC 6455, client side, text frames: enough for the DevTools protocol."""

    def __init__(self, url: str):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def recv(self) -> str:
        parts = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x9:                       # ping
                self._frame(0xA, data)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x1, 0x2, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Page:
    """What opening a page came to."""
    console: list = field(default_factory=list)      # (level, text) of console calls, exceptions, log entries
    requests: list = field(default_factory=list)     # URLs the page asked for (data: URLs shortened)
    failed: list = field(default_factory=list)       # requests that failed
    value: object = None                             # what the script evaluated to

    @property
    def errors(self) -> list:
        return [c for c in self.console if c[0] in ("error", "assert", "exception")]


class Browser:
    """One headless Chromium with a fresh profile; a context manager."""

    def __init__(self):
        exe = binary()
        if exe is None:
            raise FileNotFoundError("chromium is not installed (scripts/install.sh installs it)")
        self.profile = tempfile.mkdtemp(prefix="ox-chromium-")
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url, seen = None, []
        while url is None:                            # Chromium prints its endpoint when it listens
            ready, _, _ = select.select([self.proc.stderr], [], [], TIMEOUT_S)
            line = self.proc.stderr.readline().decode(errors="replace") if ready else ""
            if not line:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint:\n" + "".join(seen[-20:]))
            seen.append(line)
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            url = m.group(1) if m else None
        self.ws = WebSocket(url)
        self.next_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: str, params: dict | None = None, session: str | None = None, events=None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if events is not None and "method" in m:
                events.append(m)

    def open(self, url: str, script: str) -> Page:
        """Load `url` in a new tab, wait for its load event, then evaluate `script` (an
        expression; its value comes back as JSON) and gather what the page did."""
        events: list = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._call(f"{domain}.enable", session=session, events=events)
        self._call("Page.navigate", {"url": url}, session=session, events=events)
        while not any(e["method"] == "Page.loadEventFired" and e.get("sessionId") == session for e in events):
            events.append(json.loads(self.ws.recv()))
        res = self._call("Runtime.evaluate", {"expression": script, "returnByValue": True, "awaitPromise": True},
                         session=session, events=events)
        page = Page(value=res.get("result", {}).get("value"))
        if "exceptionDetails" in res:
            page.console.append(("exception", json.dumps(res["exceptionDetails"])[:500]))
        for e in events:
            p, meth = e.get("params", {}), e["method"]
            if meth == "Runtime.consoleAPICalled":
                page.console.append((p.get("type"), " ".join(str(a.get("value", a.get("description", "")))
                                                             for a in p.get("args", []))))
            elif meth == "Runtime.exceptionThrown":
                page.console.append(("exception", p.get("exceptionDetails", {}).get("text", "")))
            elif meth == "Log.entryAdded":
                entry = p.get("entry", {})
                page.console.append((entry.get("level"), entry.get("text", "")))
            elif meth == "Network.requestWillBeSent":
                u = p.get("request", {}).get("url", "")
                page.requests.append(u[:40] + "..." if u.startswith("data:") else u)
            elif meth == "Network.loadingFailed":
                page.failed.append(p.get("errorText", ""))
        self._call("Target.closeTarget", {"targetId": target})
        return page

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                self._call("Browser.close")
            except (OSError, ConnectionError, RuntimeError):
                pass
            ws.close()
            self.ws = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)
