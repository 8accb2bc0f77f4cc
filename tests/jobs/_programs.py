"""Run a seed's whole program verbatim, as `python program.py` would."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from typing import Any


def run_program(source: str) -> dict[str, Any]:
    """Exec `source` as `__main__` (so its `asyncio.run(main())` runs); return its globals."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<seed program>", "exec"), namespace)
    return namespace


def load_program(source: str) -> dict[str, Any]:
    """Exec `source` as an imported module (its `if __name__ == "__main__"` part is skipped)."""
    namespace: dict[str, Any] = {"__name__": "seed_program"}
    exec(compile(textwrap.dedent(source), "<seed program>", "exec"), namespace)
    return namespace


def run_program_until_signal(
    source: str, sig: int = signal.SIGTERM, timeout: float = 20.0
) -> tuple[dict[str, Any], bool]:
    """Run `source` like `run_program`, and send `sig` to this process once the program has
    installed its own handler for it (the worker is running) and has not returned yet.

    Returns the program's globals and whether the signal was sent before it returned (False:
    it returned without waiting for the signal). A helper thread waits; it never signals a
    process whose handler is the default one, so the test runner cannot be killed.
    """
    default = signal.getsignal(sig)
    done = threading.Event()
    sent: list[bool] = []

    def send_when_listening() -> None:
        deadline = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < deadline:
            if signal.getsignal(sig) is not default:
                time.sleep(0.2)  # let the worker settle into waiting
                if not done.is_set():
                    sent.append(True)
                    os.kill(os.getpid(), sig)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=send_when_listening, daemon=True)
    thread.start()
    try:
        namespace = run_program(source)
    finally:
        done.set()
        thread.join(timeout)
    return namespace, bool(sent)
