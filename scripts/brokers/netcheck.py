"""Small network probes for scripts/brokers.sh (standard library only).

Usage:
    netcheck.py free-ports N            print N distinct free loopback ports
    netcheck.py is-free PORT            exit 0 if 127.0.0.1:PORT can be listened on
    netcheck.py wait-redis PORT SECS [--pid PID]
    netcheck.py wait-http URL SECS [--auth USER:PASS] [--pid PID]
    netcheck.py wait-tcp PORT SECS [--pid PID]

The wait-* commands poll until the service answers (exit 0), the timeout passes
(exit 1) or the process given with --pid dies (exit 2), so a broker that crashes
during boot is reported at once instead of after the whole timeout.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Bind `count` sockets to port 0 at once, so the kernel hands out distinct ports."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def is_free(port: int) -> bool:
    """True if a server could listen on the port now.

    SO_REUSEADDR matches what the brokers do, so connections of a just-stopped
    broker lingering in TIME_WAIT do not count as "in use".
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(1)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def redis_ping(port: int) -> bool:
    """Send an inline PING; true only on +PONG (a loading AOF answers -LOADING)."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def tcp_open(port: int) -> bool:
    """True if a TCP connection to the port is accepted."""
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


def http_ok(url: str, auth: str | None) -> bool:
    """True if GET url answers 200."""
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait(check: Callable[[], bool], seconds: float, pid: int | None) -> int:
    """Poll `check` until true (0), timeout (1) or the watched process dies (2)."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return 0
        if pid is not None and not pid_alive(pid):
            # One last look: the process may have exec'ed or daemonised.
            return 0 if check() else 2
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.2)


def option(args: list[str], name: str) -> str | None:
    """Pop `--name VALUE` from args."""
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return None


def main(argv: list[str]) -> int:
    """Dispatch the command line; see the module docstring."""
    args = list(argv)
    pid_s = option(args, "--pid")
    auth = option(args, "--auth") or os.environ.get("NETCHECK_AUTH")
    pid = int(pid_s) if pid_s else None
    cmd = args[0] if args else ""
    if cmd == "free-ports":
        print(" ".join(str(p) for p in free_ports(int(args[1]))))
        return 0
    if cmd == "is-free":
        return 0 if is_free(int(args[1])) else 1
    if cmd == "wait-redis":
        port = int(args[1])
        return wait(lambda: redis_ping(port), float(args[2]), pid)
    if cmd == "wait-tcp":
        port = int(args[1])
        return wait(lambda: tcp_open(port), float(args[2]), pid)
    if cmd == "wait-http":
        url = args[1]
        return wait(lambda: http_ok(url, auth), float(args[2]), pid)
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
