#!/usr/bin/python3
"""otlp_receiver.py - a local OTLP/HTTP trace receiver for cruddur's tests.

Usable as a module:

    from otlp_receiver import OTLPReceiver
    rx = OTLPReceiver()            # port 0 = ephemeral
    rx.start()
    ... point OTEL_EXPORTER_OTLP_ENDPOINT at f"http://127.0.0.1:{rx.port}" ...
    spans = rx.wait_for_spans(3, timeout=5)
    rx.stop()

and as a script:

    /usr/bin/python3 tests/receiver/otlp_receiver.py --port 4318 --out spans.jsonl

(prints the port it listens on, then one JSON line per span is appended to
--out; runs until SIGINT/SIGTERM).

Accepted: POST /v1/traces with Content-Type exactly application/x-protobuf
(ExportTraceServiceRequest, decoded with the protoc-generated modules in
build/proto_py) or application/json (OTLP/JSON: lowerCamelCase keys, hex ids,
int64 as decimal strings). Content-Encoding: gzip (or identity) is supported.
Request bodies may use Content-Length or chunked transfer coding.

Everything else is answered 404/405/415/400 and recorded as a bad request.
Deviations from the OTLP/JSON rules that a tolerant collector would still
accept (int64 as JSON numbers, enum names, uppercase hex ids, duplicate
attribute keys...) are accepted but listed in the request's "problems", so
tests can assert there are none.

Fault modes (attribute `mode`, or queued one-shot modes with push_mode()):
  'ok'                      200 + empty ExportTraceServiceResponse
  'status:<code>[:<ra>]'    answer <code> (e.g. 503) with optional
                            Retry-After: <ra>; spans are NOT stored (they are
                            counted in the request record as rejected)
  'hang'                    never answer (until stop())
  'slow:<ms>'               wait <ms> then behave as 'ok'
  'garbage'                 write non-HTTP bytes and close
  'close'                   close the connection without any answer
  'truncate'                send the status line, headers and part of the
                            body of a 200, then close (mid-response)
set_mode() switches the mode at runtime (a back end that goes away and
comes back); a connection already hanging stays hung until stop().
"""

import argparse
import gzip
import json
import os
import signal
import socket
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PROTO_PY = os.path.join(_REPO, "build", "proto_py")
if _PROTO_PY not in sys.path:
    sys.path.insert(0, _PROTO_PY)

_pb = None  # lazily imported generated modules


def _proto():
    """Import the generated protobuf modules (build/proto_py)."""
    global _pb
    if _pb is None:
        try:
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
        except ImportError as e:  # pragma: no cover - environment problem
            raise ImportError(
                "cannot import the generated OTLP modules from %s (%s); run "
                "`make build/proto_py/opentelemetry/proto/collector/trace/v1/"
                "trace_service_pb2.py`" % (_PROTO_PY, e))
        _pb = trace_service_pb2
    return _pb


PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_BODY = 64 * 1024 * 1024


class DecodeError(Exception):
    pass


# ---------------------------------------------------------------- protobuf

def _pb_any(v):
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return bool(v.bool_value)
    if which == "int_value":
        return int(v.int_value)
    if which == "double_value":
        return float(v.double_value)
    if which == "bytes_value":
        return bytes(v.bytes_value)
    if which == "array_value":
        return [_pb_any(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_any(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _pb_attrs(kvs, where, problems):
    out = {}
    for kv in kvs:
        if kv.key in out:
            problems.append("duplicate attribute key %r in %s" % (kv.key, where))
        if not kv.HasField("value") or kv.value.WhichOneof("value") is None:
            problems.append("attribute %r in %s has an empty AnyValue" % (kv.key, where))
        out[kv.key] = _pb_any(kv.value)
    return out


def decode_protobuf(body, problems):
    """ExportTraceServiceRequest bytes -> list of flattened span dicts."""
    pb = _proto()
    req = pb.ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise DecodeError("protobuf decode: %s" % e)
    spans = []
    for rs in req.resource_spans:
        resource = _pb_attrs(rs.resource.attributes, "resource", problems)
        for ss in rs.scope_spans:
            for s in ss.spans:
                where = "span %s" % s.name
                for label, b, n in (("trace_id", s.trace_id, 16), ("span_id", s.span_id, 8)):
                    if len(b) != n:
                        problems.append("%s: %s has %d bytes, want %d" % (where, label, len(b), n))
                if len(s.parent_span_id) not in (0, 8):
                    problems.append("%s: parent_span_id has %d bytes" % (where, len(s.parent_span_id)))
                spans.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "trace_state": s.trace_state,
                    "name": s.name,
                    "kind": int(s.kind),
                    "start_ns": int(s.start_time_unix_nano),
                    "end_ns": int(s.end_time_unix_nano),
                    "flags": int(s.flags),
                    "status_code": int(s.status.code),
                    "status_message": s.status.message,
                    "attributes": _pb_attrs(s.attributes, where, problems),
                    "dropped_attributes_count": int(s.dropped_attributes_count),
                    "events": len(s.events),
                    "links": len(s.links),
                    "resource": dict(resource),
                    "scope_name": ss.scope.name,
                    "scope_version": ss.scope.version,
                })
    return spans


# ---------------------------------------------------------------- OTLP/JSON

_SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
               "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_HEX = set("0123456789abcdef")


def _j_int64(v, what, problems, unsigned=False):
    if v is None:
        return 0
    if isinstance(v, bool):
        raise DecodeError("%s: boolean where an integer was expected" % what)
    if isinstance(v, int):
        problems.append("%s: 64-bit integer as a JSON number (OTLP/JSON wants a string)" % what)
        return v
    if isinstance(v, str):
        try:
            n = int(v, 10)
        except ValueError:
            raise DecodeError("%s: not a decimal integer string: %r" % (what, v))
        if unsigned and n < 0:
            raise DecodeError("%s: negative: %r" % (what, v))
        return n
    if isinstance(v, float) and v.is_integer():
        problems.append("%s: integer as a JSON float" % what)
        return int(v)
    raise DecodeError("%s: bad integer %r" % (what, v))


def _j_int32(v, what, problems):
    if v is None:
        return 0
    if isinstance(v, bool):
        raise DecodeError("%s: boolean where an integer was expected" % what)
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        problems.append("%s: 32-bit integer as a string" % what)
        try:
            return int(v, 10)
        except ValueError:
            raise DecodeError("%s: bad integer %r" % (what, v))
    raise DecodeError("%s: bad integer %r" % (what, v))


def _j_enum(v, names, what, problems):
    if v is None:
        return 0
    if isinstance(v, str):
        if v in names:
            problems.append("%s: enum as a name %r (OTLP/JSON wants an integer)" % (what, v))
            return names[v]
        raise DecodeError("%s: unknown enum %r" % (what, v))
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise DecodeError("%s: bad enum %r" % (what, v))


def _j_id(v, nbytes, what, problems, optional=False):
    if v is None or v == "":
        if not optional:
            problems.append("%s: missing" % what)
        return ""
    if not isinstance(v, str):
        raise DecodeError("%s: not a string: %r" % (what, v))
    if len(v) != 2 * nbytes:
        problems.append("%s: %d hex chars, want %d (%r)" % (what, len(v), 2 * nbytes, v))
    low = v.lower()
    if not set(low) <= _HEX:
        raise DecodeError("%s: not hex (base64 instead of hex?): %r" % (what, v))
    if low != v:
        problems.append("%s: uppercase hex %r" % (what, v))
    return low


def _j_any(v, what, problems):
    if not isinstance(v, dict):
        raise DecodeError("%s: AnyValue is not an object: %r" % (what, v))
    if len(v) == 0:
        problems.append("%s: empty AnyValue" % what)
        return None
    if len(v) > 1:
        problems.append("%s: AnyValue with several members %r" % (what, sorted(v)))
    if "stringValue" in v:
        if not isinstance(v["stringValue"], str):
            raise DecodeError("%s: stringValue not a string" % what)
        return v["stringValue"]
    if "boolValue" in v:
        if not isinstance(v["boolValue"], bool):
            raise DecodeError("%s: boolValue not a boolean" % what)
        return v["boolValue"]
    if "intValue" in v:
        return _j_int64(v["intValue"], what + ".intValue", problems)
    if "doubleValue" in v:
        d = v["doubleValue"]
        if isinstance(d, bool) or not isinstance(d, (int, float, str)):
            raise DecodeError("%s: bad doubleValue" % what)
        return float(d)
    if "arrayValue" in v:
        vals = (v["arrayValue"] or {}).get("values", [])
        return [_j_any(x, what + "[]", problems) for x in vals]
    if "kvlistValue" in v:
        return _j_attrs((v["kvlistValue"] or {}).get("values", []), what, problems)
    if "bytesValue" in v:
        import base64
        return base64.b64decode(v["bytesValue"])
    problems.append("%s: unknown AnyValue member(s) %r" % (what, sorted(v)))
    return None


def _j_attrs(kvs, where, problems):
    out = {}
    if kvs is None:
        return out
    if not isinstance(kvs, list):
        raise DecodeError("%s: attributes is not a list" % where)
    for kv in kvs:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise DecodeError("%s: bad KeyValue %r" % (where, kv))
        k = kv["key"]
        if k in out:
            problems.append("duplicate attribute key %r in %s" % (k, where))
        if "value" not in kv:
            problems.append("attribute %r in %s has no value" % (k, where))
            out[k] = None
        else:
            out[k] = _j_any(kv["value"], "%s attribute %r" % (where, k), problems)
    return out


def _j_list(obj, key, where):
    v = obj.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError("%s.%s is not a list" % (where, key))
    return v


def _j_obj(obj, key, where):
    v = obj.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise DecodeError("%s.%s is not an object" % (where, key))
    return v


def decode_json(body, problems):
    """OTLP/JSON ExportTraceServiceRequest -> list of flattened span dicts."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DecodeError("JSON decode: %s" % e)
    if not isinstance(doc, dict):
        raise DecodeError("JSON: top level is not an object")
    if "resource_spans" in doc:
        problems.append("snake_case key resource_spans (OTLP/JSON wants lowerCamelCase)")
    spans = []
    for rs in _j_list(doc, "resourceSpans", "request"):
        resource = _j_attrs(_j_obj(rs, "resource", "resourceSpans").get("attributes"),
                            "resource", problems)
        if "scope_spans" in rs:
            problems.append("snake_case key scope_spans")
        for ss in _j_list(rs, "scopeSpans", "resourceSpans"):
            scope = _j_obj(ss, "scope", "scopeSpans")
            for s in _j_list(ss, "spans", "scopeSpans"):
                if not isinstance(s, dict):
                    raise DecodeError("span is not an object")
                where = "span %s" % s.get("name")
                for snake in ("trace_id", "span_id", "parent_span_id", "start_time_unix_nano"):
                    if snake in s:
                        problems.append("%s: snake_case key %s" % (where, snake))
                status = _j_obj(s, "status", where)
                spans.append({
                    "trace_id": _j_id(s.get("traceId"), 16, where + " traceId", problems),
                    "span_id": _j_id(s.get("spanId"), 8, where + " spanId", problems),
                    "parent_span_id": _j_id(s.get("parentSpanId"), 8, where + " parentSpanId",
                                            problems, optional=True),
                    "trace_state": s.get("traceState", "") or "",
                    "name": s.get("name", "") or "",
                    "kind": _j_enum(s.get("kind"), _SPAN_KINDS, where + " kind", problems),
                    "start_ns": _j_int64(s.get("startTimeUnixNano"), where + " startTimeUnixNano",
                                         problems, unsigned=True),
                    "end_ns": _j_int64(s.get("endTimeUnixNano"), where + " endTimeUnixNano",
                                       problems, unsigned=True),
                    "flags": _j_int32(s.get("flags"), where + " flags", problems),
                    "status_code": _j_enum(status.get("code"), _STATUS_CODES,
                                           where + " status.code", problems),
                    "status_message": status.get("message", "") or "",
                    "attributes": _j_attrs(s.get("attributes"), where, problems),
                    "dropped_attributes_count": _j_int32(s.get("droppedAttributesCount"),
                                                         where + " droppedAttributesCount",
                                                         problems),
                    "events": len(_j_list(s, "events", where)),
                    "links": len(_j_list(s, "links", where)),
                    "resource": dict(resource),
                    "scope_name": scope.get("name", "") or "",
                    "scope_version": scope.get("version", "") or "",
                })
    return spans


# ---------------------------------------------------------------- server

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "otlp-test-receiver"
    sys_version = ""
    timeout = 60  # seconds of socket inactivity before a connection is dropped

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # quiet
        if self.server.receiver.verbose:
            sys.stderr.write("receiver: " + (fmt % args) + "\n")

    # -- body reading (Content-Length or chunked) --
    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise DecodeError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(data), "chunked"
                if len(data) + size > MAX_BODY:
                    raise DecodeError("body too large")
                data += self.rfile.read(size)
                self.rfile.readline(3)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b"", None
        n = int(cl)
        if n < 0 or n > MAX_BODY:
            raise DecodeError("bad Content-Length %r" % cl)
        return self.rfile.read(n), "length"

    def _answer(self, code, body=b"", ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _handle(self):
        rx = self.server.receiver
        t0 = time.time()
        rec = {
            "time": t0,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "header_list": [(k, v) for k, v in self.headers.items()],
            "content_type": self.headers.get("Content-Type"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "body_size": 0,          # bytes on the wire
            "decoded_size": 0,       # after Content-Encoding
            "transfer": None,
            "status": None,
            "mode": None,
            "error": None,
            "problems": [],
            "spans": 0,
            "rejected_spans": 0,
            "peer": self.client_address,
        }
        mode = rx._next_mode()
        rec["mode"] = mode
        try:
            body, rec["transfer"] = self._read_body()
        except (DecodeError, ValueError) as e:
            rec["error"] = "body: %s" % e
            rec["status"] = 400
            rx._record(rec, [])
            self.close_connection = True
            self._answer(400, b"bad body\n")
            return
        rec["body_size"] = len(body)

        if mode == "close":
            rec["status"] = 0
            rx._record(rec, [])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "garbage":
            rec["status"] = 0
            rx._record(rec, [])
            self.close_connection = True
            self.wfile.write(b"\x00\xffNOT HTTP AT ALL\r\n\x17\x03\x03" + os.urandom(32))
            self.wfile.flush()
            return
        if mode == "truncate":
            rec["status"] = 0
            rx._record(rec, [])
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                             b"Content-Length: 100\r\n\r\npartial")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "hang":
            rec["status"] = 0
            rx._record(rec, [])
            rx._stopping.wait(3600)
            self.close_connection = True
            return
        if mode.startswith("slow:"):
            time.sleep(int(mode.split(":", 1)[1]) / 1000.0)

        if self.command != "POST":
            rec["status"] = 405
            rec["error"] = "method %s" % self.command
            rx._record(rec, [])
            self._answer(405, b"POST only\n", extra=[("Allow", "POST")])
            return
        if self.path.split("?", 1)[0] != "/v1/traces":
            rec["status"] = 404
            rec["error"] = "path %s" % self.path
            rx._record(rec, [])
            self._answer(404, b"not found\n")
            return
        ctype = rec["content_type"]
        if ctype not in (PROTOBUF, JSON):
            rec["status"] = 415
            rec["error"] = "content type %r" % (ctype,)
            rx._record(rec, [])
            self._answer(415, b"unsupported content type\n")
            return
        enc = (rec["content_encoding"] or "").strip().lower()
        try:
            if enc == "gzip":
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError, zlib.error) as e:
                    raise DecodeError("gzip: %s" % e)
            elif enc not in ("", "identity"):
                rec["status"] = 415
                rec["error"] = "content encoding %r" % enc
                rx._record(rec, [])
                self._answer(415, b"unsupported content encoding\n")
                return
            rec["decoded_size"] = len(body)
            if ctype == PROTOBUF:
                spans = decode_protobuf(body, rec["problems"])
            else:
                spans = decode_json(body, rec["problems"])
        except DecodeError as e:
            rec["status"] = 400
            rec["error"] = str(e)
            rx._record(rec, [])
            self._answer(400, str(e).encode() + b"\n")
            return

        if mode.startswith("status:"):
            parts = mode.split(":")
            code = int(parts[1])
            extra = [("Retry-After", parts[2])] if len(parts) > 2 and parts[2] else []
            rec["status"] = code
            rec["rejected_spans"] = len(spans)
            rx._record(rec, [])
            self._answer(code, b"", ctype=ctype, extra=extra)
            return

        for s in spans:
            s["content_type"] = ctype
            s["content_encoding"] = rec["content_encoding"] or ""
            s["request_headers"] = dict(rec["headers"])
            s["received_at"] = t0
        rec["status"] = 200
        rec["spans"] = len(spans)
        rx._record(rec, spans)
        if ctype == PROTOBUF:
            resp = _proto().ExportTraceServiceResponse().SerializeToString()
        else:
            resp = b"{}"
        self._answer(200, resp, ctype=ctype)

    def do_POST(self):
        self._handle()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        if self.receiver.verbose:
            super().handle_error(request, client_address)


class OTLPReceiver:
    """In-process OTLP/HTTP trace receiver. Thread-safe accessors."""

    VALID_MODE_PREFIXES = ("ok", "status:", "hang", "slow:", "garbage", "close", "truncate")

    def __init__(self, port=0, host="127.0.0.1", mode="ok", out=None, verbose=False):
        self.host = host
        self._want_port = port
        self.port = None
        self.mode = mode
        self.out = out
        self.verbose = verbose
        self._spans = []
        self._requests = []
        self._mode_queue = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        _proto()  # fail early if the generated modules are missing

    # -- lifecycle --
    def start(self):
        self._server = _Server((self.host, self._want_port), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="otlp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.port)

    # -- modes --
    @staticmethod
    def _check_mode(mode):
        if not any(mode == p or (p.endswith(":") and mode.startswith(p))
                   for p in OTLPReceiver.VALID_MODE_PREFIXES):
            raise ValueError("unknown receiver mode %r" % mode)
        return mode

    def set_mode(self, mode):
        with self._cond:
            self.mode = self._check_mode(mode)

    def push_mode(self, *modes):
        """Queue one-shot modes used by the next requests, then `mode`."""
        with self._cond:
            self._mode_queue.extend(self._check_mode(m) for m in modes)

    def _next_mode(self):
        with self._cond:
            if self._mode_queue:
                return self._mode_queue.pop(0)
            return self._check_mode(self.mode)

    # -- recording --
    def _record(self, rec, spans):
        with self._cond:
            self._requests.append(rec)
            self._spans.extend(spans)
            self._cond.notify_all()
        if self.out and spans:
            with open(self.out, "a") as f:
                for s in spans:
                    f.write(json.dumps(s, default=_json_default) + "\n")

    def spans(self):
        with self._cond:
            return list(self._spans)

    def requests(self):
        with self._cond:
            return list(self._requests)

    def bad_requests(self):
        """Requests that were not accepted as valid exports."""
        with self._cond:
            return [r for r in self._requests
                    if r["error"] is not None or r["status"] in (400, 404, 405, 415)]

    def problems(self):
        """All format deviations noted in accepted or rejected requests."""
        with self._cond:
            return [p for r in self._requests for p in r["problems"]]

    def clear(self):
        with self._cond:
            self._spans = []
            self._requests = []

    def wait_for_spans(self, n, timeout=10.0):
        """Wait until at least n spans arrived (or timeout); return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._spans) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._spans)

    def wait_for_requests(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._requests)


def _json_default(o):
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def main(argv=None):
    ap = argparse.ArgumentParser(description="local OTLP/HTTP trace receiver")
    ap.add_argument("--port", type=int, default=4318, help="0 = ephemeral")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--out", help="append one JSON line per received span")
    ap.add_argument("--mode", default="ok", help="ok | status:CODE[:RETRY_AFTER] | hang | "
                    "slow:MS | garbage | close | truncate")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    rx = OTLPReceiver(port=a.port, host=a.host, mode=a.mode, out=a.out, verbose=a.verbose)
    rx.start()
    print(rx.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    last = 0
    while not done.wait(0.2):
        if a.verbose:
            reqs = rx.requests()
            for r in reqs[last:]:
                sys.stderr.write("%s %s -> %s spans=%d %s\n" % (
                    r["method"], r["path"], r["status"], r["spans"], r["error"] or ""))
            last = len(reqs)
    rx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
