#!/usr/bin/env python3
"""A worker written with Python's standard library only, for end-to-end tests.

Like most CGI-style servers (wsgiref, http.server) it reads a request body by
its Content-Length and nothing else: a chunked body reads as empty. It follows
the worker contract by hand: listens on 127.0.0.1:$TQ_PORT, answers
GET /health, exits when its stdin closes.

Paths (under any route prefix, e.g. /py/seen): /health; .../seen (JSON
list of every "METHOD path" it parsed); .../early413 (answers 413 at once
without reading the body, then closes); .../slow?ms=N (answers after N ms);
.../crash (exits with code 3); .../json3k and .../json100k (a JSON answer of
3,000 or 100,000 bytes with Content-Length);
anything else: JSON with method, path, the Content-Length and
Transfer-Encoding it got, Host, Proxy-Authorization, Expect, and the body's
length and sha-256.
"""
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SEEN = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def send(self, status, body, content_type="application/json", close=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route(self):
        with LOCK:
            SEEN.append(self.command + " " + self.path)
        url = urlsplit(self.path)
        if url.path == "/health":
            return self.send(200, b"ok", "text/plain")
        last = url.path.rsplit("/", 1)[-1]
        if last == "seen":
            with LOCK:
                return self.send(200, json.dumps(SEEN).encode())
        if last == "early413":
            return self.send(413, b'{"error":"too large"}', close=True)
        if last == "crash":
            os._exit(3)
        if last in ("json3k", "json100k"):
            size = 3000 if last == "json3k" else 100000
            filler = "x" * (size - len('{"filler":""}'))
            return self.send(200, ('{"filler":"%s"}' % filler).encode())
        if last == "slow":
            ms = int(parse_qs(url.query).get("ms", ["0"])[0])
            time.sleep(ms / 1000)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.send(200, json.dumps({
            "worker": "py",
            "pid": os.getpid(),
            "method": self.command,
            "path": self.path,
            "content_length": self.headers.get("Content-Length"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "host": self.headers.get("Host"),
            "proxy_authorization": self.headers.get("Proxy-Authorization"),
            "expect": self.headers.get("Expect"),
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }).encode())

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = route


def exit_when_stdin_closes():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["TQ_PORT"])), Handler)
    server.daemon_threads = True
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
