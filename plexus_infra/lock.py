"""A per-environment lock so two applies (or an apply and a destroy) never interleave their writes.

There is no state file to lock, so the lock is an SSM String parameter named after the environment,
`/plexus-infra/locks/{environment}`, created with `put_parameter` *without* `Overwrite`: AWS creates it
atomically or answers `ParameterAlreadyExists`, which means someone else holds it. Its value says who, what and
when. The name depends on nothing but the environment's name, so a manifest that moves its outputs
(`outputs.parameter_prefix`) still excludes a run of the old manifest.

While held, a background thread renews the lock every third of its TTL (rewrites `expires`, only while the lock
still carries our id), so a long destroy never outlives it; a run that dies stops renewing and its lock expires.
Release stops the renewal, then deletes the lock only while it still carries our id (read, compare, delete: SSM
has no conditional delete, so a force-unlock racing a release or a renewal is the one window left, as with
Terraform's backends).

Example:
    with held(clients, env, "apply", timeout=30) as lock:
        ...  # writes
"""

from __future__ import annotations

import getpass
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from plexus_infra.core.aws import Clients, call
from plexus_infra.core.errors import ApplyError, LockError, PlexusError
from plexus_infra.core.tags import tag_list
from plexus_infra.manifest.model import Environment

LOCK_PREFIX = "/plexus-infra/locks"
# A run that dies without releasing leaves its lock behind; after this long force-unlock may break it without --force.
LOCK_TTL = timedelta(hours=1)
LOCK_VALUE_VERSION = 1
FIRST_POLL = 0.5
MAX_POLL = 5.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LockInfo:
    """Who holds an environment's lock.

    + id: uuid4, the lock's identity (force-unlock needs it, release compares it)
    + who: `user@host (pid N)`, for the person reading a conflict message
    + operation: apply or destroy
    + created / expires: UTC; after `expires` the lock counts as abandoned
    """

    id: str
    who: str
    operation: str
    created: datetime
    expires: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": LOCK_VALUE_VERSION,
                "id": self.id,
                "who": self.who,
                "operation": self.operation,
                "created": _iso(self.created),
                "expires": _iso(self.expires),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """Parse a lock's value; a value this tool did not write still yields something to show and break."""
        try:
            data = json.loads(text)
            return cls(
                id=str(data["id"]),
                who=str(data.get("who", "unknown")),
                operation=str(data.get("operation", "unknown")),
                created=_parse_time(data["created"]),
                expires=_parse_time(data["expires"]),
            )
        except (ValueError, KeyError, TypeError):
            epoch = datetime.fromtimestamp(0, UTC)
            unknown = "unknown (unreadable lock value)"
            return cls(id=text.strip()[:64], who=unknown, operation="unknown", created=epoch, expires=epoch)

    def describe(self, now: datetime) -> str:
        """`alice@ci-7 (pid 412) for apply, taken 2m 5s ago (expires in 57m 55s), lock id 1f0c…`"""
        age = _duration(now - self.created)
        left = self.expires - now
        expiry = f"expired {_duration(-left)} ago" if left <= timedelta(0) else f"expires in {_duration(left)}"
        return f"{self.who} for {self.operation}, taken {age} ago ({expiry}), lock id {self.id}"


def lock_parameter(env: Environment) -> str:
    """The lock's SSM name, keyed on the environment's name alone (not on anything a manifest can move).

    Example: lock_parameter(staging) == "/plexus-infra/locks/staging"
    """
    return f"{LOCK_PREFIX}/{env.name}"


def whoami() -> str:
    """`user@host (pid N)`; CI runners have no login name, so fall back to $USER or `unknown`."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = os.environ.get("USER", "unknown")
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def new_lock(operation: str, now: datetime, ttl: timedelta = LOCK_TTL) -> LockInfo:
    return LockInfo(id=str(uuid.uuid4()), who=whoami(), operation=operation, created=now, expires=now + ttl)


def read(clients: Clients, env: Environment) -> LockInfo | None:
    """The current lock, or None when the environment is unlocked."""
    name = lock_parameter(env)
    answer = call(clients.ssm.get_parameter, f"lock parameter {name}", absent=("ParameterNotFound",), Name=name)
    return None if answer is None else LockInfo.from_json(answer["Parameter"]["Value"])


def try_acquire(clients: Clients, env: Environment, lock: LockInfo) -> bool:
    """One atomic attempt: True when the parameter was created (the lock is ours), False when it exists."""
    name = lock_parameter(env)
    created = call(
        clients.ssm.put_parameter,
        f"lock parameter {name}",
        absent=("ParameterAlreadyExists",),
        error=ApplyError,
        Name=name,
        Value=lock.to_json(),
        Type="String",
        Description=f"plexus-infra lock for {env.name}: held while an apply or destroy writes",
        Tags=tag_list(env.ownership_tags),
    )
    return created is not None


def acquire(
    clients: Clients,
    env: Environment,
    operation: str,
    *,
    timeout: float = 0.0,
    on_wait: Callable[[LockInfo], None] | None = None,
    clock: Clock = utcnow,
    sleep: Sleep = time.sleep,
    ttl: timedelta = LOCK_TTL,
) -> LockInfo:
    """Take the environment's lock, polling with jittered backoff for up to `timeout` seconds.

    Raises LockError naming the holder when it stays taken; `on_wait` hears about the holder once, when
    waiting starts, so the CLI can say what it waits for.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    delay = FIRST_POLL
    announced: str | None = None
    while True:
        mine = new_lock(operation, clock(), ttl)
        if try_acquire(clients, env, mine):
            return mine
        holder = read(clients, env)
        if holder is None:  # released between our attempt and the read: try again at once
            continue
        if holder.id == mine.id:  # our create landed but its answer was lost and the retry saw it exists
            return mine
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockError(conflict_message(env, holder, clock(), waited=timeout))
        if on_wait and announced != holder.id:
            on_wait(holder)
            announced = holder.id
        sleep(min(delay * random.uniform(0.5, 1.0), remaining))
        delay = min(delay * 2, MAX_POLL)


def conflict_message(env: Environment, holder: LockInfo, now: datetime, *, waited: float = 0.0) -> str:
    """One line: who holds it, doing what, since when, its id, and the two ways forward."""
    waited_text = f" after waiting {waited:g}s" if waited > 0 else ""
    force = "" if holder.expired(now) else " --force"
    return (
        f"{env.name} is locked{waited_text} by {holder.describe(now)}; wait for it with --lock-timeout SECONDS, "
        f"or if that run is gone: plexus-infra force-unlock {holder.id} {env.source}{force}"
    )


def release(clients: Clients, env: Environment, lock: LockInfo) -> bool:
    """Delete the lock if it is still ours; False when it is gone or someone else's (after a force-unlock)."""
    current = read(clients, env)
    if current is None or current.id != lock.id:
        return False
    _delete(clients, env)
    return True


def renew(
    clients: Clients, env: Environment, lock: LockInfo, *, clock: Clock = utcnow, ttl: timedelta = LOCK_TTL
) -> LockInfo | None:
    """Push the lock's expiry to `ttl` from now, only while it still carries our id; None when it is gone or
    someone else's (a force-unlock), in which case nothing is written."""
    current = read(clients, env)
    if current is None or current.id != lock.id:
        return None
    renewed = LockInfo(lock.id, lock.who, lock.operation, lock.created, clock() + ttl)
    name = lock_parameter(env)
    call(
        clients.ssm.put_parameter,
        f"lock parameter {name}",
        error=ApplyError,
        Name=name,
        Value=renewed.to_json(),
        Type="String",
        Overwrite=True,
    )
    return renewed


class Renewal:
    """A daemon thread renewing a held lock every `every` seconds until `stop()`.

    A renewal that fails (a network blip) is tried again at the next tick: the lock still has most of its TTL.
    Renewal ends by itself once the lock is no longer ours. `stop()` waits for a renewal in flight, so a
    release that follows can never be undone by a late overwrite.
    """

    def __init__(
        self, clients: Clients, env: Environment, lock: LockInfo, *, every: float, ttl: timedelta, clock: Clock
    ):
        self.lock = lock
        self.renewals = 0
        self._args = (clients, env)
        self._every = every
        self._ttl = ttl
        self._clock = clock
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"plexus-infra lock renewal ({env.name})", daemon=True)

    def start(self) -> Renewal:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                renewed = renew(*self._args, self.lock, clock=self._clock, ttl=self._ttl)
            except PlexusError:
                continue
            if renewed is None:
                return
            self.lock = renewed
            self.renewals += 1


@contextmanager
def held(
    clients: Clients,
    env: Environment,
    operation: str,
    *,
    timeout: float = 0.0,
    on_wait: Callable[[LockInfo], None] | None = None,
    ttl: timedelta = LOCK_TTL,
    clock: Clock = utcnow,
) -> Iterator[LockInfo]:
    """Hold the lock for the block, renewing it every ttl/3; release it however the block ends (errors,
    Ctrl-C included).

    When the block already failed, a failing release must not hide that first failure: the lock then
    stays, and the next run's conflict message names its id for force-unlock.
    """
    lock = acquire(clients, env, operation, timeout=timeout, on_wait=on_wait, clock=clock, ttl=ttl)
    renewal = Renewal(clients, env, lock, every=ttl.total_seconds() / 3, ttl=ttl, clock=clock).start()
    try:
        yield lock
    except BaseException:
        renewal.stop()
        with suppress(PlexusError):
            release(clients, env, lock)
        raise
    renewal.stop()
    release(clients, env, lock)


def force_unlock(
    clients: Clients, env: Environment, lock_id: str, *, force: bool = False, clock: Clock = utcnow
) -> LockInfo:
    """Break the lock whose id is `lock_id` (the id is required, as in Terraform, so a new holder is never
    broken by mistake). A lock that has not expired yet is only broken with `force`."""
    current = read(clients, env)
    now = clock()
    if current is None:
        raise LockError(f"{env.name} is not locked (no {lock_parameter(env)}); nothing to unlock")
    if current.id != lock_id:
        raise LockError(
            f"lock id {lock_id} does not match {env.name}'s lock, held by {current.describe(now)}; nothing was changed"
        )
    if not current.expired(now) and not force:
        raise LockError(
            f"{env.name}'s lock is held by {current.describe(now)} and has not expired; if that run is really gone, "
            f"add --force"
        )
    _delete(clients, env)
    return current


def _delete(clients: Clients, env: Environment) -> None:
    name = lock_parameter(env)
    call(
        clients.ssm.delete_parameter,
        f"lock parameter {name}",
        absent=("ParameterNotFound",),
        error=ApplyError,
        Name=name,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(delta: timedelta) -> str:
    """`2d 3h`, `3h 2m`, `2m 5s`, `4s`: a person's reading of an age."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
