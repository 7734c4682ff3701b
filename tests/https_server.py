#!/usr/bin/env python3
"""https_server.py - a small HTTPS server for libfiber-hook's libcurl tests.

    https_server.py CERT KEY PORTFILE

Listens on 127.0.0.1, on a port the kernel chooses, written to PORTFILE
once it listens.  Each request runs in a thread of its own, so that
requests overlap:
    /sleep?s=X   sleeps X seconds, then answers "Slept X seconds"
    /            answers a short page
    /redirect    redirects to /
anything else is a 404.  Stops on SIGTERM.
"""
import http.server
import signal
import ssl
import sys
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        # The TLS handshake in the request's own thread, not in the one
        # that accepts: handshakes overlap as requests do.
        self.request.do_handshake()
        super().setup()

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/sleep":
            seconds = float(query.get("s", ["0"])[0])
            time.sleep(seconds)
            self.answer(200, "Slept %g seconds" % seconds)
        elif url.path == "/":
            self.answer(200, "Hello over TLS from the test server. " + "x" * 200)
        elif url.path == "/redirect":
            self.answer(302, "moved", [("Location", "/")])
        else:
            self.answer(404, "not found")


class Server(http.server.ThreadingHTTPServer):
    # socketserver's backlog of 5 drops the SYNs of a burst of clients,
    # which then retry a second later.
    request_queue_size = 128


def main():
    cert, key, portfile = sys.argv[1:4]
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                         do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
