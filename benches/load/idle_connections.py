#!/usr/bin/env python3
"""Many idle connections against a running presence server, beside one normal client.

    python3 benches/load/idle_connections.py --port 18380
    python3 benches/load/idle_connections.py --port 18380 --count 10000 --hold 30 --server-pid PID

Starts no server: benches/load/idle_connections.sh does. First a baseline (the normal client
of slow_clients.py alone for --baseline seconds); then the normal client opens its keep-alive
connection, and --count TCP connections to 127.0.0.1:PORT are opened at once and send
nothing, each held for --hold seconds from the start (or until the server closes it) while the
normal client sends its Gets. A connection the kernel has not completed within --hold counts
as not accepted. Then all are released, and a new connection must still get an answer.

It reports: how many connections completed the handshake (and how fast), how many did not;
how many the server closed, after how long, and when (the header-read timeout should close an
idle connection about 10 s after the server accepted it); how many were still open at the
end; the normal client's requests, errors and latency, beside its baseline; the listen backlog
(somaxconn, the listen socket's backlog and accept queue, SYN_RECV sockets, the kernel's
ListenOverflows and ListenDrops), sampled from /proc; and whether the server process is alive
and answering at the end.

The normal client runs in a process of its own (see slow_clients.NormalClientProcess), so
that opening thousands of connections at once in this one does not delay it.

A server at its connection limit (presence's --max-connections) stops accepting: the kernel
then queues connections up to the listen backlog, and beyond that drops the handshakes, which
the clients retry (after 1, 3, 7, 15 s...). This script reports that situation rather than
failing on it. Python 3.11, standard library only (plus `ss`, if installed, for the backlog);
traffic goes to 127.0.0.1 only, and every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time

from slow_clients import (
    HOST,
    REQUEST_TIMEOUT,
    NormalClient,
    NormalClientProcess,
    describe_normal,
    measure_normal,
    print_normal_header,
    print_p99_ratios,
    raise_open_files,
    warm_up,
)

# /proc/net/tcp states.
ESTABLISHED, SYN_RECV, LISTEN = "01", "03", "0A"


# --- The kernel's view ---------------------------------------------------------------------------


def read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/{name.replace('.', '/')}") as file:
            return file.read().strip()
    except OSError:
        return "unknown"


def tcp_ext_counters() -> dict[str, int]:
    """The kernel's TcpExt counters (ListenOverflows, ListenDrops, SyncookiesSent...)."""
    try:
        with open("/proc/net/netstat") as file:
            lines = file.read().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:])))
    return {}


def server_sockets(port: int) -> dict[str, int]:
    """The sockets on the server's side of the port, by state, from /proc/net/tcp: the
    connections the kernel completed (accepted by the server or waiting in its accept queue),
    the half-open ones, and the listen socket's accept queue."""
    wanted = f":{port:04X}"
    counts = {"established": 0, "syn_recv": 0, "accept_queue": 0}
    with open("/proc/net/tcp") as file:
        next(file)
        for line in file:
            fields = line.split()
            if not fields[1].endswith(wanted):
                continue  # not the server's side (the clients' ports are their own)
            state = fields[3]
            if state == ESTABLISHED:
                counts["established"] += 1
            elif state == SYN_RECV:
                counts["syn_recv"] += 1
            elif state == LISTEN:
                counts["accept_queue"] = int(fields[4].split(":")[1], 16)
    return counts


def listen_backlog(port: int) -> str:
    """The listen socket's backlog as `ss` shows it (Send-Q of a listening socket)."""
    if not shutil.which("ss"):
        return "unknown (no ss)"
    try:
        output = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    # State Recv-Q Send-Q Local Peer
    return output[2] if len(output) >= 3 else "unknown"


def process_state(pid: int | None) -> str:
    if pid is None:
        return "not given (--server-pid)"
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("State:"):
                    state = line.split(None, 1)[1].strip()
                    return "gone (a zombie)" if state.startswith("Z") else f"alive ({state})"
    except OSError:
        pass
    return "gone"


# --- The idle connections ------------------------------------------------------------------------


class IdleConnections:
    def __init__(self, port: int, count: int, hold: float):
        self.port = port
        self.count = count
        self.hold = hold
        self.start = 0.0
        self.open_now = 0
        self.connect_times: list[float] = []  # from the start to the handshake's end
        self.connect_errors: dict[str, int] = {}
        self.lifetimes: list[float] = []  # connect to the server's close
        self.closed_at: list[float] = []  # from the start to the server's close
        self.closed_how: dict[str, int] = {}
        self.release = asyncio.Event()

    async def one(self) -> None:
        # Every connect is bounded by the hold: one still not completed then never was.
        remaining = self.start + self.hold - time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), remaining)
        except (OSError, asyncio.TimeoutError) as error:
            kind = "no handshake within the hold" if isinstance(error, asyncio.TimeoutError) else type(error).__name__
            self.connect_errors[kind] = self.connect_errors.get(kind, 0) + 1
            return
        connected = time.monotonic()
        self.connect_times.append(connected - self.start)
        self.open_now += 1

        async def watch() -> str:
            data = await reader.read(65536)
            if not data:
                return "closed without an answer"
            first = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            return f"answered '{first}' and closed"

        closing = asyncio.ensure_future(watch())
        released = asyncio.ensure_future(self.release.wait())
        try:
            done, _ = await asyncio.wait([closing, released], return_when=asyncio.FIRST_COMPLETED)
            if closing in done:
                try:
                    how = closing.result()
                except OSError as error:
                    how = f"closed ({type(error).__name__})"
                now = time.monotonic()
                self.lifetimes.append(now - connected)
                self.closed_at.append(now - self.start)
                self.closed_how[how] = self.closed_how.get(how, 0) + 1
        finally:
            closing.cancel()
            released.cancel()
            self.open_now -= 1
            writer.close()


async def sample(port: int, idle: IdleConnections, samples: list[tuple], stop: asyncio.Event) -> None:
    """Each second: the clients' open connections and the server side's sockets."""
    while not stop.is_set():
        sockets = await asyncio.to_thread(server_sockets, port)
        samples.append((time.monotonic() - idle.start, idle.open_now, sockets))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the server's port on 127.0.0.1")
    parser.add_argument("--count", type=int, default=10000, help="idle connections (default 10000)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold them (default 30)")
    parser.add_argument("--normal-rate", type=float, default=200.0, help="the normal client's Gets per second (default 200)")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the normal client alone first (default 10; 0: none)")
    parser.add_argument("--server-pid", type=int, help="the server's pid, to say whether it is alive at the end")
    args = parser.parse_args()
    if args.count < 1 or args.hold <= 0 or args.normal_rate <= 0:
        parser.error("need a positive --count, --hold and --normal-rate")

    # Every connection is a descriptor of this process too.
    limit = raise_open_files(args.count + 64)
    count = min(args.count, limit - 32)
    if count < args.count:
        print(f"# this process may open only {limit} files: {count} connections, not {args.count}", file=sys.stderr)

    await warm_up(args.port)
    print(f"# idle connections: {count}, held {args.hold:g} s; normal client: {args.normal_rate:g} Gets/s on one keep-alive connection",
          flush=True)
    baseline = None
    if args.baseline > 0:
        print(f"# baseline: the normal client alone for {args.baseline:g} s", file=sys.stderr, flush=True)
        baseline = await measure_normal(args.port, args.normal_rate, args.baseline)

    # The normal client connects first: it competes for the server's attention, not for a
    # connection slot (a real client already connected keeps its connection).
    normal_client = NormalClientProcess(args.port, args.normal_rate, args.hold)
    await normal_client.start()

    counters_before = tcp_ext_counters()
    print(f"# opening {count} idle connections and holding them {args.hold:g} s", file=sys.stderr, flush=True)
    idle = IdleConnections(args.port, count, args.hold)
    idle.start = time.monotonic()
    samples: list[tuple] = []
    stop_sampling = asyncio.Event()
    sampler = asyncio.ensure_future(sample(args.port, idle, samples, stop_sampling))
    # The backlog, read while the server's listen socket certainly exists.
    backlog = listen_backlog(args.port)
    connections = [asyncio.ensure_future(idle.one()) for _ in range(count)]
    loaded = await normal_client.result()
    # The hold is over: whatever is still open is released.
    remaining = idle.start + args.hold - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)
    still_open = idle.open_now
    # The server's side at the same moment: what its kernel really holds.
    server_at_end = await asyncio.to_thread(server_sockets, args.port)
    idle.release.set()
    stop_sampling.set()
    await asyncio.gather(*connections, sampler, return_exceptions=True)
    counters_after = tcp_ext_counters()

    # After the release: does a new connection get an answer, and how soon?
    await asyncio.sleep(0.5)
    fresh = NormalClient(args.port, 1)
    asked = time.monotonic()
    try:
        status = await asyncio.wait_for(fresh.get(), REQUEST_TIMEOUT)
        after_release = f"answered {status} in {(time.monotonic() - asked) * 1000:.1f} ms"
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as error:
        after_release = f"NOT answered ({type(error).__name__})"
    finally:
        fresh.close()

    print()
    print_normal_header()
    if baseline is not None:
        print(describe_normal("baseline (alone)", baseline))
    print(describe_normal(f"with {count} idle", loaded))
    if baseline is not None:
        print_p99_ratios(baseline, loaded, "the idle connections")
    print(f"normal client reconnects under load: {loaded['reconnects']}")
    print()
    connected = len(idle.connect_times)
    print(f"idle connections: {count} attempted; {connected} completed the handshake as this side saw it,"
          f" {count - connected} did not within the hold")
    if idle.connect_times:
        times = idle.connect_times
        print(f"  handshakes seen completed: median {statistics.median(times):.2f} s after the start,"
              f" last at {max(times):.2f} s (this process sees them late while it opens thousands at once)")
    for kind, n in sorted(idle.connect_errors.items()):
        print(f"  not connected: {n} {kind}")
    print(f"closed by the server during the hold: {len(idle.lifetimes)}")
    print(f"  (the server closes an idle connection a header-read timeout after accepting it;"
          f" this side counts from when it saw the handshake, which may be later or, for one"
          f" that waited in the accept queue, earlier)")
    if idle.lifetimes:
        print(f"  after the handshake: min {min(idle.lifetimes):.2f} s, median {statistics.median(idle.lifetimes):.2f} s,"
              f" max {max(idle.lifetimes):.2f} s")
        for how, n in sorted(idle.closed_how.items()):
            print(f"  {n} {how}")
        step = 5
        buckets = [0] * (int(args.hold // step) + 1)
        for at in idle.closed_at:
            buckets[min(int(at // step), len(buckets) - 1)] += 1
        print("  closes by time since the start: "
              + ", ".join(f"{i * step}-{(i + 1) * step} s: {n}" for i, n in enumerate(buckets) if i * step < args.hold))
    print(f"still open at the end of the hold: {still_open} on this side;"
          f" {server_at_end['established']} ESTABLISHED on the server's side,"
          f" {server_at_end['accept_queue']} of them in the accept queue")
    phantom = still_open - server_at_end["established"]
    if phantom > 0:
        # With the accept queue full the server's kernel answers a SYN with a SYN cookie and
        # then drops the handshake's last ACK (tcp_abort_on_overflow 0): the client thinks it
        # is connected, the server knows nothing of it, and the first byte sent meets a reset
        # (or a retransmitted SYN-ACK, once the queue has room).
        print(f"  at least {phantom} open on this side only: handshakes the server's kernel dropped"
              f" (accept queue full; see ListenOverflows and SyncookiesSent below)")
    print()
    print(f"listen backlog: net.core.somaxconn {read_sysctl('net.core.somaxconn')},"
          f" tcp_max_syn_backlog {read_sysctl('net.ipv4.tcp_max_syn_backlog')},"
          f" tcp_syncookies {read_sysctl('net.ipv4.tcp_syncookies')},"
          f" tcp_abort_on_overflow {read_sysctl('net.ipv4.tcp_abort_on_overflow')};"
          f" the server's listen socket: backlog {backlog}")
    if samples:
        print(f"server side, sampled each second: most ESTABLISHED {max(s[2]['established'] for s in samples)},"
              f" most in the accept queue {max(s[2]['accept_queue'] for s in samples)},"
              f" most SYN_RECV (half-open) {max(s[2]['syn_recv'] for s in samples)}")
        print("  t (s)   clients open   server ESTABLISHED   accept queue   SYN_RECV")
        shown = -5.0
        for at, open_now, sockets in samples:
            if at - shown >= 5 or (at, open_now, sockets) == samples[-1]:
                shown = at
                print(f"  {at:5.1f}   {open_now:12}   {sockets['established']:18}   {sockets['accept_queue']:12}   {sockets['syn_recv']:8}")
    deltas = {
        name: counters_after.get(name, 0) - counters_before.get(name, 0)
        for name in ("ListenOverflows", "ListenDrops", "SyncookiesSent", "TCPReqQFullDrop", "TCPReqQFullDoCookies")
    }
    print("kernel counters during the hold (all of the machine): "
          + ", ".join(f"{name} +{n}" for name, n in deltas.items()))
    print()
    print(f"server process: {process_state(args.server_pid)}; a new connection after the release: {after_release}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
