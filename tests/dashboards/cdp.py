"""A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands
on the browser's fd 3, replies and events on its fd 4, each message JSON ended by a NUL byte). Only
the standard library: no npm package, no WebSocket.

The browser runs in a session of its own with a fresh profile, and close() ends it, then its whole
process group, whatever state it is in."""

import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import time

# The flags that keep Chromium quiet on a machine without network, GPU or D-Bus; --no-sandbox
# because the tests run as root.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
]


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, binary, profile_dir, log_path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 2 so that dup2 onto 3 and 4 never meets one of them in the child.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)

        def onto_3_and_4():
            os.dup2(child_in, 3, inheritable=True)
            os.dup2(child_out, 4, inheritable=True)

        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary] + FLAGS + ["--user-data-dir=" + profile_dir, "--remote-debugging-pipe",
                                    "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False,
                preexec_fn=onto_3_and_4, start_new_session=True)
        for fd in (to_browser_r, from_browser_w, child_in, child_out):
            os.close(fd)
        self._buf = b""
        self._next_id = 0
        self.events = []  # every event received, in order: (method, params, sessionId)

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time.")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium closed its DevTools pipe (exit status %r)."
                                   % self.proc.poll())
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=30):
        """Sends one command and returns its result; events received meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError("%s failed: %s" % (method, reply["error"]))
                return reply.get("result", {})
            if "method" in reply:
                self.events.append((reply["method"], reply.get("params", {}),
                                    reply.get("sessionId")))

    def wait_event(self, method, session, timeout=30):
        """Returns the params of the first event `method` of `session` not yet waited for."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for i in range(seen, len(self.events)):
                m, params, s = self.events[i]
                if m == method and s == session:
                    self.events[i] = (m + " (consumed)", params, s)
                    return params
            seen = len(self.events)
            reply = self._read_message(deadline)
            if "method" in reply:
                self.events.append((reply["method"], reply.get("params", {}),
                                    reply.get("sessionId")))

    def new_page(self, width, height):
        """A new tab with its console and log reported; returns its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        return session

    def navigate(self, session, url, timeout=30):
        result = self.call("Page.navigate", {"url": url}, session=session)
        if result.get("errorText"):
            raise BrowserError("Loading '%s' failed: %s." % (url, result["errorText"]))
        self.wait_event("Page.loadEventFired", session, timeout)

    def evaluate(self, session, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session=session)
        if "exceptionDetails" in result:
            raise BrowserError("Evaluating %r threw: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def problems(self, session):
        """What the page reported as an error: console.error/assert, uncaught exceptions, and
        Chromium's own log entries of level error (failed loads among them)."""
        out = []
        for method, params, s in self.events:
            if s != session:
                continue
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console.%s: %s" % (params["type"], " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", []))))
            elif method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                out.append("exception: %s %s" % (d.get("text", ""),
                                                 d.get("exception", {}).get("description", "")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                e = params["entry"]
                out.append("log (%s): %s %s" % (e.get("source"), e.get("text"), e.get("url", "")))
        return out

    def screenshot(self, session, path, width):
        """A PNG of the whole page: the viewport is made as tall as the page first, so that what is
        fixed at the bottom of the window is at the bottom of the picture."""
        height = self.evaluate(session, "document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the browser's processes (renderers, zygotes): its own group only.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
