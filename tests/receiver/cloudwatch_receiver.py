#!/usr/bin/python3
"""cloudwatch_receiver.py - a local stand-in for the CloudWatch Logs API.

    from cloudwatch_receiver import CloudWatchReceiver
    rx = CloudWatchReceiver(access_key="AKID", secret_key="S", region="us-east-1",
                            session_token=None).start()
    ... AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=rx.endpoint ...
    events = rx.wait_for_events(3, timeout=10)
    rx.stop()

As a script: prints the port and serves until killed.

What it checks, like the service (JSON 1.1 protocol, SigV4):
- POST /, Content-Type application/x-amz-json-1.1, X-Amz-Target
  Logs_20140328.<Action> for CreateLogGroup, CreateLogStream,
  PutLogEvents (else UnknownOperationException).
- The SigV4 signature, recomputed from the received request with the
  known secret (AWS General Reference, "Create a signed AWS API request":
  canonical request, string to sign, derived key): algorithm
  AWS4-HMAC-SHA256, credential scope <key>/<date>/<region>/logs/aws4_request,
  SignedHeaders holding host, x-amz-date, content-type, x-amz-target and,
  when a session token is expected, x-amz-security-token equal to it; the
  payload hash of the body as received. A mismatch answers 400
  InvalidSignatureException / UnrecognizedClientException.
- Group and stream existence: CreateLogGroup of an existing group and
  CreateLogStream of an existing stream answer ResourceAlreadyExistsException;
  CreateLogStream in a missing group and PutLogEvents to a missing group or
  stream answer ResourceNotFoundException.
- PutLogEvents limits: at most 10,000 events, at most 1,048,576 bytes
  counting UTF-8 message bytes + 26 per event, events in timestamp order,
  a span of at most 24 h, each event at most 256 KB with its 26 bytes;
  a breach answers InvalidParameterException and is listed in problems().

One-shot answers (push_mode): 'throttle' (400 ThrottlingException),
'503' (ServiceUnavailableException), 'notfound' (ResourceNotFoundException
for the next put, without touching state). Every request is kept in
requests().

Fault modes (set_mode(), switchable at runtime; one-shot push_mode()
answers win for puts): 'ok'; for PutLogEvents only: 'throttle', '503',
'500' (InternalFailure), 'invalid' (400 InvalidParameterException);
for every request: 'hang' (never answer until stop()), 'close' (close
without an answer), 'truncate' (a 200 head and part of its body, then
close). Requests answered by hang/close/truncate are kept with status 0.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BATCH_BYTES = 1048576
EVENT_OVERHEAD = 26
MAX_EVENTS = 10000
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_EVENT_BYTES = 262144


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_request(method, path, query, headers, signed, body):
    """headers: list of (name, value) as received. AWS: lower-case names,
    values trimmed with inner runs of spaces collapsed, several values of
    one name joined by commas, sorted by name."""
    vals = {}
    for k, v in headers:
        vals.setdefault(k.lower(), []).append(" ".join(v.strip().split()))
    lines = ["%s:%s\n" % (h, ",".join(vals.get(h, []))) for h in signed]
    if query:
        pairs = sorted(tuple(p.split("=", 1)) if "=" in p else (p, "") for p in query.split("&"))
        cq = "&".join("%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    else:
        cq = ""
    cpath = quote(path or "/", safe="/-_.~")
    return "\n".join([method, cpath, cq, "".join(lines), ";".join(signed),
                      hashlib.sha256(body).hexdigest()])


def verify_sigv4(method, path, query, headers, body, *, access_key, secret_key, region,
                 service="logs", session_token=None, required=()):
    """None when the request is signed correctly, else the reason."""
    hd = {}
    for k, v in headers:
        hd.setdefault(k.lower(), v)
    auth = hd.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no AWS4-HMAC-SHA256 Authorization header"
    parts = {}
    for p in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = p.strip().partition("=")
        parts[k] = v
    cred = parts.get("Credential", "").split("/")
    if len(cred) != 5:
        return "bad Credential %r" % parts.get("Credential")
    akid, date, c_region, c_service, term = cred
    if akid != access_key:
        return "unknown access key"
    if c_region != region or c_service != service or term != "aws4_request":
        return "bad credential scope %s/%s/%s" % (c_region, c_service, term)
    amz_date = hd.get("x-amz-date", "")
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "bad X-Amz-Date %r" % amz_date
    if amz_date[:8] != date:
        return "X-Amz-Date does not match the credential date"
    if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 900:
        return "X-Amz-Date more than 15 minutes off"
    signed = parts.get("SignedHeaders", "").split(";")
    if signed != sorted(signed):
        return "SignedHeaders not sorted"
    for h in ("host", "x-amz-date") + tuple(required):
        if h not in signed:
            return "%s not signed" % h
    for h in signed:
        if h not in hd:
            return "signed header %s missing" % h
    if session_token is not None:
        if hd.get("x-amz-security-token") != session_token:
            return "X-Amz-Security-Token missing or wrong"
        if "x-amz-security-token" not in signed:
            return "x-amz-security-token not signed"
    elif "x-amz-security-token" in hd:
        return "unexpected X-Amz-Security-Token"
    creq = canonical_request(method, path, query, headers, signed, body)
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    want = hmac.new(signing_key(secret_key, date, region, service), sts.encode(),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts.get("Signature", "")):
        return "signature mismatch (canonical request %r)" % creq
    return None


def check_put(body):
    """Limit breaches of one PutLogEvents body (empty list when fine)."""
    probs = []
    evs = body.get("logEvents")
    if not isinstance(evs, list) or not evs:
        return ["logEvents missing or empty"]
    if len(evs) > MAX_EVENTS:
        probs.append("%d events > %d" % (len(evs), MAX_EVENTS))
    size = 0
    for i, e in enumerate(evs):
        if not isinstance(e, dict) or not isinstance(e.get("timestamp"), int) \
                or not isinstance(e.get("message"), str) or not e["message"]:
            probs.append("event %d malformed" % i)
            continue
        n = len(e["message"].encode()) + EVENT_OVERHEAD
        if n > MAX_EVENT_BYTES:
            probs.append("event %d is %d bytes > %d" % (i, n, MAX_EVENT_BYTES))
        size += n
    if size > MAX_BATCH_BYTES:
        probs.append("batch %d bytes > %d" % (size, MAX_BATCH_BYTES))
    ts = [e.get("timestamp") for e in evs if isinstance(e, dict) and isinstance(e.get("timestamp"), int)]
    if ts != sorted(ts):
        probs.append("events not in timestamp order")
    if ts and ts[-1] - ts[0] > MAX_SPAN_MS:
        probs.append("batch spans more than 24 h")
    return probs


class CloudWatchReceiver:
    def __init__(self, *, access_key, secret_key, region, session_token=None, port=0,
                 host="127.0.0.1"):
        self.access_key, self.secret_key = access_key, secret_key
        self.region, self.session_token = region, session_token
        self._lock = threading.Condition()
        self._modes = []
        self.mode = "ok"
        self._stopping = threading.Event()
        self._requests = []
        self._events = []   # (group, stream, event)
        self._problems = []
        self.groups = {}    # group -> {stream: [events]}
        rx = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if rx._transport_fault(self, body):
                    return
                path, _, query = self.path.partition("?")
                code, ans = rx._handle(path, query, list(self.headers.items()), body)
                data = json.dumps(ans).encode()
                self.send_response(code)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._srv = ThreadingHTTPServer((host, port), H)
        self._srv.daemon_threads = True
        self.port = self._srv.server_address[1]
        self.endpoint = "http://%s:%d" % (host, self.port)

    def _transport_fault(self, handler, body):
        """hang / close / truncate (set_mode): True when handled so."""
        with self._lock:
            mode = self.mode
            if mode not in ("hang", "close", "truncate"):
                return False
            hd = {k.lower(): v for k, v in handler.headers.items()}
            action = hd.get("x-amz-target", "")[len(TARGET_PREFIX):]
            self._requests.append({"action": action, "headers": list(handler.headers.items()),
                                   "body": body, "status": 0, "error": mode})
            self._lock.notify_all()
        handler.close_connection = True
        if mode == "hang":
            self._stopping.wait(3600)
            return True
        if mode == "truncate":
            handler.wfile.write(("HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                                 "Content-Length: 100\r\n\r\n{" % CONTENT_TYPE).encode())
            handler.wfile.flush()
        try:
            handler.connection.shutdown(2)
        except OSError:
            pass
        return True

    def _err(self, code, typ, msg):
        return code, {"__type": typ, "message": msg}

    def _handle(self, path, query, headers, body):
        hd = {k.lower(): v for k, v in headers}
        target = hd.get("x-amz-target", "")
        action = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else target
        rec = {"action": action, "headers": headers, "body": body, "status": None, "error": None}
        with self._lock:
            self._requests.append(rec)
            code, ans = self._dispatch(rec, path, query, headers, hd, action, body)
            rec["status"] = code
            if code != 200:
                rec["error"] = ans.get("__type")
            self._lock.notify_all()
        return code, ans

    def _dispatch(self, rec, path, query, headers, hd, action, body):
        why = verify_sigv4("POST", path, query, headers, body, access_key=self.access_key,
                           secret_key=self.secret_key, region=self.region,
                           session_token=self.session_token,
                           required=("content-type", "x-amz-target"))
        rec["sig_error"] = why
        if why:
            self._problems.append("signature: " + why)
            return self._err(400, "InvalidSignatureException", why)
        if path != "/":
            return self._err(404, "UnknownOperationException", "path %s" % path)
        if hd.get("content-type") != CONTENT_TYPE:
            return self._err(400, "SerializationException", "content-type %r" % hd.get("content-type"))
        try:
            req = json.loads(body)
        except ValueError as e:
            self._problems.append("bad JSON: %s" % e)
            return self._err(400, "SerializationException", str(e))
        rec["json"] = req
        group, stream = req.get("logGroupName"), req.get("logStreamName")
        if action == "CreateLogGroup":
            if group in self.groups:
                return self._err(400, "ResourceAlreadyExistsException", "group exists")
            self.groups[group] = {}
            return 200, {}
        if action == "CreateLogStream":
            if group not in self.groups:
                return self._err(400, "ResourceNotFoundException", "no group")
            if stream in self.groups[group]:
                return self._err(400, "ResourceAlreadyExistsException", "stream exists")
            self.groups[group][stream] = []
            return 200, {}
        if action != "PutLogEvents":
            return self._err(400, "UnknownOperationException", action)
        m = self._modes.pop(0) if self._modes else self.mode
        if m == "throttle":
            return self._err(400, "ThrottlingException", "Rate exceeded")
        if m == "503":
            return self._err(503, "ServiceUnavailableException", "try again")
        if m == "500":
            return self._err(500, "InternalFailure", "internal error")
        if m == "invalid":
            return self._err(400, "InvalidParameterException", "bad request")
        if m == "notfound":
            return self._err(400, "ResourceNotFoundException", "gone")
        if group not in self.groups or stream not in self.groups[group]:
            return self._err(400, "ResourceNotFoundException", "The specified log stream does not exist.")
        probs = check_put(req)
        if probs:
            self._problems.extend(probs)
            return self._err(400, "InvalidParameterException", "; ".join(probs))
        for e in req["logEvents"]:
            self.groups[group][stream].append(e)
            self._events.append((group, stream, e))
        return 200, {}

    # -- control --
    def start(self):
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
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

    def delete_stream(self, group, stream):
        with self._lock:
            self.groups.get(group, {}).pop(stream, None)

    # -- results --
    def requests(self):
        with self._lock:
            return list(self._requests)

    def problems(self):
        with self._lock:
            return list(self._problems)

    def events(self):
        with self._lock:
            return list(self._events)

    def wait_for_events(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._events) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return list(self._events)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--access-key", default="AKIDEXAMPLE")
    ap.add_argument("--secret-key", default="secret")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--session-token")
    a = ap.parse_args()
    rx = CloudWatchReceiver(access_key=a.access_key, secret_key=a.secret_key, region=a.region,
                            session_token=a.session_token, port=a.port).start()
    print(rx.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        rx.stop()


if __name__ == "__main__":
    sys.exit(main())
