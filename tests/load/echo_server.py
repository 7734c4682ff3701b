#!/usr/bin/env python3
"""echo_server.py - the line echo server of demo/echo_server, written with
Python's asyncio, to compare against under tests/load/echo_load.sh.

    python3 echo_server.py [PORT]

Listens on 127.0.0.1:PORT (0 picks a free port), prints the address it
listens on, echoes every line, stops on SIGINT or SIGTERM."""
import asyncio
import signal
import sys


async def echo_lines(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signo in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signo, stop.set)
    server = await asyncio.start_server(echo_lines, "127.0.0.1", port,
                                        backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"echo_server.py: listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    print("echo_server.py: stopping", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8007))
