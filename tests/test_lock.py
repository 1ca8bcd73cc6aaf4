"""The environment lock against the sandbox: atomic, named in conflicts, released on failure, breakable by id."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from plexus_infra import cli, engine, lock
from plexus_infra.core.aws import Clients
from plexus_infra.core.errors import LockError, PlexusError
from plexus_infra.manifest.validate import load_environment
from plexus_infra.sandbox import Sandbox

LOCK = "/plexus-infra/locks/staging"
BUCKET = "plexus-staging-training"


@pytest.fixture
def staging(workdir: Path):
    return load_environment("environments/staging.yaml")


def write_lock(lock_id: str, *, created: datetime, ttl: timedelta = lock.LOCK_TTL) -> None:
    """A lock as a run that died would have left it."""
    value = lock.LockInfo(lock_id, "ci@runner-7 (pid 4121)", "apply", created, created + ttl).to_json()
    boto3.client("ssm").put_parameter(Name=LOCK, Value=value, Type="String")


def lock_value() -> dict | None:
    found = boto3.client("ssm").get_parameters(Names=[LOCK])["Parameters"]
    return json.loads(found[0]["Value"]) if found else None


def test_lock_is_an_atomic_create_holding_who_what_and_when(sandbox: Sandbox, staging) -> None:
    clients = Clients(staging.region)
    held = lock.acquire(clients, staging, "apply")
    value = lock_value()
    assert value is not None
    assert value["id"] == held.id and value["operation"] == "apply" and "pid" in value["who"]
    assert datetime.fromisoformat(value["expires"]) - datetime.fromisoformat(value["created"]) == lock.LOCK_TTL
    with pytest.raises(LockError, match=rf"staging is locked by .* for apply, taken \d+s ago .*lock id {held.id}"):
        lock.acquire(Clients(staging.region), staging, "destroy")
    assert lock.release(clients, staging, held)
    assert lock_value() is None


def test_the_lock_is_keyed_on_the_environment_not_on_where_its_outputs_live(sandbox: Sandbox, staging) -> None:
    """A manifest that moves its outputs still excludes a run of the old manifest of the same environment."""
    moved = Path("environments/staging-moved.yaml")
    moved.write_text(Path(staging.source).read_text() + "outputs:\n  parameter_prefix: /plexus/staging-v2\n")
    moved_env = load_environment(moved)
    assert moved_env.parameter_prefix != staging.parameter_prefix
    assert lock.lock_parameter(staging) == lock.lock_parameter(moved_env) == LOCK

    held = lock.acquire(Clients(staging.region), staging, "apply")
    with pytest.raises(LockError, match=f"lock id {held.id}"):
        lock.acquire(Clients(moved_env.region), moved_env, "apply")


def ticking_clock(minutes: int = 10):
    """A clock that moves `minutes` further at every reading, so each renewal shows in whole seconds."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    readings = itertools.count()
    return lambda: start + timedelta(minutes=minutes * next(readings))


class StepTicks:
    """Renewal ticks the test lets through one at a time (lock.Tick), instead of real seconds going by."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.allowed = 0  # ticks the test has let through
        self.waits = 0  # times the renewal thread has asked for a tick

    def wait(self, stopped: threading.Event, seconds: float) -> bool:
        with self.condition:
            self.waits += 1
            self.condition.notify_all()
            while self.allowed < self.waits and not stopped.is_set():
                self.condition.wait(0.01)
            return self.allowed < self.waits

    def step(self, *, last: bool = False) -> None:
        """Let one renewal happen, and return once it is done: the thread is back waiting, or (`last`) has ended."""
        with self.condition:
            assert self.condition.wait_for(lambda: self.waits > self.allowed, timeout=10), "renewal never waited"
            self.allowed += 1
            self.condition.notify_all()
            done = (lambda: not renewal_threads()) if last else (lambda: self.waits > self.allowed)
            assert self.condition.wait_for(done, timeout=10), "the renewal did not finish"


def renewal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("plexus-infra lock renewal")]


def test_a_held_lock_is_renewed_while_held_and_renewal_stops_at_release(sandbox: Sandbox, staging) -> None:
    ticks = StepTicks()
    with lock.held(Clients(staging.region), staging, "destroy", clock=ticking_clock(), ticks=ticks.wait) as mine:
        first = lock_value()
        ticks.step()
        renewed = lock_value()
        assert renewed["expires"] > first["expires"], "the lock was not renewed"
        assert (renewed["id"], renewed["created"], renewed["operation"]) == (mine.id, first["created"], "destroy")
        ticks.step()
        assert lock_value()["expires"] > renewed["expires"]
    assert lock_value() is None
    assert renewal_threads() == []
    assert ticks.waits == ticks.allowed + 1  # stopped while waiting: no renewal after the release


def test_renewal_never_touches_a_lock_that_is_no_longer_ours(sandbox: Sandbox, staging) -> None:
    clients, ticks = Clients(staging.region), StepTicks()
    with lock.held(clients, staging, "apply", clock=ticking_clock(), ticks=ticks.wait) as mine:
        lock.force_unlock(clients, staging, mine.id, force=True)
        other = lock.acquire(Clients(staging.region), staging, "apply")
        taken = lock_value()
        ticks.step(last=True)  # finding the lock someone else's, renewal ends
        assert lock_value() == taken, "renewal overwrote another run's lock"
    assert lock_value()["id"] == other.id, "release left the other run's lock alone"
    assert lock.renew(clients, staging, mine) is None


def test_release_leaves_a_lock_that_is_no_longer_ours(sandbox: Sandbox, staging) -> None:
    clients = Clients(staging.region)
    first = lock.acquire(clients, staging, "apply")
    lock.force_unlock(clients, staging, first.id, force=True)
    second = lock.acquire(clients, staging, "apply")
    assert not lock.release(clients, staging, first)
    assert lock_value()["id"] == second.id


def test_lock_is_released_when_the_block_fails(sandbox: Sandbox, staging) -> None:
    with pytest.raises(KeyboardInterrupt), lock.held(Clients(staging.region), staging, "apply"):
        assert lock_value() is not None
        raise KeyboardInterrupt
    assert lock_value() is None


def test_waiting_for_the_lock_succeeds_once_the_holder_releases(sandbox: Sandbox, staging) -> None:
    clients = Clients(staging.region)
    holder = lock.acquire(clients, staging, "apply")
    heard: list[str] = []

    def holder_finishes_soon(seen: lock.LockInfo) -> None:
        heard.append(seen.id)
        threading.Timer(0.3, lock.release, (clients, staging, holder)).start()

    mine = lock.acquire(Clients(staging.region), staging, "apply", timeout=20, on_wait=holder_finishes_soon)
    assert heard == [holder.id]
    assert lock_value()["id"] == mine.id


def test_an_unreadable_lock_value_can_still_be_shown_and_broken(sandbox: Sandbox, staging) -> None:
    boto3.client("ssm").put_parameter(Name=LOCK, Value="not json", Type="String")
    clients = Clients(staging.region)
    with pytest.raises(LockError, match=r"locked by a value plexus-infra did not write .*force-unlock not json"):
        lock.acquire(clients, staging, "apply")
    lock.force_unlock(clients, staging, "not json")
    assert lock_value() is None


def test_apply_against_a_held_lock_fails_naming_the_holder_without_writing(sandbox: Sandbox, workdir, capsys) -> None:
    write_lock("0b7f5c2e-9d1a-4c3e-8f6b-2a4d1e9c7b31", created=datetime.now(UTC) - timedelta(minutes=2))
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "staging is locked by ci@runner-7 (pid 4121) for apply, taken 2m" in err
    assert "lock id 0b7f5c2e-9d1a-4c3e-8f6b-2a4d1e9c7b31" in err
    assert "plexus-infra force-unlock 0b7f5c2e-9d1a-4c3e-8f6b-2a4d1e9c7b31 environments/staging.yaml --force" in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_a_lock_whose_lease_ran_out_is_taken_over_by_the_next_apply(sandbox: Sandbox, workdir, capsys) -> None:
    """A run on another host that died stops renewing: once its lease is over, the next run takes the lock."""
    write_lock("6c1d2f8a-0000-4000-8000-000000000001", created=datetime.now(UTC) - timedelta(hours=3))
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert (
        "Broke the lock left by a run that is gone: ci@runner-7 (pid 4121) for apply, taken 3h 0m ago (expired" in out
    )
    assert lock_value() is None


def test_a_live_lease_from_another_host_is_waited_for_at_most_its_length(sandbox: Sandbox, workdir, capsys) -> None:
    lock_id = "6c1d2f8a-0000-4000-8000-000000000003"
    write_lock(lock_id, created=datetime.now(UTC), ttl=timedelta(seconds=3))
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "if that run is gone its lease runs out by itself: wait for it with --lock-timeout " in err
    assert f"or break it now: plexus-infra force-unlock {lock_id} environments/staging.yaml --force" in err
    assert cli.main(["apply", "--env", "staging", "--auto-approve", "--lock-timeout", "30"]) == cli.EXIT_OK
    assert "Broke the lock left by a run that is gone" in capsys.readouterr().out


def test_an_expired_lock_is_broken_by_force_unlock_with_its_id(sandbox: Sandbox, workdir, capsys) -> None:
    lock_id = "6c1d2f8a-0000-4000-8000-000000000001"
    write_lock(lock_id, created=datetime.now(UTC) - timedelta(hours=3))
    assert cli.main(["force-unlock", "wrong-id", "--env", "staging"]) == cli.EXIT_ERROR
    assert "lock id wrong-id does not match staging's lock" in capsys.readouterr().err
    assert lock_value()["id"] == lock_id

    assert cli.main(["force-unlock", lock_id, "--env", "staging"]) == cli.EXIT_OK
    assert "Broke staging's lock: it was held by ci@runner-7 (pid 4121)" in capsys.readouterr().out
    assert lock_value() is None


def test_force_unlock_refuses_a_live_lock_without_force(sandbox: Sandbox, workdir, capsys) -> None:
    lock_id = "6c1d2f8a-0000-4000-8000-000000000002"
    write_lock(lock_id, created=datetime.now(UTC))
    assert cli.main(["force-unlock", lock_id, "--env", "staging"]) == cli.EXIT_ERROR
    assert "has not expired; if that run is really gone, add --force" in capsys.readouterr().err
    assert cli.main(["force-unlock", lock_id, "--env", "staging", "--force"]) == cli.EXIT_OK
    assert cli.main(["force-unlock", lock_id, "--env", "staging"]) == cli.EXIT_ERROR
    assert "staging is not locked" in capsys.readouterr().err


def test_a_rerun_on_the_same_host_takes_over_at_once_from_a_killed_run(sandbox: Sandbox, workdir, capsys) -> None:
    """A process SIGKILLed while holding the lock runs no cleanup; on its own host its death is plain to see."""
    script = (
        "import os, signal\n"
        "from plexus_infra import lock\nfrom plexus_infra.core.aws import Clients\n"
        "from plexus_infra.manifest.validate import load_environment\n"
        "env = load_environment('environments/staging.yaml')\n"
        "held = lock.acquire(Clients(env.region), env, 'apply')\n"
        "print(held.id, os.getpid(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=workdir, timeout=60)
    assert killed.returncode == -9
    lock_id, pid = killed.stdout.split()
    assert lock_value()["id"] == lock_id and lock_value()["pid"] == int(pid)
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == cli.EXIT_OK
    assert "Broke the lock left by a run that is gone: " in capsys.readouterr().out
    assert lock_value() is None


def test_a_holder_is_gone_only_where_this_host_can_tell() -> None:
    here = lock.Process.current()
    assert here.boot and here.started, "Linux records boot id and start time"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    assert lock.Process(here.host, dead_pid, here.boot, 12345).gone(here)  # no such process any more
    assert not lock.Process(here.host, here.pid, here.boot, here.started).gone(here)  # this very process
    parent = lock.Process.current()
    assert not lock.Process(here.host, os.getppid(), here.boot, 0).gone(here)  # alive, start time unrecorded
    reused = lock.Process(here.host, os.getppid(), here.boot, lock._start_ticks(os.getppid()) + 1)
    assert reused.gone(here)  # the pid lives, but another process has it now
    assert lock.Process(here.host, os.getppid(), "another-boot", 0).gone(here)  # the host rebooted since
    assert not lock.Process("another-host", dead_pid, "", 0).gone(here)  # elsewhere nothing can be told
    assert parent == here


@pytest.fixture
def write_windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float, str]]:
    """(start, end, environment source) of every engine.execute, slowed so the runs would overlap if they could."""
    windows: list[tuple[float, float, str]] = []
    real_execute = engine.execute

    def slow_execute(session, plan, **kwargs) -> None:
        start = time.monotonic()
        time.sleep(0.5)
        real_execute(session, plan, **kwargs)
        windows.append((start, time.monotonic(), session.env.source))

    monkeypatch.setattr(engine, "execute", slow_execute)
    return windows


def run_together(*argvs: list[str]) -> list[int]:
    """Start cli.main for each argv at the same instant, each in its own thread."""
    start = threading.Barrier(len(argvs))
    codes: list[int] = [-1] * len(argvs)

    def run(index: int, argv: list[str]) -> None:
        start.wait()
        codes[index] = cli.main(argv)

    threads = [threading.Thread(target=run, args=(i, argv)) for i, argv in enumerate(argvs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes


def test_two_simultaneous_applies_write_one_at_a_time_and_the_second_finds_nothing_to_do(
    sandbox: Sandbox, workdir, write_windows, capsys
) -> None:
    argv = ["apply", "--env", "staging", "--auto-approve", "--lock-timeout", "60"]
    assert run_together(argv, argv) == [0, 0]
    out = capsys.readouterr().out
    assert len(write_windows) == 1
    assert out.count("Apply complete! 10 added") == 1
    assert "Waiting up to 60s for the lock held by" in out
    assert "Nothing to do: another run converged staging while this one waited for the lock." in out
    assert lock_value() is None
    assert cli.main(["plan", "--env", "staging", "--detailed-exitcode"]) == cli.EXIT_OK


def test_an_apply_and_a_different_apply_of_one_environment_never_interleave(
    sandbox: Sandbox, workdir, write_windows, capsys
) -> None:
    other = Path("environments/staging-b.yaml")
    other.write_text(Path("environments/staging.yaml").read_text().replace("ml-staging", "ml-staging-b"))
    common = ["--auto-approve", "--lock-timeout", "60"]
    assert run_together(["apply", "environments/staging.yaml", *common], ["apply", str(other), *common]) == [0, 0]

    (_, first_end, _), (second_start, _, last) = sorted(write_windows)
    assert first_end <= second_start, "the second run wrote while the first still held the lock"
    tags = boto3.client("s3").get_bucket_tagging(Bucket=BUCKET)["TagSet"]
    expected = "ml-staging-b" if last == str(other) else "ml-staging"
    assert {"Key": "cost-center", "Value": expected} in tags
    assert "The live state changed while this run waited for the lock; the plan is now:" in capsys.readouterr().out
    assert cli.main(["plan", last, "--detailed-exitcode"]) == cli.EXIT_OK


def test_a_failing_apply_releases_its_lock(sandbox: Sandbox, workdir, monkeypatch) -> None:
    def fail(*_: object, **__: object) -> None:
        raise PlexusError("simulated failure mid-apply")

    monkeypatch.setattr(engine, "execute", fail)
    assert cli.main(["apply", "--env", "staging", "--auto-approve"]) == cli.EXIT_ERROR
    assert lock_value() is None
