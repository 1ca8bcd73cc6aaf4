"""A per-environment lock so two applies (or an apply and a destroy) never interleave their writes.

There is no state file to lock, so the lock is an SSM String parameter named after the environment,
`/plexus-infra/locks/{environment}`, created with `put_parameter` *without* `Overwrite`: AWS creates it
atomically or answers `ParameterAlreadyExists`, which means someone else holds it. Its value says who, what and
when. The name depends on nothing but the environment's name, so a manifest that moves its outputs
(`outputs.parameter_prefix`) still excludes a run of the old manifest.

The lock is a short lease (LOCK_TTL, minutes): while held, a background thread renews it every third of the
lease (rewrites `expires`, only while the lock still carries our id), so a long destroy never outlives it, and a
run that dies (SIGKILL, a lost CI runner, OOM) stops renewing. Its lock is then abandoned, and another run takes
it over by itself: at once when that run is on the same host and the holder's process is gone (the value records
host, boot and process), else once the lease has run out (so `--lock-timeout` of one lease always suffices).
force-unlock remains for breaking a live lease by hand. Release stops the renewal, then deletes the lock only
while it still carries our id (read, compare, delete: SSM has no conditional delete, so a force-unlock or a
takeover racing a release or a renewal is the one window left, as with Terraform's backends).

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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plexus_infra.core.aws import IN_PROGRESS, Clients, call, until_consistent
from plexus_infra.core.errors import ApplyError, LockError, PlexusError
from plexus_infra.core.tags import tag_list
from plexus_infra.manifest.model import Environment

LOCK_PREFIX = "/plexus-infra/locks"
# The lease: a run that dies without releasing leaves its lock behind, abandoned once this long has passed.
LOCK_TTL = timedelta(minutes=3)
LOCK_VALUE_VERSION = 2
FIRST_POLL = 0.5
MAX_POLL = 5.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Process:
    """Which process holds a lock, precisely enough to tell, on its host, whether it still runs.

    + host: the host name
    + pid: its process id
    + boot: the host's boot id (Linux's /proc/sys/kernel/random/boot_id), "" where unknown: a reboot frees every pid
    + started: the process's start time since boot (clock ticks, /proc/PID/stat), 0 where unknown: a pid reused
      by another process after the holder died starts at another time
    """

    host: str
    pid: int
    boot: str = ""
    started: int = 0

    @classmethod
    def current(cls) -> Process:
        return cls(socket.gethostname(), os.getpid(), _boot_id(), _start_ticks(os.getpid()))

    def gone(self, here: Process) -> bool:
        """True only when `here` (this process) can tell the holder is dead: same host, and that host rebooted,
        or no process runs under the pid, or one that started at another time. Another host can never tell."""
        if self.host != here.host or self.pid <= 0:
            return False
        if self.boot and here.boot and self.boot != here.boot:
            return True
        if self.pid == here.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it runs, as someone else
            return False
        return bool(self.started) and _start_ticks(self.pid) not in (0, self.started)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat (after the parenthesised command name, which may hold spaces); 0 where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


@dataclass(frozen=True)
class LockInfo:
    """Who holds an environment's lock.

    + id: uuid4, the lock's identity (force-unlock needs it, release compares it)
    + who: `user@host (pid N)`, for the person reading a conflict message
    + operation: apply or destroy
    + created / expires: UTC; after `expires` the lock counts as abandoned
    + process: the holding process, when the value records it (older values and foreign ones do not)
    + readable: False for a value this tool did not write, which is never taken over (only force-unlock breaks it)
    """

    id: str
    who: str
    operation: str
    created: datetime
    expires: datetime
    process: Process | None = None
    readable: bool = True

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def abandoned(self, now: datetime, here: Process) -> bool:
        """The holder stopped renewing (its lease ran out), or is provably dead on this very host."""
        return self.readable and (self.expired(now) or (self.process is not None and self.process.gone(here)))

    def to_json(self) -> str:
        process = self.process
        return json.dumps(
            {
                "version": LOCK_VALUE_VERSION,
                "id": self.id,
                "who": self.who,
                "operation": self.operation,
                "created": _iso(self.created),
                "expires": _iso(self.expires),
                **(
                    {"host": process.host, "pid": process.pid, "boot": process.boot, "started": process.started}
                    if process
                    else {}
                ),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """Parse a lock's value; a value this tool did not write still yields something to show and break."""
        try:
            data = json.loads(text)
            process = None
            if isinstance(data.get("host"), str) and isinstance(data.get("pid"), int):
                process = Process(data["host"], data["pid"], str(data.get("boot", "")), int(data.get("started", 0)))
            return cls(
                id=str(data["id"]),
                who=str(data.get("who", "unknown")),
                operation=str(data.get("operation", "unknown")),
                created=_parse_time(data["created"]),
                expires=_parse_time(data["expires"]),
                process=process,
            )
        except (ValueError, KeyError, TypeError):
            epoch = datetime.fromtimestamp(0, UTC)
            unknown = "unknown (unreadable lock value)"
            return cls(text.strip()[:64], unknown, "unknown", epoch, epoch, readable=False)

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
    return LockInfo(str(uuid.uuid4()), whoami(), operation, now, now + ttl, Process.current())


def _write(method: Any, name: str, **kwargs: Any) -> Any:
    """A write to the lock parameter, sent again while SSM answers TooManyUpdates (which botocore does not retry)."""
    absent = kwargs.pop("absent", ())
    return until_consistent(
        lambda: call(method, f"lock parameter {name}", absent=absent, error=ApplyError, **kwargs), codes=IN_PROGRESS
    )


def read(clients: Clients, env: Environment) -> LockInfo | None:
    """The current lock, or None when the environment is unlocked."""
    name = lock_parameter(env)
    answer = call(clients.ssm.get_parameter, f"lock parameter {name}", absent=("ParameterNotFound",), Name=name)
    return None if answer is None else LockInfo.from_json(answer["Parameter"]["Value"])


def try_acquire(clients: Clients, env: Environment, lock: LockInfo) -> bool:
    """One atomic attempt: True when the parameter was created (the lock is ours), False when it exists."""
    name = lock_parameter(env)
    created = _write(
        clients.ssm.put_parameter,
        name,
        absent=("ParameterAlreadyExists",),
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
    on_takeover: Callable[[LockInfo], None] | None = None,
    clock: Clock = utcnow,
    sleep: Sleep = time.sleep,
    ttl: timedelta = LOCK_TTL,
) -> LockInfo:
    """Take the environment's lock, polling with jittered backoff for up to `timeout` seconds.

    A lock its holder abandoned (`LockInfo.abandoned`) is removed and taken; `on_takeover` hears of it. Raises
    LockError naming the holder when a live one keeps it; `on_wait` hears about the holder once, when waiting
    starts, so the CLI can say what it waits for.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    delay = FIRST_POLL
    announced: str | None = None
    here = Process.current()
    while True:
        mine = new_lock(operation, clock(), ttl)
        if try_acquire(clients, env, mine):
            return mine
        holder = read(clients, env)
        if holder is None:  # released between our attempt and the read: try again at once
            continue
        if holder.id == mine.id:  # our create landed but its answer was lost and the retry saw it exists
            return mine
        if holder.abandoned(clock(), here):
            if release(clients, env, holder) and on_takeover:  # only while it still is that holder's
                on_takeover(holder)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockError(conflict_message(env, holder, clock(), waited=timeout))
        if on_wait and announced != holder.id:
            on_wait(holder)
            announced = holder.id
        sleep(min(delay * random.uniform(0.5, 1.0), remaining))
        delay = min(delay * 2, MAX_POLL)


def clear_abandoned(
    clients: Clients, env: Environment, *, on_takeover: Callable[[LockInfo], None] | None = None, clock: Clock = utcnow
) -> None:
    """Remove a lock its holder abandoned (see LockInfo.abandoned), for a run that needs none itself: a run killed
    as it released its lock leaves nothing behind once the next run has looked. One read when there is no lock."""
    holder = read(clients, env)
    abandoned = holder is not None and holder.abandoned(clock(), Process.current())
    if abandoned and release(clients, env, holder) and on_takeover:
        on_takeover(holder)


def conflict_message(env: Environment, holder: LockInfo, now: datetime, *, waited: float = 0.0) -> str:
    """One line: who holds it, doing what, since when, its id, and the two ways forward."""
    waited_text = f" after waiting {waited:g}s" if waited > 0 else ""
    if not holder.readable:
        return (
            f"{env.name} is locked{waited_text} by a value plexus-infra did not write ({lock_parameter(env)}); "
            f"if nothing else uses it: plexus-infra force-unlock {holder.id} {env.source}"
        )
    left = max(int((holder.expires - now).total_seconds()) + 1, 1)
    return (
        f"{env.name} is locked{waited_text} by {holder.describe(now)}; if that run is gone its lease runs out by "
        f"itself: wait for it with --lock-timeout {left}, or break it now: plexus-infra force-unlock {holder.id} "
        f"{env.source} --force"
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
    renewed = replace(lock, expires=clock() + ttl)
    name = lock_parameter(env)
    _write(
        clients.ssm.put_parameter,
        name,
        Name=name,
        Value=renewed.to_json(),
        Type="String",
        Overwrite=True,
    )
    return renewed


# How a renewal thread waits for its next tick: (stop event, seconds) → True once it should stop.
Tick = Callable[[threading.Event, float], bool]


def real_ticks(stopped: threading.Event, seconds: float) -> bool:
    return stopped.wait(seconds)


class Renewal:
    """A daemon thread renewing a held lock every `every` seconds until `stop()`.

    A renewal that fails (a network blip) is tried again at the next tick: the lock still has most of its lease.
    Renewal ends by itself once the lock is no longer ours. `stop()` waits for a renewal in flight, so a
    release that follows can never be undone by a late overwrite. `wait` paces the ticks (tests step them).
    """

    def __init__(
        self,
        clients: Clients,
        env: Environment,
        lock: LockInfo,
        *,
        every: float,
        ttl: timedelta,
        clock: Clock,
        wait: Tick = real_ticks,
    ):
        self.lock = lock
        self._args = (clients, env)
        self._every = every
        self._ttl = ttl
        self._clock = clock
        self._wait = wait
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"plexus-infra lock renewal ({env.name})", daemon=True)

    def start(self) -> Renewal:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._wait(self._stopped, self._every):
            try:
                renewed = renew(*self._args, self.lock, clock=self._clock, ttl=self._ttl)
            except PlexusError:
                continue
            if renewed is None:
                return
            self.lock = renewed


@contextmanager
def held(
    clients: Clients,
    env: Environment,
    operation: str,
    *,
    timeout: float = 0.0,
    on_wait: Callable[[LockInfo], None] | None = None,
    on_takeover: Callable[[LockInfo], None] | None = None,
    ttl: timedelta = LOCK_TTL,
    clock: Clock = utcnow,
    ticks: Tick = real_ticks,
) -> Iterator[LockInfo]:
    """Hold the lock for the block, renewing it every ttl/3; release it however the block ends (errors,
    Ctrl-C included).

    When the block already failed, a failing release must not hide that first failure: the lock then
    stays until its lease runs out (or force-unlock).
    """
    lock = acquire(
        clients, env, operation, timeout=timeout, on_wait=on_wait, on_takeover=on_takeover, clock=clock, ttl=ttl
    )
    renewal = Renewal(clients, env, lock, every=ttl.total_seconds() / 3, ttl=ttl, clock=clock, wait=ticks).start()
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
    _write(clients.ssm.delete_parameter, name, absent=("ParameterNotFound",), Name=name)


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
