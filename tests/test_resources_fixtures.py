"""Every resource kind's observe → diff, driven by data files: `tests/resources/<kind>/<case>.json`.

Each file holds `description`, optional `manifest` (overrides deep-merged into `tests/resources/manifest.json`),
`observed` (boto3 method → the response recorded from moto, edited per case; `{"Error": {"Code": ...}}` for an
AWS error; `{"@by": ARG, "@answers": {value: response}}` when the answer depends on a request argument),
optional `evidence` (what this environment's published outputs name: see resources.base.Evidence) and the
expected result: `actions`, `changes` (the changed attributes, in order) and `calls` (the AWS requests the
change plans, as the JSON plan shows them: `action` and `params`), or `noop_reason`; `foreign` when the live
resource lacks ownership tags; `managed_by` when a CloudFormation stack holds it; or `refused`, a GuardError's
words, when the diff must not happen. A case without `noop_reason` that yields a no-op fails, as pyinfra's
operation tests do.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from plexus_infra.core.errors import GuardError
from plexus_infra.engine import RESOURCE_KINDS
from plexus_infra.resources.base import Evidence
from tests.helpers import FIXTURES, resource_for

KINDS = {kind.kind: kind for kind in RESOURCE_KINDS}


class RecordedService:
    """Stands in for a boto3 client: each method answers with the case's recorded response, or raises it."""

    def __init__(self, recorded: dict[str, Any], calls: list[str]):
        self._recorded = recorded
        self._calls = calls

    def __getattr__(self, method: str) -> Any:
        if method not in self._recorded:
            raise AssertionError(f"unrecorded call {method}: add its response to the fixture's `observed`")

        def answer(**kwargs: Any) -> Any:
            self._calls.append(method)
            recorded = self._recorded[method]
            if isinstance(recorded, dict) and "@by" in recorded:
                recorded = recorded["@answers"][kwargs[recorded["@by"]]]
            if isinstance(recorded, dict) and "Error" in recorded:
                raise ClientError(copy.deepcopy(recorded), method)
            return copy.deepcopy(recorded)

        answer.__name__ = method
        return answer


class RecordedClients:
    """`Clients` for one fixture: every service answers from the same recording (method names differ)."""

    def __init__(self, recorded: dict[str, Any]):
        self.calls: list[str] = []
        self.s3 = self.iam = self.ssm = self.cloudformation = RecordedService(recorded, self.calls)
        self.shared: dict[str, Any] = {}  # no reads shared with other environments


def fixture_files() -> list[Any]:
    return [
        pytest.param(path, id=f"{path.parent.name}/{path.stem}")
        for path in sorted(FIXTURES.glob("*/*.json"))
        if path.parent.name in KINDS
    ]


@pytest.mark.parametrize("path", fixture_files())
def test_fixture(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    resource = resource_for(case, path.parent.name)
    clients = RecordedClients(case["observed"])
    snapshot = copy.deepcopy(case)

    observed = resource.observe(clients)  # type: ignore[arg-type]
    if "refused" in case:
        with pytest.raises(GuardError, match=re.escape(case["refused"])):
            resource.diff(observed, Evidence(frozenset(case.get("evidence", ()))))
        return
    change = resource.diff(observed, Evidence(frozenset(case.get("evidence", ()))))

    if "noop_reason" in case:
        assert change.actions == ("no-op",), f"{case['description']}: expected a no-op, got {change.changed}"
        assert change.reason == case["noop_reason"]
        assert change.changed == ()
    else:
        assert change.actions == tuple(case["actions"]), case["description"]
        assert list(change.changed) == case["changes"], case["description"]
        for name in change.changed:  # set or changed (in `after`), or removed (only in `before`)
            assert name in (change.after or {}) or name in (change.before or {}), f"changed attribute {name} unknown"
        assert [c.to_json() for c in change.calls] == case["calls"], case["description"]
    assert change.foreign == case.get("foreign", False)
    assert change.managed_by == case.get("managed_by", "")
    assert case == snapshot, "observe/diff must not modify their inputs"
    json.dumps(change.after), json.dumps(change.before)  # plan documents stay JSON


def test_every_kind_the_engine_manages_has_fixtures() -> None:
    covered = {path.parent.name for path in FIXTURES.glob("*/*.json")}
    assert covered == set(KINDS)


def test_every_fixture_has_a_description_and_one_expectation() -> None:
    for path in FIXTURES.glob("*/*.json"):
        case = json.loads(path.read_text(encoding="utf-8"))
        assert case.get("description"), path
        assert sum(key in case for key in ("noop_reason", "changes", "refused")) == 1, path
        assert ("calls" in case) == ("changes" in case), f"{path}: a change lists its calls, and only a change"
