"""test_hostile.py - issue #8: hostile and odd input through real servers.

Every input goes to the same server twice, once without the shim and once
under it, and the client must receive byte-for-byte the same answers (Date
aside; the served files are the same files, so ETag and Last-Modified are
too). The set: garbage, NUL bytes, the HTTP/2 preface, a TLS ClientHello,
30 KB of headers, 9 KB URLs, bare LF line endings, bad methods, bad and
smuggling-style chunked / Content-Length combinations, Expect:
100-continue, HEAD, Range, 1 MiB bodies both ways (sendfile on), malformed
traceparent / X-Amzn-Trace-Id, 50 pipelined requests in one write, a
request sent one byte per write and a response read one byte per read (and
dribbled one byte per write by nginx's upstream, so nginx's own client
reads it one byte per read).

Spans (the rule is in README.md, "Hostile and malformed input"):
- a well-formed request: exactly one SERVER span with the right attributes;
- a malformed one: no span, or one span whose method and status are what
  the client sent and what the server answered (a head the parser accepts
  but the server rejects, e.g. nginx's 400 to a duplicate Content-Length);
- bytes that are not HTTP/1.x (TLS, HTTP/2, garbage): no span, ever.

Plus: no nginx worker dies (same worker pid, no "exited on signal" in the
error log), and what nginx reads is never changed: it echoes the trace
headers it received, and what its proxy_pass sends upstream is compared
with and without the shim (a request that carries its own traceparent, even
a malformed one, must reach upstream untouched: the shim never injects over
the app's header).
"""

import os
import re
import socket
import ssl
import threading
import time
import zlib

import harness
from harness import Conn, Ctx, Req, timeout

BAD_UA = "cruddur-it/hostile-bad-"  # prefix of the malformed cases' User-Agent
MIB = 1 << 20
FIXED_MTIME = 1_700_000_000  # files served get this mtime: same ETag/Last-Modified
# nginx 1.22 defaults: large_client_header_buffers 4 8k, so a 9 KB request
# line is 414 and a 30 KB header line 400, while 30 lines of 1 KB fit.
HDR_30K = 30 * 1024
URL_9K = 9 * 1024


# ------------------------------------------------------------------ inputs

def _tls_client_hello():
    """A real TLS ClientHello, as a client would send it (built once: its
    random bytes must be the same for both runs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="hostile.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    assert data[:1] == b"\x16" and len(data) > 100, "no ClientHello generated"
    return data


TLS_HELLO = _tls_client_hello()
H2_PREFACE = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
              b"\x00\x00\x0c\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x00\x01\x00\x00"
              b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")


def _bad(name, head, body=b"", ua=True):
    """A malformed request: head lines (str, CRLF joined unless they carry
    their own line ends) with a per-case User-Agent, then body."""
    if isinstance(head, str):
        head = head.encode("latin-1")
    if ua:
        i = head.find(b"\n") + 1
        head = head[:i] + b"User-Agent: " + (BAD_UA + name).encode() + b"\r\n" + head[i:]
    return name, head + body


def _then(name, head, body, nxt="GET /index.html HTTP/1.1\r\nHost: hostile.test\r\n\r\n"):
    """An odd but acceptable body framing, then a well-formed request on
    the same connection (User-Agent ...-next): the two parsers must agree
    on where the next request starts."""
    n1, d1 = _bad(name, head, body)
    _, d2 = _bad(name + "-next", nxt)
    return n1, d1 + d2


# CL.TE: a body that is a whole request by Content-Length and an empty
# chunked body then a second request by Transfer-Encoding.
SMUGGLED = (b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nUser-Agent: " + (BAD_UA + "cl-te-smuggle-next").encode()
            + b"\r\nHost: hostile.test\r\n\r\n")


def malformed_cases():
    """(name, bytes). Sent each on its own connection, then the write side
    is shut down and everything up to the server's close is the answer."""
    h = "Host: hostile.test\r\n"
    cases = [
        ("garbage", b"\x8f\x03\xfe\xffgarbage \x01\x02 not http at all\r\n\r\n"),
        ("nul-only", b"\x00" * 64),
        ("tls-client-hello", TLS_HELLO),
        ("http2-preface", H2_PREFACE),
        ("json-line", b'{"hello": "world"}\n'),
        ("http09", b"GET /index.html\r\n"),
        _bad("nul-in-target", "GET /ind\x00ex.html HTTP/1.1\r\n" + h + "\r\n"),
        _bad("nul-in-value", "GET /index.html HTTP/1.1\r\n" + h + "X-A: a\x00b\r\n\r\n"),
        _bad("nul-in-name", "GET /index.html HTTP/1.1\r\n" + h + "X-\x00A: b\r\n\r\n"),
        _bad("header-30k-line", "GET /index.html HTTP/1.1\r\n" + h + "X-Big: " + "b" * HDR_30K + "\r\n\r\n"),
        _bad("url-9k", "GET /" + "u" * URL_9K + "?q=1 HTTP/1.1\r\n" + h + "\r\n"),
        _bad("method-lowercase", "get /index.html HTTP/1.1\r\n" + h + "\r\n"),
        _bad("method-badchar", "G(T /index.html HTTP/1.1\r\n" + h + "\r\n"),
        _bad("method-long", "A" * 40 + " /index.html HTTP/1.1\r\n" + h + "\r\n"),
        _bad("version-1.2", "GET /index.html HTTP/1.2\r\n" + h + "\r\n"),
        _bad("version-junk", "GET /index.html HTTP/1.1x\r\n" + h + "\r\n"),
        _bad("no-host-1.1", "GET /index.html HTTP/1.1\r\n\r\n"),
        _bad("two-hosts", "GET /index.html HTTP/1.1\r\n" + h + "Host: other.test\r\n\r\n"),
        _bad("space-before-colon", "POST /post HTTP/1.1\r\n" + h + "Content-Length : 5\r\n\r\nhello"),
        _bad("te-and-cl", "POST /post HTTP/1.1\r\n" + h +
             "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("cl-te-smuggle", "POST /post HTTP/1.1\r\n" + h +
             "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(SMUGGLED), SMUGGLED),
        _bad("dup-cl-same", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
             b"hello"),
        _bad("dup-cl-diff", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
             b"hello!"),
        _bad("cl-list", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 5, 5\r\n\r\n", b"hello"),
        _bad("cl-negative", "POST /post HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", b"hello"),
        _bad("cl-plus", "POST /post HTTP/1.1\r\n" + h + "Content-Length: +5\r\n\r\n", b"hello"),
        _bad("cl-overflow", "POST /post HTTP/1.1\r\n" + h +
             "Content-Length: 99999999999999999999999999\r\n\r\n", b"hello"),
        _bad("cl-int64-max", "POST /post HTTP/1.1\r\n" + h +
             "Content-Length: 9223372036854775807\r\n\r\n", b"hello"),
        _bad("cl-hex", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 0x5\r\n\r\n", b"hello"),
        _bad("cl-empty", "POST /post HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", b"hello"),
        _bad("chunked-not-last", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n",
             b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("gzip-chunked", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n",
             b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("te-xchunked", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n",
             b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("te-twice", "POST /post HTTP/1.1\r\n" + h +
             "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("te-http10", "POST /post HTTP/1.0\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
             b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("obs-fold-te", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n chunked\r\n\r\n",
             b"5\r\nhello\r\n0\r\n\r\n"),
        _bad("obs-fold-other", "GET /index.html HTTP/1.1\r\n" + h + "X-Folded: a\r\n  b\r\n\r\n"),
        _bad("chunk-negative", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
             b"-5\r\nhello\r\n0\r\n\r\n"),
        _bad("chunk-overflow", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
             b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        _bad("chunk-int64-max", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
             b"7fffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        _bad("chunk-no-crlf", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
             b"5\r\nhelloXX0\r\n\r\n"),
        _bad("chunk-bad-hex", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
             b"zz\r\nhello\r\n0\r\n\r\n"),
        _bad("bare-cr", "GET /index.html HTTP/1.1\r" + h + "\r\n"),
        _bad("lf-cr-mix", "GET /index.html HTTP/1.1\n" + h + "X-A: 1\n\r\n"),
        _bad("expect-bogus", "POST /post HTTP/1.1\r\n" + h + "Expect: 200-ok\r\nContent-Length: 5\r\n\r\n",
             b"hello"),
        _bad("connect", "CONNECT hostile.test:443 HTTP/1.1\r\n" + h + "\r\n"),
        _bad("range-garbage", "GET /1m.bin HTTP/1.1\r\n" + h + "Range: bytes=x-y\r\n\r\n"),
        _bad("range-unsat", "GET /1m.bin HTTP/1.1\r\n" + h + "Range: bytes=99999999-\r\n\r\n"),
        _bad("abs-form", "GET http://hostile.test/index.html HTTP/1.1\r\n" + h + "\r\n"),
        _bad("asterisk", "OPTIONS * HTTP/1.1\r\n" + h + "\r\n"),
        _bad("truncated-head", "GET /index.html HTTP/1.1\r\n" + h + "X-Cut: yes"),
        _bad("truncated-body", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 100\r\n\r\n", b"short"),
        _then("chunk-lf-only", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
              b"5\nhello\n0\n\n"),
        _then("chunk-size-ws", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
              b"5 \r\nhello\r\n0\r\n\r\n"),
        _then("chunk-ext", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
              b"5;a=b;c=\"d;e\"\r\nhello\r\n0;last\r\n\r\n"),
        _then("chunk-trailer", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
              b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\nContent-Length: 99\r\n\r\n"),
        _then("chunk-zeros", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
              b"0005\r\nhello\r\n000\r\n\r\n"),
        _then("chunk-upper-hex", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n",
              b"A\r\n0123456789\r\n0\r\n\r\n"),
        _then("te-case", "POST /post HTTP/1.1\r\n" + h + "Transfer-Encoding: ChUnKeD\r\n\r\n",
              b"5\r\nhello\r\n0\r\n\r\n"),
        _then("cl-zeros", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 005\r\n\r\n", b"hello"),
        _then("cl-zero", "POST /post HTTP/1.1\r\n" + h + "Content-Length: 0\r\n\r\n", b""),
        _then("get-with-body", "GET /index.html HTTP/1.1\r\n" + h + "Content-Length: 5\r\n\r\n", b"hello"),
        _then("head-then-get", "HEAD /1m.bin HTTP/1.1\r\n" + h + "\r\n", b""),
        _then("expect-no-wait", "POST /post HTTP/1.1\r\n" + h + "Expect: 100-continue\r\n"
              "Content-Length: 5\r\n\r\n", b"hello"),
        _then("empty-lines-between", "GET /index.html HTTP/1.1\r\n" + h + "\r\n", b"\r\n\r\n"),
        _then("http12", "GET /index.html HTTP/1.2\r\n" + h + "\r\n", b""),
        _then("bad-then-good", "GET /index.html HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", b""),
        _then("hdr-name-dot", "GET /index.html HTTP/1.1\r\n" + h + "X.Foo: 1\r\n\r\n", b""),
        _then("hdr-name-8bit", "GET /index.html HTTP/1.1\r\n" + h + "X-Caf\xe9: 1\r\n\r\n", b""),
        _then("hdr-name-junk-cl", "POST /post HTTP/1.1\r\n" + h + "{Content-Length}: 5\r\n"
              "Content-Length: 2\r\n\r\n", b"ok"),
        _then("hdr-no-colon-junk", "GET /index.html HTTP/1.1\r\n" + h + "@NoColon\r\n\r\n", b""),
        _bad("hdr-name-space", "GET /index.html HTTP/1.1\r\n" + h + "X Foo: 1\r\n\r\n"),
        _then("close-then-more", "GET /index.html HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n", b""),
        _then("http10-then-more", "GET /index.html HTTP/1.0\r\n" + h + "\r\n", b""),
        _bad("after-good", "GET /index.html HTTP/1.1\r\n" + h + "\r\n",
             b"\x16\x03\x01\x00\x05hello garbage after a good request\r\n\r\n"),
    ]
    return cases


def raw_exchange(port, data, read_size=65536, pieces=None, delay=0.0, wait=8.0):
    """Send data on a new connection, shut the write side, and return all
    bytes until the server closes. A reset after the last byte is noted
    (the bytes read before it are kept); a server that never closes ends
    the read after `wait` seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = bytearray()
    note = b""
    try:
        try:
            if pieces:
                for i in range(0, len(data), pieces):
                    s.sendall(data[i:i + pieces])
                    if delay:
                        time.sleep(delay)
            else:
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            note = b"<send-reset>"
        while True:
            try:
                d = s.recv(read_size)
            except ConnectionResetError:
                note += b"<reset>"
                break
            except socket.timeout:
                note += b"<open>"
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    return bytes(out) + note


def strip_volatile(raw):
    """Date differs between runs; nginx's default error pages and headers
    carry nothing else that varies."""
    return harness.strip_date(raw)


def statuses(raw):
    """Final status codes of the responses in raw (interim 1xx skipped)."""
    return [int(m) for m in re.findall(rb"(?m)^HTTP/1\.[01] (\d{3}) ", raw) if not m.startswith(b"1")]


def compare(ref, got, what):
    errs = []
    for name in ref:
        a, b = strip_volatile(ref[name]), strip_volatile(got.get(name, b"<missing>"))
        if a != b:
            k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
            errs.append("%s %s: differs at byte %d (len %d without the shim, %d with): %r vs %r" % (
                what, name, k, len(a), len(b), a[max(0, k - 30):k + 40], b[max(0, k - 30):k + 40]))
    if errs:
        raise AssertionError(harness.summarize(errs))


# ------------------------------------------------------------------ upstream

class Upstream:
    """A tiny HTTP/1.x upstream for nginx's proxy_pass: records each
    request's raw bytes by path and answers with a fixed response sent one
    byte per write (so nginx, the client, reads it one byte per read)."""

    BODY = b"upstream says hello\n"

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.got = {}
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            want = int(m.group(1)) if m else 0
            while len(rest) < want:
                d = c.recv(65536)
                if not d:
                    break
                rest += d
            path = head.split(b" ")[1].decode("latin-1")
            with self.lock:
                self.got.setdefault(path, []).append(head + b"\r\n\r\n" + rest)
            resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: yes\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(self.BODY)) + self.BODY
            for i in range(len(resp)):
                c.sendall(resp[i:i + 1])
                time.sleep(0.0005)
        except OSError:
            pass
        finally:
            c.close()

    def take(self):
        with self.lock:
            g, self.got = self.got, {}
        return g

    def close(self):
        self.stop = True
        self.sock.close()


# ------------------------------------------------------------------ nginx

class HostileNginx(harness.Nginx):
    """harness.Nginx plus a 1 MiB static file (sendfile), an echo of the
    trace headers nginx received, a proxy_pass to Upstream and room for
    1 MiB request bodies."""

    def __init__(self, ctx, prefix, upstream_port):
        super().__init__(ctx, prefix=prefix)
        self.upstream_port = upstream_port

    def write_files(self):
        super().write_files()
        one = os.path.join(self.html, "1m.bin")
        if not os.path.exists(one):
            with open(one, "wb") as f:
                f.write(bytes((65 + i * 7 % 26) for i in range(MIB)))
            os.chmod(one, 0o644)
        for fn in os.listdir(self.html):
            os.utime(os.path.join(self.html, fn), (FIXED_MTIME, FIXED_MTIME))
        with open(self.conf) as f:
            conf = f.read()
        extra = (
            "        client_max_body_size 8m;\n"
            "        location = /1m.bin { }\n"
            "        location = /echo { return 200 \"tp=[$http_traceparent] ts=[$http_tracestate] "
            "xa=[$http_x_amzn_trace_id]\\n\"; }\n"
            "        location /up/ { proxy_pass http://127.0.0.1:%d; }\n" % self.upstream_port)
        anchor = "        location / {"
        assert anchor in conf, "harness.Nginx config changed: no %r" % anchor
        conf = conf.replace(anchor, extra + anchor, 1)
        with open(self.conf, "w") as f:
            f.write(conf)

    def check_alive(self, worker_pid):
        """The same worker is still serving; nothing crashed."""
        errs = []
        if not harness.pid_alive(worker_pid):
            errs.append("nginx worker %d died" % worker_pid)
        kids = harness.child_pids(self.master_pid)
        if kids != [worker_pid]:
            errs.append("nginx workers are now %s, were [%d] (a worker was respawned)" % (kids, worker_pid))
        log = self.error_log()
        for ln in log.splitlines():
            if "exited on signal" in ln or "signal 11" in ln or "core dumped" in ln:
                errs.append("nginx error.log: %s" % ln.strip()[:200])
        if errs:
            raise AssertionError(harness.summarize(errs))


class ByteConn(Conn):
    """A Conn that reads the socket one byte per recv()."""

    def _fill(self):
        if self.eof:
            return False
        try:
            d = self.sock.recv(1)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True


class SlowConn(Conn):
    """A Conn with a 4 KB receive buffer that reads 4 KB at a time, slowly:
    the server's writes and sendfile() calls come back partial (EAGAIN for
    nginx's non-blocking socket) many times per response."""

    def connect(self):
        self.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        self.sock = s
        self.buf = bytearray()
        self.eof = False
        self.connects += 1
        Conn._ids[0] += 1
        self.conn_id = Conn._ids[0]
        self.local_port = s.getsockname()[1]

    def _fill(self):
        time.sleep(0.0002)
        if self.eof:
            return False
        d = self.sock.recv(4096)
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True


class RawReq(Req):
    """A Req whose bytes are given (bare LF line ends etc.), for span checks
    of well-formed but unusual requests."""

    def __init__(self, method, target, raw_fn, **kw):
        super().__init__(method, target, **kw)
        self.raw_fn = raw_fn

    def to_bytes(self, port):
        return self.raw_fn(self)


def bare_lf_req():
    return RawReq("GET", "/index.html", lambda r: (
        "GET /index.html HTTP/1.1\nHost: hostile.test\nUser-Agent: %s\n\n" % r.ua).encode(),
        host="hostile.test")


# Malformed trace headers: invalid per W3C / X-Ray, so a new trace starts,
# and nginx must still receive them exactly as sent.
BAD_TRACEPARENTS = [
    "00-%s-%s-01" % ("0" * 32, "1" * 16),            # all-zero trace id
    "00-%s-%s-01" % ("a" * 32, "0" * 16),            # all-zero parent id
    "ff-%s-%s-01" % ("a" * 32, "b" * 16),            # version ff
    "00-%s-%s-01" % ("A" * 32, "b" * 16),            # uppercase
    "00-%s-%s-0" % ("c" * 32, "d" * 16),             # short flags
    "00-%s-%s" % ("c" * 32, "d" * 16),               # no flags
    "00-%s-%s-01" % ("e" * 31 + "g", "f" * 16),      # non-hex
    "00-" + "a" * 200,                               # long, truncated by the cap
    "garbage \x7f\x80\xff value",                     # not even close
    "",                                              # empty
]
GOOD_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # same bytes both runs
BAD_XAMZN = [
    "Root=1-zzzzzzzz-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=1",
    "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1",  # short
    "Root=;;;;;;;;;;",
    "Root=1-5759e988-bd862e3fe1be46a994272793-toolong;Parent=53995c3f42cd8ad8",
    "Self=1-67891234-12456789abcdef012345678;Root=" + "9" * 300,
    "\xff\xfe;Sampled=?",
]


def wellformed_session(port, bare_lf=True):
    """The well-formed (if odd) requests; returns ({name: raw}, [Exchange],
    special) where special lists the exchanges whose span rewrites what was
    sent (see check_server_spans). bare_lf=False for a server that only
    knows CRLF (cserver)."""
    raws, exs, special = {}, [], []

    def add(name, ex_list):
        raws[name] = b"".join(e.resp.raw for e in ex_list)
        exs.extend(ex_list)

    def one(name, req, **kw):
        with Conn(port) as c:
            add(name, [c.request(req, **kw)])

    one("get", Req("GET", "/index.html"))
    one("head", Req("HEAD", "/index.html"))
    one("head-1m", Req("HEAD", "/1m.bin"))
    one("get-1m-sendfile", Req("GET", "/1m.bin"))
    one("cserver-1m-file", Req("GET", "/file?size=%d" % MIB))  # cserver's sendfile route
    one("range-1m", Req("GET", "/1m.bin", headers=[("Range", "bytes=100-1048000")]))
    one("range-suffix", Req("GET", "/1m.bin", headers=[("Range", "bytes=-10")]))
    one("range-multi", Req("GET", "/index.html", headers=[("Range", "bytes=0-1,5-6")]))
    one("range-416", Req("GET", "/index.html", headers=[("Range", "bytes=99999-")]))
    one("post-1m", Req("POST", "/post", body=b"p" * MIB))
    one("post-1m-chunked", Req("POST", "/post", chunks=[b"c" * 65536] * 16))
    one("post-1m-proxied", Req("POST", "/up/post1m", body=b"q" * MIB))
    with Conn(port) as c:
        add("expect-100", [c.request_expect100(Req("POST", "/up/expect", body=b"E" * 1000))])
    if bare_lf:
        one("bare-lf", bare_lf_req())
    one("headers-30k", Req("GET", "/index.html",
                           headers=[("X-Pad-%02d" % i, "h" * 1000) for i in range(30)]))
    one("unknown-method", Req("FOOBAR", "/nope"))
    one("options", Req("OPTIONS", "/index.html"))
    one("http10", Req("GET", "/index.html", version="1.0"))
    with Conn(port) as c:
        ex = c.request(Req("GET", "/" + "l" * 7000 + "?q=" + "v" * 100))
        add("url-7k", [ex])
        special.append((ex, None))
    # Bytes that are not UTF-8 in the target and the User-Agent: the span
    # (OTLP strings must be UTF-8) gets U+FFFD for each, the rest as sent.
    for i, (path, ua_tail) in enumerate([("/caf\xc3\xa9/\xff\xfe", "\xff"),
                                         ("/\xe2\x82", "\xc3\xa9 ok \xed\xa0\x80")]):
        req = Req("GET", path + "?q=\xe2\x82\xac")
        base = req.ua
        req.ua = base + ua_tail
        with Conn(port) as c:
            ex = c.request(req)
        add("utf8-%d" % i, [ex])
        # one U+FFFD per byte that does not start a valid sequence (otlp_pb.c)
        dec = lambda t: re.sub("[\udc80-\udcff]", "\ufffd", t.encode("latin-1").decode(  # noqa: E731
            "utf-8", "surrogateescape"))
        special.append((ex, {"url.path": dec(path), "url.query": dec("q=\xe2\x82\xac"),
                              "user_agent.original": dec(req.ua), "http.response.status_code": ex.resp.status,
                              "_ua": base}))
    # X-Forwarded-For: its first hop, trimmed; an empty first hop says
    # nothing, so the peer is the client.
    for i, (xff, want) in enumerate([("  203.0.113.9  , 10.0.0.1", "203.0.113.9"),
                                     (", 203.0.113.9", "127.0.0.1"),
                                     ("2001:db8::1", "2001:db8::1"),
                                     ("x" * 200, "x" * 63)]):
        with Conn(port) as c:
            ex = c.request(Req("GET", "/index.html", xff=xff))
        add("xff-%d" % i, [ex])
        special.append((ex, {"client.address": want, "http.response.status_code": ex.resp.status,
                              "_ua": ex.req.ua}))
    for i, tp in enumerate(BAD_TRACEPARENTS):
        one("bad-traceparent-%d" % i, Req("GET", "/echo", traceparent=tp, tracestate="k=v"))
    # the control: a valid one is continued (check_span checks it)
    one("good-traceparent", Req("GET", "/echo", traceparent=GOOD_TP, tracestate="k=v"))
    for i, xa in enumerate(BAD_XAMZN):
        one("bad-xamzn-%d" % i, Req("GET", "/echo", headers=[("X-Amzn-Trace-Id", xa)]))
    for i, tp in enumerate(BAD_TRACEPARENTS[:4]):
        one("proxied-bad-traceparent-%d" % i, Req("GET", "/up/tp%d" % i, traceparent=tp))
    one("proxied-bad-xamzn", Req("GET", "/up/xa", headers=[("X-Amzn-Trace-Id", BAD_XAMZN[0])]))
    one("proxied-plain", Req("GET", "/up/plain"))
    with Conn(port) as c:
        pl = c.pipeline([Req("GET", "/index.html" if i % 3 else "/nope?i=%d" % i) for i in range(50)])
        add("pipelined-50", pl)
    with Conn(port) as c:
        add("pipelined-one-byte-writes", c.pipeline(
            [Req("GET", "/index.html"), Req("POST", "/post", chunks=[b"ab", b"c"]),
             Req("HEAD", "/1m.bin"), Req("GET", "/nope")], split=1, delay=0.0005))
    with Conn(port) as c:
        add("http10-keepalive", [c.request(Req("GET", "/index.html", version="1.0",
                                               headers=[("Connection", "keep-alive")]))
                                 for _ in range(3)])
    with Conn(port) as c:
        add("one-byte-writes", [c.request(Req("GET", "/index.html?q=1"), pieces=1, delay=0.001)])
    with Conn(port) as c:
        add("one-byte-writes-body", [c.request(Req("POST", "/post", body=b"0123456789"), pieces=1,
                                               delay=0.001)])
    with SlowConn(port) as c:
        add("slow-reader-1m", [c.request(Req("GET", "/1m.bin")), c.request(Req("GET", "/file?size=%d" % MIB)),
                               c.request(Req("GET", "/index.html"))])
    with ByteConn(port) as c:
        add("one-byte-reads", [c.request(Req("GET", "/index.html"))])
    with Conn(port) as c:  # keep-alive across the odd ones
        add("keepalive-mix", [c.request(Req("HEAD", "/1m.bin")), c.request(Req("GET", "/1m.bin")),
                              c.request(bare_lf_req() if bare_lf else Req("GET", "/crlf")),
                              c.request(Req("GET", "/status/503"))])
    return raws, exs, special


def malformed_session(port, cases):
    return {name: raw_exchange(port, data) for name, data in cases}


# ------------------------------------------------------------------ span checks

def is_client(span):
    return span["kind"] != harness.SPAN_KIND_SERVER


def check_malformed_spans(spans, cases, answers, strict=True):
    """At most one span per malformed case (matched by its User-Agent), and
    when there is one it says what the client sent and what the server
    answered (no status when it answered nothing and closed). Spans nobody
    can match (garbage carries no User-Agent) are errors. strict: the
    server is strict (nginx), so what it served (< 400) was a request and
    must have its span; a lenient toy server (cserver) also serves bytes
    that are no HTTP/1.1 request (NUL in the target, "G(T"), which get
    none."""
    errs = []
    by_name = {}
    for s in spans:
        ua = s["attributes"].get("user_agent.original", "")
        if isinstance(ua, str) and ua.startswith(BAD_UA):
            by_name.setdefault(ua[len(BAD_UA):], []).append(s)
    parts = []  # (ua suffix, case, index of its answer, method sent)
    for name, data in cases:
        for i, key in enumerate((name, name + "-next")):
            if ("User-Agent: " + BAD_UA + key + "\r\n").encode() in data:
                # _then's second request is always a GET
                method = data.split(b" ", 1)[0].decode("latin-1") if i == 0 else "GET"
                parts.append((key, name, i, method))
        got = by_name.get(name, []) + by_name.get(name + "-next", [])
        print("case %-22s server %-12s spans %s" % (name, statuses(answers[name]) or "-", [
            s["attributes"].get("http.response.status_code") for s in got]))
    for key, name, idx, method in parts:
        got = by_name.pop(key, [])
        st = statuses(answers[name])[idx:]
        if got and not st and idx and re.search(rb"(?im)^connection: close\r$|^HTTP/1\.0 ", answers[name]):
            # the server said it would close after its last answer, then
            # did: it never processed this request (RFC 9112 section 9.6)
            errs.append("%s: span %s for a request sent after the server's last answer" % (
                key, harness.brief(got[0])))
            continue
        if not got:
            # nginx served it (not a 4xx/5xx rejection): then it was a
            # request and its span is due, however odd its bytes were
            if strict and st and st[0] < 400:
                errs.append("%s: nginx answered %d, but no span" % (key, st[0]))
            continue
        if len(got) > 1:
            # only a smuggled second request could make a second span, and
            # nginx never answered it as a request
            errs.append("%s: %d spans (%s), want at most 1" % (key, len(got), ", ".join(
                harness.brief(s) for s in got)))
            continue
        s = got[0]
        a = s["attributes"]
        gst = a.get("http.response.status_code")
        if not st:
            if gst is not None:
                errs.append("%s: span %s but the server answered nothing" % (key, harness.brief(s)))
        elif gst != st[0]:
            errs.append("%s: span status %r, nginx answered %r" % (key, gst, st[0]))
        if a.get("http.request.method") != method and a.get("http.request.method_original") != method:
            errs.append("%s: span method %r/%r, client sent %r" % (
                name, a.get("http.request.method"), a.get("http.request.method_original"), method))
        if isinstance(gst, int) and gst >= 500:
            if s["status_code"] != harness.STATUS_ERROR:
                errs.append("%s: 5xx span without status ERROR" % name)
        elif s["status_code"] != harness.STATUS_UNSET:
            errs.append("%s: status_code %r for %r" % (key, s["status_code"], gst))
    for name, ss in by_name.items():
        errs.append("span for unknown case %r" % name)
    return errs


def check_upstream(ref_up, got_up, shim=True):
    """What nginx's proxy sent upstream, without vs with the shim: the same
    bytes, except that a request without a traceparent of its own may gain
    our trace headers (right after the request line, valid ones)."""
    errs = []
    if sorted(ref_up) != sorted(got_up):
        errs.append("upstream saw paths %s without the shim, %s with" % (sorted(ref_up), sorted(got_up)))
    def norm(raw):  # every request has its own User-Agent (span matching)
        head, sep, body = raw.partition(b"\r\n\r\n")
        head = re.sub(rb"(?m)^User-Agent: cruddur-it/\S+", b"User-Agent: X", head)
        return head + sep + (b"<%d body bytes, crc %08x>" % (len(body), zlib.crc32(body)))

    for path in sorted(ref_up):
        for a, b in zip(ref_up[path], got_up.get(path, [])):
            a, b = norm(a), norm(b)
            had_tp = re.search(rb"(?im)^traceparent:", a) is not None
            if had_tp:
                if a != b:
                    errs.append("upstream %s: the app sent its own traceparent, yet the bytes "
                                "changed: %r vs %r" % (path, a[:300], b[:300]))
                continue
            la, lb = a.split(b"\r\n"), b.split(b"\r\n")
            added = [ln for ln in lb if ln not in la]
            rest = [ln for ln in lb if ln in la]
            if rest != la:
                errs.append("upstream %s: the app's own lines changed: %r vs %r" % (path, la[:8], lb[:8]))
            names = sorted(ln.split(b":")[0].lower() for ln in added)
            if names != ([b"traceparent"] if shim else []):
                errs.append("upstream %s: added lines %r, want one traceparent" % (path, added))
            elif not added:
                pass
            elif lb.index(added[0]) != 1:
                errs.append("upstream %s: traceparent not right after the request line" % path)
            elif harness.parse_traceparent(added[0].split(b":", 1)[1].strip().decode()) is None:
                errs.append("upstream %s: injected an invalid %r" % (path, added[0]))
    return errs


def check_echo(good, exs):
    """/echo answers with the trace headers nginx received: exactly the
    ones sent, malformed or not."""
    errs = []
    for ex in exs:
        if ex.req.target != "/echo":
            continue
        xa = next((v for k, v in ex.req.headers if k == "X-Amzn-Trace-Id"), "")
        want = ("tp=[%s] ts=[%s] xa=[%s]\n" % (ex.req.traceparent or "", ex.req.tracestate or "",
                                              xa)).encode("latin-1")
        if ex.resp.body != want:
            errs.append("nginx received %r, the client sent %r" % (ex.resp.body, want))
    return errs


def check_context(spans_by_rid, exs):
    """A malformed X-Amzn-Trace-Id never gives a parent (check_span covers
    traceparent)."""
    errs = []
    for ex in exs:
        s = spans_by_rid.get(ex.rid)
        if s is None or ex.req.traceparent is not None:
            continue
        if any(k == "X-Amzn-Trace-Id" for k, _ in ex.req.headers):
            if s["parent_span_id"]:
                errs.append("%s: parent %s from a malformed X-Amzn-Trace-Id %r" % (
                    ex.req.target, s["parent_span_id"], ex.req.headers))
    return errs


def check_client_spans(spans, server_by_rid, exs):
    """One CLIENT span (nginx -> upstream) per proxied request, status 200,
    child of that request's server span."""
    errs = []
    clients = [s for s in spans if is_client(s)]
    proxied = [ex for ex in exs if ex.req.target.startswith("/up/")]
    if len(clients) != len(proxied):
        errs.append("%d client spans for %d proxied requests" % (len(clients), len(proxied)))
    by_parent = {s["parent_span_id"]: s for s in clients}
    for ex in proxied:
        srv = server_by_rid.get(ex.rid)
        cs = by_parent.get(srv["span_id"]) if srv else None
        if cs is None:
            errs.append("no client span under %s" % ex.req.target)
            continue
        a = cs["attributes"]
        if a.get("http.response.status_code") != 200 or cs["trace_id"] != srv["trace_id"]:
            errs.append("client span for %s: status %r trace %s (server trace %s)" % (
                ex.req.target, a.get("http.response.status_code"), cs["trace_id"], srv["trace_id"]))
        if not str(a.get("url.full", "")).endswith(ex.req.target):
            errs.append("client span for %s: url.full %r" % (ex.req.target, a.get("url.full")))
    return errs


def check_server_spans(ctx, exs, special, cases, bad, pid, strict=True):
    """Exactly one correct span per well-formed request; the malformed
    cases' spans per check_malformed_spans. special: (exchange, None) for
    a target the span truncates, (exchange, {attribute: value, "_ua": the
    User-Agent's valid prefix}) for values the span must rewrite. Returns
    ({rid: span}, all spans, errors)."""
    special_ids = {ex.rid for ex, _ in special}
    bases = tuple(w["_ua"] if w else ex.req.ua for ex, w in special)

    def ua(s):
        return str(s["attributes"].get("user_agent.original", ""))

    server = ctx.expect_one_span_per_request(
        [ex for ex in exs if ex.rid not in special_ids], pid=pid, max_latency=None,
        ignore=lambda s: is_client(s) or ua(s).startswith(BAD_UA) or
        any(ua(s) == b or ua(s).startswith(b + "\ufffd") or ua(s).startswith(b + "\xe9") for b in bases))
    spans = ctx.receiver.spans()
    errs = check_context(server, exs)
    for ex, want in special:
        base = want["_ua"] if want else ex.req.ua
        ss = [s for s in spans if not is_client(s) and ua(s).startswith(base)
              and ua(s)[len(base):len(base) + 1] in ("", "\ufffd", "\xe9")]
        if len(ss) != 1:
            errs.append("%d spans for %s %r" % (len(ss), ex.req.method, ex.req.target[:40]))
            continue
        server[ex.rid] = ss[0]
        if want is None:  # the span keeps the first CRD_TARGET_MAX bytes of the target
            errs += harness.check_span(ss[0], ex, service=ctx.name, path_prefix_ok=True)
            continue
        a = ss[0]["attributes"]
        for k, v in want.items():
            if not k.startswith("_") and a.get(k) != v:
                errs.append("%s %r: %s = %r, want %r" % (ex.req.method, ex.req.target[:40], k,
                                                          a.get(k), v))
    errs += check_malformed_spans([s for s in spans if not is_client(s)], cases, bad, strict)
    return server, spans, errs


def run_nginx_sessions(ng, cases, up):
    bad = malformed_session(ng.port, cases)
    good, exs, special = wellformed_session(ng.port)
    ng.check_alive(ng.worker_pid)
    return bad, good, exs, special, up.take()


@timeout(180)
def test_hostile_nginx():
    cases = malformed_cases()
    up = Upstream()
    with Ctx("test_hostile_nginx") as ctx:
        ctx.defer(up.close)
        prefix = ctx.mkdir("nginx")
        ng = HostileNginx(ctx, prefix, up.port)
        ng.start(shim=False)
        ref_bad, ref_good, ref_exs, _, ref_up = run_nginx_sessions(ng, cases, up)
        ng.quit()
        errs = check_echo(ref_good, ref_exs)
        if errs:
            raise AssertionError("without the shim: " + harness.summarize(errs))

        ng2 = HostileNginx(ctx, prefix, up.port)
        ng2.start()
        bad, good, exs, special, got_up = run_nginx_sessions(ng2, cases, up)
        compare(ref_bad, bad, "nginx")
        compare(ref_good, good, "nginx")
        errs = check_echo(good, exs) + check_upstream(ref_up, got_up, ctx.shim)
        if errs:
            raise AssertionError(harness.summarize(errs))
        ng2.quit()
        if "exited on signal" in ng2.error_log():
            raise AssertionError("an nginx process died: %s" % ng2.error_log()[-800:])

        if not ctx.shim:  # --no-shim: the plumbing alone, no spans to check
            ctx.expect_no_spans()
            return
        server, spans, errs = check_server_spans(ctx, exs, special, cases, bad, ng2.worker_pid)
        errs += check_client_spans(spans, server, exs)
        if errs:
            raise AssertionError(harness.summarize(errs, limit=30))


@timeout(180)
def test_hostile_cserver():
    """The same inputs through the C test server, in its sendfile mode
    (vec: readv/writev/sendfile) and its event-loop mode (epoll:
    non-blocking, partial writes)."""
    cases = malformed_cases()
    with Ctx("test_hostile_cserver") as ctx:
        for mode in ("vec", "epoll"):
            plain = ctx.start_cserver(mode, shim=False)
            ref_bad = malformed_session(plain.port, cases)
            ref_good, _, _ = wellformed_session(plain.port, bare_lf=False)
            if not plain.proc.alive():
                raise AssertionError("cserver %s died without the shim" % mode)
            plain.stop()
            ctx.receiver.clear()
            srv = ctx.start_cserver(mode)
            bad = malformed_session(srv.port, cases)
            good, exs, special = wellformed_session(srv.port, bare_lf=False)
            if not srv.proc.alive():
                raise AssertionError("cserver %s died under the shim%s" % (mode, srv.proc.log_tail()))
            compare(ref_bad, bad, "cserver " + mode)
            compare(ref_good, good, "cserver " + mode)
            if ctx.shim:
                _, _, errs = check_server_spans(ctx, exs, special, cases, bad, srv.pid, strict=False)
                if errs:
                    raise AssertionError("cserver %s: %s" % (mode, harness.summarize(errs, limit=30)))
            rc, how = srv.stop()
            if how != "term" or rc != 0:
                raise AssertionError("cserver %s under the shim: rc=%s (%s)" % (mode, rc, how))
            ctx.receiver.clear()
