#!/usr/bin/python3
"""A small JSON backend for the cruddur Docker example.

It contains no tracing, logging or error-reporting code at all: run under
cruddur-run (the image's ENTRYPOINT), every request it answers becomes a
span (OTLP, X-Ray), an access-log line (CloudWatch Logs) and, for a 5xx, a
Rollbar item. Python standard library only.

    PORT=4567 python3 app.py

GET /api/activities/home   a few activities (JSON)
GET /api/health-check      {"success": true}
GET /api/boom              500, as an unhandled error would give
"""

import json
import os
import signal
import sys
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "4567"))


def activities():
    now = datetime.now(timezone.utc)
    return [
        {"uuid": "68f126b0-1ceb-4a33-88be-d90fa7109eee", "handle": "Andrew Brown",
         "message": "Cloud is fun!", "created_at": (now - timedelta(days=2)).isoformat(),
         "likes_count": 5, "replies_count": 1},
        {"uuid": "66e12864-8c26-4c3a-9658-95a10f8fea67", "handle": "Worf",
         "message": "I am out of prune juice", "created_at": (now - timedelta(days=7)).isoformat(),
         "likes_count": 0, "replies_count": 0},
    ]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass  # the access log is cruddur's job (CloudWatch Logs)

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/api/activities/home":
            self.send_json(200, activities())
        elif path == "/api/health-check":
            self.send_json(200, {"success": True})
        elif path == "/api/boom":
            self.send_json(500, {"error": "something broke"})
        else:
            self.send_json(404, {"error": "not found"})


def main():
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    # A clean exit on SIGTERM (docker stop): the process ends normally, so
    # whatever observes it gets to finish its work.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("listening on :%d" % PORT, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
