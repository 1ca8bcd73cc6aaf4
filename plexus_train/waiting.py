"""Waiting on SageMaker: poll a describe call until a terminal status, reporting each change, bounded by a
timeout. Sleep and clock are injectable so tests never wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from plexus_infra.core.errors import PlexusError


class StatusReporter(Protocol):
    """Receives what a SageMaker job or endpoint is doing (each status, each log line); must not affect it.
    `views.StatusLines` prints them."""

    def status(self, text: str) -> None: ...
    def log(self, line: str) -> None: ...


@dataclass(frozen=True)
class Waiter:
    """+ what: the thing waited for, for messages
    + status: picks the status text to show from a describe answer
    + terminal: statuses that end the wait (success or failure alike)
    """

    what: str
    status: Callable[[dict[str, Any]], str]
    terminal: Collection[str]
    timeout: float = 3 * 3600.0
    interval: float = 15.0


def wait(
    waiter: Waiter,
    describe: Callable[[], dict[str, Any]],
    on_status: Callable[[str], None],
    on_tick: Callable[[dict[str, Any]], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll `describe` until its status is terminal; return the last answer."""
    deadline = clock() + waiter.timeout
    while True:
        answer = describe()
        status = waiter.status(answer)
        on_status(status)
        on_tick(answer)
        if status.split(" ")[0] in waiter.terminal:
            return answer
        if clock() + waiter.interval > deadline:
            raise PlexusError(f"gave up waiting for {waiter.what} after {waiter.timeout:.0f} s (last: {status})")
        sleep(waiter.interval)
