#!/usr/bin/python3
"""rollbar_receiver.py - a local stand-in for Rollbar's api/1/item endpoint.

Usable as a module:

    from rollbar_receiver import RollbarReceiver
    rx = RollbarReceiver(token="t0ken").start()     # port 0 = ephemeral
    ... ROLLBAR_ENDPOINT=rx.endpoint, ROLLBAR_ACCESS_TOKEN=t0ken ...
    items = rx.wait_for_items(2, timeout=5)
    rx.stop()

and as a script (prints the port, one JSON line per accepted item to --out):

    /usr/bin/python3 tests/receiver/rollbar_receiver.py --port 0 --token T --out items.jsonl

What it checks, per the Rollbar API ("Create an item"): POST to the item
path, header X-Rollbar-Access-Token equal to the token (else 403, like
Rollbar), Content-Type application/json, a JSON object {"data": {...}} with
data.environment, data.body holding exactly one of trace, trace_chain,
message (trace: frames each with a filename, exception with a class;
message: a body), a level among Rollbar's, a uuid of at most 36
characters, and a body of at most 128 KB (else 413). Items that break a
rule a lenient server might still take are stored with their "problems"
listed, so tests can assert there are none. A repeated uuid is recorded
as a duplicate and not stored again (Rollbar discards it).

Answers (one-shot modes queued with push_mode(), else `mode`):
  'ok'                 200 {"err": 0, "result": {"id": null, "uuid": ...}}
  '429:<seconds>'      429 with X-Rate-Limit-Remaining-Seconds: <seconds>
  '413'                413 (payload too large)
  '<code>'             that status with {"err": 1}
  'hang'               read the request, never answer (until stop())
  'close'              read the request, close without an answer
  'truncate'           a 200 head and part of its body, then close
set_mode() switches `mode` at runtime (a back end that goes away and comes
back). Requests answered by hang/close/truncate are kept with status 0.
Every request, whatever the answer, is kept in requests().
"""

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEM_PATH = "/api/1/item/"
MAX_BODY = 128 * 1024
LEVELS = {"critical", "error", "warning", "info", "debug"}


def check_item(payload):
    """Problems of one decoded payload (an empty list when it is valid)."""
    problems = []
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return ["payload is not {\"data\": {...}}"]
    data = payload["data"]
    if not isinstance(data.get("environment"), str) or not data["environment"]:
        problems.append("data.environment missing or not a string")
    elif len(data["environment"]) > 255:
        problems.append("data.environment longer than 255")
    body = data.get("body")
    if not isinstance(body, dict):
        problems.append("data.body missing")
    else:
        kinds = [k for k in ("trace", "trace_chain", "message", "crash_report") if k in body]
        if len(kinds) != 1:
            problems.append("data.body must hold exactly one of trace/trace_chain/message, has %s" % kinds)
        if "message" in body and not isinstance(body["message"].get("body"), str):
            problems.append("data.body.message.body missing")
        if "trace" in body:
            tr = body["trace"]
            frames = tr.get("frames")
            if not isinstance(frames, list):
                problems.append("data.body.trace.frames missing")
            else:
                for i, f in enumerate(frames):
                    if not isinstance(f, dict) or not isinstance(f.get("filename"), str):
                        problems.append("frame %d has no filename" % i)
                    elif "lineno" in f and not isinstance(f["lineno"], int):
                        problems.append("frame %d lineno is not an integer" % i)
            exc = tr.get("exception")
            if not isinstance(exc, dict) or not isinstance(exc.get("class"), str):
                problems.append("data.body.trace.exception.class missing")
    if "level" in data and data["level"] not in LEVELS:
        problems.append("bad level %r" % data["level"])
    if "uuid" in data and (not isinstance(data["uuid"], str) or len(data["uuid"]) > 36):
        problems.append("bad uuid %r" % data.get("uuid"))
    if "timestamp" in data and not isinstance(data["timestamp"], int):
        problems.append("timestamp is not an integer")
    if "access_token" in data or "access_token" in payload:
        problems.append("access token in the body")
    return problems


class RollbarReceiver:
    def __init__(self, token="test-token", port=0, mode="ok", host="127.0.0.1"):
        self.token = token
        self.mode = mode
        self._modes = []
        self._lock = threading.Condition()
        self._items = []
        self._requests = []
        self._uuids = set()
        self.duplicates = 0
        self._stopping = threading.Event()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _answer(self, code, obj, headers=()):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer(405, {"err": 1, "message": "POST items"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                rec = {"t": time.time(), "path": self.path,
                       "token": self.headers.get("X-Rollbar-Access-Token"),
                       "content_type": self.headers.get("Content-Type"),
                       "headers": dict(self.headers.items()), "size": len(raw),
                       "status": None, "uuid": None, "raw": raw}
                try:
                    payload = json.loads(raw.decode("utf-8"))
                    rec["payload"] = payload
                    rec["uuid"] = (payload.get("data") or {}).get("uuid")
                except (ValueError, UnicodeDecodeError) as e:
                    payload = None
                    rec["payload"] = None
                    rec["error"] = "not JSON: %s" % e
                if rx._transport_fault(self, rec):
                    return
                code, obj, hdrs = rx._decide(rec, payload, len(raw))
                rec["status"] = code
                with rx._lock:
                    rx._requests.append(rec)
                    rx._lock.notify_all()
                self._answer(code, obj, hdrs)

        self._srv = ThreadingHTTPServer((host, port), Handler)
        self._srv.daemon_threads = True
        self.port = self._srv.server_address[1]
        self.endpoint = "http://%s:%d%s" % (host, self.port, ITEM_PATH)
        self._thread = None

    def _transport_fault(self, handler, rec):
        """hang / close / truncate: True when the request was handled so."""
        with self._lock:
            mode = self._modes[0] if self._modes else self.mode
            if mode not in ("hang", "close", "truncate"):
                return False
            if self._modes:
                self._modes.pop(0)
            rec["status"] = 0
            rec["mode"] = mode
            self._requests.append(rec)
            self._lock.notify_all()
        handler.close_connection = True
        if mode == "hang":
            self._stopping.wait(3600)
            return True
        if mode == "truncate":
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 100\r\n\r\n{\"err\": 0")
            handler.wfile.flush()
        try:
            handler.connection.shutdown(2)
        except OSError:
            pass
        return True

    def _decide(self, rec, payload, size):
        if rec["path"] != ITEM_PATH:
            return 404, {"err": 1, "message": "not found"}, ()
        if rec["token"] != self.token:
            return 403, {"err": 1, "message": "invalid access token"}, ()
        with self._lock:
            mode = self._modes.pop(0) if self._modes else self.mode
        if mode.startswith("429"):
            secs = mode.split(":", 1)[1] if ":" in mode else "60"
            return 429, {"err": 1, "message": "rate limited"}, (
                ("X-Rate-Limit-Remaining-Seconds", secs), ("X-Rate-Limit-Limit", "5000"),
                ("X-Rate-Limit-Remaining", "0"))
        if mode == "413" or size > MAX_BODY:
            return 413, {"err": 1, "message": "payload too large"}, ()
        if mode != "ok":
            return int(mode), {"err": 1, "message": "mode %s" % mode}, ()
        if rec["content_type"] != "application/json":
            return 400, {"err": 1, "message": "Content-Type must be application/json"}, ()
        if payload is None:
            return 400, {"err": 1, "message": rec.get("error", "bad JSON")}, ()
        problems = check_item(payload)
        if problems and any("missing" in p or "exactly one" in p for p in problems):
            rec["problems"] = problems
            return 422, {"err": 1, "message": "; ".join(problems)}, ()
        uuid = payload["data"].get("uuid")
        with self._lock:
            if uuid and uuid in self._uuids:
                self.duplicates += 1
            else:
                if uuid:
                    self._uuids.add(uuid)
                item = {"t": rec["t"], "data": payload["data"], "problems": problems,
                        "size": size}
                self._items.append(item)
                self._lock.notify_all()
        return 200, {"err": 0, "result": {"id": None, "uuid": uuid}}, ()

    # -- control --
    def start(self):
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._srv.shutdown()
        self._srv.server_close()

    def push_mode(self, *modes):
        with self._lock:
            self._modes.extend(modes)

    def set_mode(self, mode):
        with self._lock:
            self.mode = mode

    # -- results --
    def items(self):
        with self._lock:
            return list(self._items)

    def requests(self):
        with self._lock:
            return list(self._requests)

    def wait_for_items(self, n, timeout=10.0, pred=None):
        """At least n accepted items (matching pred), or what arrived by
        the timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [i for i in self._items if pred is None or pred(i)]
                left = deadline - time.monotonic()
                if len(got) >= n or left <= 0:
                    return got
                self._lock.wait(min(left, 0.1))

    def wait_for_requests(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < n and time.monotonic() < deadline:
                self._lock.wait(0.1)
            return list(self._requests)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="test-token")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rx = RollbarReceiver(token=args.token, port=args.port).start()
    print(rx.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    seen = 0
    while not stop.wait(0.2):
        items = rx.items()
        if args.out:
            with open(args.out, "a") as f:
                for it in items[seen:]:
                    f.write(json.dumps(it) + "\n")
        seen = len(items)
    rx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
