"""A TCP proxy on loopback that can delay every answer: the users' path gets slower while
nothing in the service changes (what a congested link, a slow load balancer or a TLS
terminator under strain look like from the service's side).

    python3 delay_proxy.py --upstream 127.0.0.1:PORT --delay-ms 150 --max-seconds 300

Prints ``listening on 127.0.0.1:PORT`` once bound. SIGUSR1 starts delaying each chunk sent
back to the client by ``--delay-ms``; SIGUSR2 stops. Exits by itself after ``--max-seconds``.
Loopback only: both the listening and the upstream address must be 127.0.0.0/8.
"""

import argparse
import asyncio
import ipaddress
import signal
import sys

DELAYING = False


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def pipe(reader, writer, delayed: bool, delay_s: float):
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            if delayed and DELAYING:
                await asyncio.sleep(delay_s)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    global DELAYING
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="HOST:PORT on loopback")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--delay-ms", type=float, default=150.0)
    p.add_argument("--max-seconds", type=float, default=300.0)
    a = p.parse_args()
    up_host, up_port = a.upstream.rsplit(":", 1)
    host, port = a.listen.rsplit(":", 1)
    if not (loopback(up_host) and loopback(host)):
        sys.exit("delay_proxy: loopback addresses only")
    delay_s = a.delay_ms / 1000.0

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, False, delay_s),
            pipe(up_reader, client_writer, True, delay_s),
        )

    server = await asyncio.start_server(handle, host, int(port))
    bound = server.sockets[0].getsockname()
    loop = asyncio.get_running_loop()

    def on():
        global DELAYING
        DELAYING = True

    def off():
        global DELAYING
        DELAYING = False

    loop.add_signal_handler(signal.SIGUSR1, on)
    loop.add_signal_handler(signal.SIGUSR2, off)
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), timeout=a.max_seconds)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
