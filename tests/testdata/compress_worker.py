# A Python stdlib worker for the compression end-to-end test (not Deno on both ends).
#   /health                  200
#   /compress/page           an HTML page of ~7 KB with Content-Length
#   /compress/small          a short HTML answer
#   /compress/sse            SSE: "one" at once, "two" once {TQ_WORKER_BASE}/release exists
#   /compress/gzipped        an answer the worker compressed itself
import gzip
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = (
    "<!doctype html><html><body>"
    + "".join(f"<p>Paragraph {i} from a Python worker.</p>\n" for i in range(150))
    + "</body></html>"
).encode()
RELEASE = os.path.join(os.environ.get("TQ_WORKER_BASE", os.getcwd()), "release")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, body, content_type, extra=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/health":
            self.send_body(b"ok", "text/plain")
        elif self.path == "/compress/page":
            self.send_body(PAGE, "text/html; charset=utf-8", [("ETag", '"p1"')])
        elif self.path == "/compress/small":
            self.send_body(b"<p>hi</p>", "text/html; charset=utf-8")
        elif self.path == "/compress/gzipped":
            self.send_body(
                gzip.compress(PAGE), "text/html", [("Content-Encoding", "gzip")]
            )
        elif self.path == "/compress/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b"data: one\n\n")
            deadline = time.time() + 20
            while not os.path.exists(RELEASE) and time.time() < deadline:
                time.sleep(0.02)
            self.chunk(b"data: two\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_body(b"not found", "text/plain")


def exit_on_stdin_close():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


threading.Thread(target=exit_on_stdin_close, daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["TQ_PORT"])), Handler)
server.daemon_threads = True
server.serve_forever()
