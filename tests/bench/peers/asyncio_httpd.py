#!/usr/bin/env python3
"""asyncio_httpd.py - demo/httpd's GET / with asyncio streams, for
`make bench-io`: keep-alive unless the client says Connection: close.

    python3 asyncio_httpd.py PORT

Listens on 127.0.0.1:PORT (0 picks a free port), prints the address,
serves until killed."""
import asyncio
import sys

PAGE = (b"Hello from libfiber's httpd.\n"
        b"Each connection is served by a fiber of its own; try /sleep?s=0.5 many\n"
        b"times at once and see them overlap.\n")
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n" % len(PAGE))


async def serve(reader, writer):
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            close = b"\nconnection: close" in head
            writer.write(HEAD + (b"Connection: close\r\n\r\n" if close
                                 else b"\r\n") + PAGE)
            if close:
                break
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ConnectionError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    print("asyncio_httpd.py: listening on 127.0.0.1:%d"
          % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
