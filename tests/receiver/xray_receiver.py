#!/usr/bin/python3
"""xray_receiver.py - a local stand-in for the AWS X-Ray daemon's UDP side.

Usable as a module:

    from xray_receiver import XRayReceiver
    rx = XRayReceiver().start()       # 127.0.0.1, ephemeral port
    ... AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:<rx.port> ...
    segs = rx.wait_for_segments(3, timeout=5)
    rx.stop()

and as a script (prints each document as one JSON line until SIGINT):

    /usr/bin/python3 tests/receiver/xray_receiver.py --port 2000

Every datagram must be exactly what the daemon accepts (X-Ray developer
guide, "Sending segment documents to the X-Ray daemon"): the header
`{"format": "json", "version": 1}`, a newline, and one JSON object, at most
65507 bytes in all. Each document is also checked against the segment
document schema (ids, trace id, times, name, http, subsegments); anything
wrong is recorded in problems(), which tests assert is empty.
"""

import argparse
import json
import math
import re
import socket
import sys
import threading
import time

HEADER = b'{"format": "json", "version": 1}\n'
MAX_DATAGRAM = 65507

ID_RE = re.compile(r"^[0-9a-f]{16}$")
TRACE_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
TIME_KEYS = ("start_time", "end_time")


def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def _bad_constant(c):
    raise ValueError("%s is not JSON" % c)


def parse_document(raw):
    """The JSON object of a datagram body (strict: no NaN, no duplicates)."""
    doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dups, parse_constant=_bad_constant)
    if not isinstance(doc, dict):
        raise ValueError("the document is not a JSON object")
    return doc


def raw_times(text):
    """The literal texts of start_time/end_time values in order of appearance."""
    return re.findall(r'"(start_time|end_time)":\s*([^,}\s]+)', text)


def _name_ok(name):
    if not isinstance(name, str) or not name or len(name) > 200:
        return False
    for ch in name:
        if ch.isalnum() or ch.isspace() or ch in "_.:/%&#=+\\-@":
            continue
        return False
    return True


def check_document(doc, where="document", independent=None, top=True):
    """Schema problems of a segment / subsegment document."""
    p = []

    def err(msg):
        p.append("%s: %s" % (where, msg))

    if not _name_ok(doc.get("name")):
        err("bad name %r" % (doc.get("name"),))
    if not isinstance(doc.get("id"), str) or not ID_RE.match(doc["id"]):
        err("bad id %r" % (doc.get("id"),))
    for k in TIME_KEYS:
        v = doc.get(k)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 1e9:
            err("bad %s %r" % (k, v))
    if isinstance(doc.get("start_time"), float) and isinstance(doc.get("end_time"), float):
        if doc["end_time"] < doc["start_time"]:
            err("end_time before start_time")
    is_sub = doc.get("type") == "subsegment"
    if top:
        if not isinstance(doc.get("trace_id"), str) or not TRACE_RE.match(doc["trace_id"]):
            err("bad trace_id %r" % (doc.get("trace_id"),))
        if is_sub and not (isinstance(doc.get("parent_id"), str) and ID_RE.match(doc["parent_id"])):
            err("an independent subsegment needs a parent_id")
    else:
        for k in ("trace_id", "type", "parent_id"):
            if k in doc:
                err("an inline subsegment has %s" % k)
    if "type" in doc and doc["type"] != "subsegment":
        err("bad type %r" % doc["type"])
    if "parent_id" in doc and not (isinstance(doc["parent_id"], str) and ID_RE.match(doc["parent_id"])):
        err("bad parent_id %r" % doc["parent_id"])
    for k in ("error", "throttle", "fault"):
        if k in doc and doc[k] is not True:
            err("%s must be true when present, not %r" % (k, doc[k]))
    http = doc.get("http")
    if http is not None:
        if not isinstance(http, dict):
            err("http is not an object")
        else:
            rq = http.get("request", {})
            for k in ("method", "url", "user_agent", "client_ip"):
                if k in rq and not isinstance(rq[k], str):
                    err("http.request.%s is not a string" % k)
            if "x_forwarded_for" in rq and rq["x_forwarded_for"] is not True:
                err("http.request.x_forwarded_for must be true when present")
            rs = http.get("response", {})
            for k in ("status", "content_length"):
                if k in rs and (not isinstance(rs[k], int) or isinstance(rs[k], bool) or rs[k] < 0):
                    err("http.response.%s is not a non-negative integer" % k)
    ann = doc.get("annotations")
    if ann is not None:
        for k, v in ann.items():
            if not re.match(r"^[A-Za-z0-9_]+$", k):
                err("annotation key %r is not alphanumeric" % k)
            if not isinstance(v, (str, int, float, bool)):
                err("annotation %s is not a scalar" % k)
    subs = doc.get("subsegments")
    if subs is not None:
        if not isinstance(subs, list) or not subs:
            err("subsegments must be a non-empty list")
        else:
            for i, s in enumerate(subs):
                p += check_document(s, "%s.subsegments[%d]" % (where, i), top=False)
    return p


class XRayReceiver:
    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._docs = []      # {"doc", "raw", "size", "received_at"}
        self._problems = []
        self._datagrams = 0
        self._stop = False
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="xray-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread:
            self._thread.join(2)
        self.sock.close()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            self._handle(data, time.time())

    def _handle(self, data, when):
        probs = []
        rec = None
        if len(data) > MAX_DATAGRAM:
            probs.append("datagram of %d bytes (max %d)" % (len(data), MAX_DATAGRAM))
        if not data.startswith(HEADER):
            probs.append("datagram does not start with the daemon header: %r" % data[:60])
        else:
            body = data[len(HEADER):]
            try:
                doc = parse_document(body)
            except ValueError as e:
                probs.append("not a JSON document (%s): %r" % (e, body[:120]))
            else:
                text = body.decode("utf-8")
                for key, lit in raw_times(text):
                    if not re.match(r"^\d{10}\.\d{6}$", lit):
                        probs.append("%s written as %r, want seconds with 6 decimals" % (key, lit))
                probs += check_document(doc, "%s %s" % (doc.get("type", "segment"), doc.get("id")))
                rec = {"doc": doc, "raw": text, "size": len(data), "received_at": when}
        with self._cv:
            self._datagrams += 1
            self._problems += probs
            if rec:
                self._docs.append(rec)
            self._cv.notify_all()

    # -- queries --
    def records(self):
        with self._lock:
            return list(self._docs)

    def docs(self):
        return [r["doc"] for r in self.records()]

    def segments(self):
        return [d for d in self.docs() if d.get("type") != "subsegment"]

    def independent_subsegments(self):
        return [d for d in self.docs() if d.get("type") == "subsegment"]

    def problems(self):
        with self._lock:
            return list(self._problems)

    def datagrams(self):
        with self._lock:
            return self._datagrams

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred([r["doc"] for r in self._docs]):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            return [r["doc"] for r in self._docs]

    def wait_for_segments(self, n, timeout=10.0):
        self.wait_for(lambda ds: sum(1 for d in ds if d.get("type") != "subsegment") >= n, timeout)
        return self.segments()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2000)
    a = ap.parse_args()
    rx = XRayReceiver(a.host, a.port)
    print("listening on udp %s:%d" % (a.host, rx.port), file=sys.stderr, flush=True)
    seen = 0
    rx.start()
    try:
        while True:
            time.sleep(0.2)
            recs = rx.records()
            for r in recs[seen:]:
                print(json.dumps(r["doc"], sort_keys=True), flush=True)
            seen = len(recs)
            for p in rx.problems():
                print("problem: " + p, file=sys.stderr)
            rx._problems = []
    except KeyboardInterrupt:
        pass
    rx.stop()


if __name__ == "__main__":
    main()
