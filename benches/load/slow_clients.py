#!/usr/bin/env python3
"""Slow clients ("slowloris") against a running presence server, beside one normal client.

    python3 benches/load/slow_clients.py --port 18280
    python3 benches/load/slow_clients.py --port 18280 --slow 500 --interval 3 --duration 60

Starts no server: benches/load/slow_clients.sh does (fresh database, pinned cores, peak
memory). First a baseline: the normal client alone for --baseline seconds. Then --slow
connections to 127.0.0.1:PORT each send a request head one byte every --interval seconds and
never finish it; whenever the server closes one, another is opened at once, so that the
pressure stays the same for the whole --duration. Meanwhile the normal client sends
authenticated Gets (Basic tje0:Tje0, the --demo administrator, body {"AssociateId":963}) at
--normal-rate per second over one keep-alive connection, reconnecting if it is closed.

It prints, for the baseline and under the slow clients side by side: the normal client's
requests, errors and latency (p50, p99, max), then how many slow connections the server
closed, how long they lived (median, max), what the server sent before closing, and how many
were still open at the end. A server that bounds how long a request head may take (presence's
--header-read-timeout-ms, 10 s by default) closes each slow connection after about that long,
and the normal client's p99 stays where the baseline has it.

The normal client's latency is counted from the moment its request was due, not from when it
was sent: one connection sends one request at a time, so a stall of the server delays the
requests after it too, and they count it (no "coordinated omission"). The normal client runs
in a process of its own, so that the slow clients' work here does not delay it. Python 3.11,
standard library only; traffic goes to 127.0.0.1 only, and every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time

HOST = "127.0.0.1"
GET_PATH = "/api/v1/Agents/User/GetUserPresenceStatus"
# How long the normal client waits for one answer, or for a connection, before it counts an
# error: long enough to see a stall, short enough that a hung server cannot hold the run.
REQUEST_TIMEOUT = 10.0


def raise_open_files(needed: int) -> int:
    """Raises this process's soft limit on open files towards the hard limit (every connection
    is a descriptor); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (what wrk and most load tools report)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats' rounding surprises
    return ordered[int(rank) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


# --- The normal client -------------------------------------------------------------------------


class NormalClient:
    """One keep-alive connection sending Gets at a fixed rate; records each latency."""

    def __init__(self, port: int, rate: float, login: str = "tje0", password: str = "Tje0"):
        self.port = port
        self.rate = rate
        body = b'{"AssociateId":963}'
        credentials = base64.b64encode(f"{login}:{password}".encode()).decode()
        self.request = (
            f"POST {GET_PATH} HTTP/1.1\r\n"
            f"Host: {HOST}:{port}\r\n"
            f"Authorization: Basic {credentials}\r\n"
            "Content-Type: application/json\r\n"
            "Accept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def connect(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, self.port), REQUEST_TIMEOUT
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def read_answer(self) -> int:
        """Reads one answer (Content-Length or chunked body); returns its status code."""
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection") == "close":
            self.close()
        return status

    async def get(self) -> int:
        """One Get on the kept-alive connection, opening one first if there is none."""
        if self.writer is None:
            self.reconnects += 1
            await self.connect()
        assert self.writer is not None
        self.writer.write(self.request)
        await self.writer.drain()
        return await self.read_answer()

    async def run(self, duration: float) -> dict:
        """Sends Gets due every 1/rate seconds for `duration` seconds; returns the figures."""
        latencies: list[float] = []  # from when each request was due to its answer
        service: list[float] = []  # from when each was sent to its answer
        errors: dict[str, int] = {}
        interval = 1.0 / self.rate
        start = time.monotonic()
        count = int(duration * self.rate)
        for index in range(count):
            due = start + index * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()
            try:
                status = await asyncio.wait_for(self.get(), REQUEST_TIMEOUT)
                if status != 200:
                    errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as error:
                kind = type(error).__name__
                errors[kind] = errors.get(kind, 0) + 1
                self.close()  # the next request reconnects
            done = time.monotonic()
            latencies.append(done - due)
            service.append(done - sent)
        return {
            "requests": count,
            "elapsed": time.monotonic() - start,
            "latencies": latencies,
            "service": service,
            "errors": errors,
        }


def _normal_child(port: int, rate: float, duration: float, connected, results, parent: int) -> None:
    """The normal client's process: connects (one untimed Get), says so, then measures."""

    async def orphaned() -> None:
        # A parent killed outright (SIGTERM, SIGKILL) cannot stop this process: it stops
        # itself once it has no parent, rather than send requests to no one's purpose.
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        os._exit(1)

    async def measure() -> dict:
        asyncio.ensure_future(orphaned())
        client = NormalClient(port, rate)
        await asyncio.wait_for(client.get(), REQUEST_TIMEOUT)
        connected.set()
        figures = await client.run(duration)
        figures["reconnects"] = client.reconnects - 1
        return figures

    try:
        results.put(asyncio.run(measure()))
    except BaseException as error:  # the parent must hear of it, not wait for ever
        results.put({"failed": repr(error)})


class NormalClientProcess:
    """The normal client in a process of its own. In the process that opens hundreds or
    thousands of connections at once, one event loop would run those callbacks before the
    normal client's, and its latency would show the load generator's stall, not the
    server's; as a separate process it is scheduled by the kernel beside them."""

    def __init__(self, port: int, rate: float, duration: float):
        context = multiprocessing.get_context("spawn")
        self.duration = duration
        self.connected = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=_normal_child,
            args=(port, rate, duration, self.connected, self.results, os.getpid()),
            daemon=True,
        )

    async def start(self) -> None:
        """Starts it and waits until its keep-alive connection is open."""
        self.process.start()
        if not await asyncio.to_thread(self.connected.wait, REQUEST_TIMEOUT + 10):
            self.process.kill()
            sys.exit("the normal client could not connect")

    async def result(self) -> dict:
        try:
            figures = await asyncio.to_thread(self.results.get, True, self.duration + REQUEST_TIMEOUT + 30)
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
        if "failed" in figures:
            sys.exit(f"the normal client failed: {figures['failed']}")
        return figures


async def measure_normal(port: int, rate: float, duration: float) -> dict:
    """The normal client alone: the baseline."""
    client = NormalClientProcess(port, rate, duration)
    await client.start()
    return await client.result()


def describe_normal(name: str, figures: dict) -> str:
    lat, service = figures["latencies"], figures["service"]
    errors = ", ".join(f"{kind} {n}" for kind, n in sorted(figures["errors"].items())) or "none"
    return (
        f"{name:<18} {figures['requests']:>8} {figures['requests'] / figures['elapsed']:>7.1f}"
        f" {ms(percentile(lat, 50)):>8} {ms(percentile(lat, 99)):>8} {ms(max(lat, default=0)):>8}"
        f" {ms(percentile(service, 50)):>8} {ms(percentile(service, 99)):>8} {ms(max(service, default=0)):>8}"
        f"   {errors}"
    )


# --- The slow clients --------------------------------------------------------------------------


def endless_head(port: int):
    """The bytes of a request head that never ends: a request line, then header after
    header, never the blank line that would finish it."""
    yield from f"POST {GET_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode()
    number = 0
    while True:
        yield from f"X-Slow-{number}: {'x' * 8}\r\n".encode()
        number += 1


class SlowClients:
    """N connections trickling a head one byte per interval, each replaced when closed."""

    def __init__(self, port: int, count: int, interval: float):
        self.port = port
        self.count = count
        self.interval = interval
        self.open_now = 0
        self.lifetimes: list[float] = []  # of the connections the server closed
        self.closed_how: dict[str, int] = {}  # what the server sent before closing
        self.connect_errors: dict[str, int] = {}
        self.bytes_sent = 0
        self.stopping = asyncio.Event()

    async def one_connection(self) -> None:
        """Opens one slow connection and trickles until the server closes it or the run ends."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, self.port), REQUEST_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as error:
            kind = type(error).__name__
            self.connect_errors[kind] = self.connect_errors.get(kind, 0) + 1
            await asyncio.sleep(0.1)  # a refused connect must not spin
            return
        opened = time.monotonic()
        self.open_now += 1

        async def trickle() -> str:
            # Start at a random point of the interval, so that the bytes do not all arrive at
            # once: a steady trickle, as real slow clients would send.
            await asyncio.sleep(random.uniform(0, self.interval))
            for byte in endless_head(self.port):
                writer.write(bytes([byte]))
                await writer.drain()
                self.bytes_sent += 1
                await asyncio.sleep(self.interval)
            return "unreachable"

        async def watch() -> str:
            # The server closing the connection shows as the end of the stream (after any
            # answer it sent, such as a 408 or a 431) or as a reset.
            data = await reader.read(65536)
            if not data:
                return "closed without an answer"
            first = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            while await reader.read(65536):
                pass
            return f"answered '{first}' and closed"

        tasks = [asyncio.ensure_future(trickle()), asyncio.ensure_future(watch())]
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                return  # still open at the end of the run: not counted as closed
            finished = next(iter(done))
            try:
                how = finished.result()
            except (OSError, asyncio.IncompleteReadError) as error:
                how = f"closed ({type(error).__name__})"
            self.lifetimes.append(time.monotonic() - opened)
            self.closed_how[how] = self.closed_how.get(how, 0) + 1
        finally:
            for task in [*tasks, stop]:
                task.cancel()
            self.open_now -= 1
            writer.close()

    async def keep_one(self) -> None:
        """One slot of the N: a slow connection, reopened whenever it ends, until the run ends."""
        while not self.stopping.is_set():
            await self.one_connection()

    async def start(self) -> list[asyncio.Task]:
        slots = [asyncio.ensure_future(self.keep_one()) for _ in range(self.count)]
        # Let them connect before the measurement starts (bounded: a server that accepts
        # none must not hold the run).
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while self.open_now < self.count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return slots

    async def stop(self, slots: list[asyncio.Task]) -> int:
        """Ends the run; returns how many slow connections were open at that moment."""
        still_open = self.open_now
        self.stopping.set()
        # A slot may be waiting on a connect (bounded by REQUEST_TIMEOUT); past that, give up.
        _, pending = await asyncio.wait(slots, timeout=REQUEST_TIMEOUT + 1)
        for slot in pending:
            slot.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
        return still_open


# --- The run -----------------------------------------------------------------------------------


async def warm_up(port: int) -> None:
    """One untimed Get: the first Basic check runs Argon2, which is not what is measured."""
    client = NormalClient(port, 1)
    try:
        status = await asyncio.wait_for(client.get(), REQUEST_TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as error:
        sys.exit(f"the server on 127.0.0.1:{port} does not answer: {error!r}")
    finally:
        client.close()
    if status != 200:
        sys.exit(f"the warm-up Get was answered {status}: was the server started with --demo?")


def print_normal_header() -> None:
    """Latency in ms from when each request was due (what a user waits; it includes any delay
    of this machine's client process in sending), then from when it was sent (the server's
    part, and the network's, alone)."""
    print(f"{'':<18} {'':>8} {'':>7} {'ms from due':^26} {'ms from sent':^26}")
    print(f"{'normal client':<18} {'requests':>8} {'req/s':>7} {'p50':>8} {'p99':>8} {'max':>8}"
          f" {'p50':>8} {'p99':>8} {'max':>8}   errors")


def print_p99_ratios(baseline: dict, loaded: dict, what: str) -> None:
    ratios = []
    for key, name in (("latencies", "from due"), ("service", "from sent")):
        before, after = percentile(baseline[key], 99), percentile(loaded[key], 99)
        ratios.append(f"{after / before:.2f} ({name})" if before > 0 else f"n/a ({name})")
    print(f"p99 with {what} / baseline p99: {', '.join(ratios)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the server's port on 127.0.0.1")
    parser.add_argument("--slow", type=int, default=500, help="slow connections (default 500)")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between a slow connection's bytes (default 3)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds with the slow connections (default 60)")
    parser.add_argument("--normal-rate", type=float, default=200.0, help="the normal client's requests per second (default 200)")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the normal client alone first (default 10; 0: none)")
    args = parser.parse_args()
    if args.slow < 0 or args.interval <= 0 or args.duration <= 0 or args.normal_rate <= 0:
        parser.error("need --slow >= 0 and a positive --interval, --duration and --normal-rate")

    limit = raise_open_files(args.slow + 64)
    if limit < args.slow + 16:
        sys.exit(f"this process may open only {limit} files: too few for {args.slow} connections")

    await warm_up(args.port)
    print(f"# slow clients: {args.slow} connections, one byte every {args.interval:g} s, for {args.duration:g} s;"
          f" normal client: {args.normal_rate:g} Gets/s on one keep-alive connection", flush=True)

    baseline = None
    if args.baseline > 0:
        print(f"# baseline: the normal client alone for {args.baseline:g} s", file=sys.stderr, flush=True)
        baseline = await measure_normal(args.port, args.normal_rate, args.baseline)

    print(f"# opening {args.slow} slow connections, then {args.duration:g} s with the normal client",
          file=sys.stderr, flush=True)
    slow = SlowClients(args.port, args.slow, args.interval)
    started = time.monotonic()
    slots = await slow.start()
    ramp = time.monotonic() - started
    normal_client = NormalClientProcess(args.port, args.normal_rate, args.duration)
    await normal_client.start()
    loaded = await normal_client.result()
    still_open = await slow.stop(slots)

    print()
    print_normal_header()
    if baseline is not None:
        print(describe_normal("baseline (alone)", baseline))
    print(describe_normal(f"with {args.slow} slow", loaded))
    if baseline is not None:
        print_p99_ratios(baseline, loaded, "the slow clients")
    print(f"normal client reconnects under load: {loaded['reconnects']}")
    print()
    lifetimes = slow.lifetimes
    print(f"slow connections: {args.slow} opened in {ramp:.2f} s; {slow.bytes_sent} bytes trickled")
    if lifetimes:
        print(f"slow connections closed by the server: {len(lifetimes)};"
              f" lived median {statistics.median(lifetimes):.2f} s, min {min(lifetimes):.2f} s, max {max(lifetimes):.2f} s")
    else:
        print("slow connections closed by the server: 0")
    for how, n in sorted(slow.closed_how.items()):
        print(f"  {n} {how}")
    print(f"slow connections still open at the end: {still_open} of {args.slow}")
    if slow.connect_errors:
        errors = ", ".join(f"{kind} {n}" for kind, n in sorted(slow.connect_errors.items()))
        print(f"slow connections that could not connect: {errors}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
