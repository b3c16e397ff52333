"""A small Chrome DevTools Protocol client over --remote-debugging-pipe, with
the standard library alone: it drives Debian's /usr/bin/chromium headless
to open a report, click in it, read its DOM, time it and screenshot it.

The pipe protocol: Chromium reads commands on fd 3 and writes replies and
events on fd 4, each a JSON object ended by a NUL byte."""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
]


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, chromium="/usr/bin/chromium", width=1400, height=1000, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="cautograd-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child():
            # Move both ends out of the way first: one may already be fd 3 or 4.
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3, inheritable=True)
            os.dup2(b, 4, inheritable=True)

        args = [chromium] + FLAGS + ["--user-data-dir=" + self.profile, f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(args, close_fds=False, preexec_fn=child, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies = {}
        self._events = []
        self._cv = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable", session=self.session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=self.session)

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                    self._cv.notify_all()

    def send(self, method, params=None, session=None):
        with self._cv:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cv:
            while mid not in self._replies:
                if self._closed:
                    raise BrowserError("chromium exited: " + b"".join(self._stderr[-5:]).decode(errors="replace"))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no reply to {method} in {self.timeout} s")
                self._cv.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cv:
            while True:
                for i, e in enumerate(self._events):
                    if e.get("method") == method:
                        return self._events.pop(i)
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"no {method} event in {timeout or self.timeout} s")
                self._cv.wait(left)

    def errors(self):
        """What reached the console as an error: exceptions, console.error, and
        the browser's own errors (a blocked load, a CSP violation)."""
        out = []
        with self._cv:
            for e in self._events:
                m, p = e.get("method"), e.get("params", {})
                if m == "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails", {})
                    out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "?")))
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    out.append("browser: " + p["entry"].get("text", "?"))
        return out

    def open(self, path):
        """Loads a file and waits until the report says it is drawn; returns
        the milliseconds from navigation start to then, as the page measured."""
        with self._cv:
            self._events.clear()
        self.send("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=self.session)
        self.wait_event("Page.loadEventFired")
        deadline = time.monotonic() + self.timeout
        while not self.eval("document.body && document.body.getAttribute('data-ready') === '1'"):
            if time.monotonic() > deadline:
                raise BrowserError("the report never finished drawing; console: " + "; ".join(self.errors()))
            time.sleep(0.05)
        return self.eval("window.cautogradReport.readyAt")

    def eval(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                      session=self.session)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression}: " + r["exceptionDetails"].get("exception", {}).get("description", "?"))
        return r.get("result", {}).get("value")

    def click(self, selector):
        """A real mouse click at the centre of the first element matching
        `selector`, as a person's would land."""
        box = self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center', inline: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        if box is None:
            raise BrowserError("nothing matches " + selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
                      session=self.session)

    def screenshot(self, path, clip=None):
        """A PNG of the viewport, or of `clip` ({x, y, width, height} in page
        pixels, below the fold too)."""
        params = {"format": "png", "captureBeyondViewport": clip is not None}
        if clip:
            params["clip"] = dict(clip, scale=1)
        png = self.send("Page.captureScreenshot", params, session=self.session)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def close(self):
        try:
            self.send("Browser.close")
        except BrowserError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
