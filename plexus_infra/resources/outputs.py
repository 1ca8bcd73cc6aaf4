"""Published outputs: SSM String parameters that `plexus train` reads, each tagged with the CloudFormation
export name it replaces. One resource for the three, so one `GetParameters` reads them all.

They are written first (before the bucket and the role exist: their values are derived names), so that from the
first write on, this environment's outputs vouch for the bucket and role it is making (base.Evidence): a run
killed between creating the bucket and tagging it resumes with a plain apply."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from plexus_infra import environments
from plexus_infra.core.aws import Clients, call
from plexus_infra.core.tags import split_system_tags, tag_dict, tag_list
from plexus_infra.manifest.model import ENVIRONMENT_TAG, Environment
from plexus_infra.plan import DELETE, UPDATE, Call, Change
from plexus_infra.resources.base import NO_EVIDENCE, Evidence, Removable, claim, owned_by, tag_calls
from plexus_infra.resources.bucket import bucket_arn
from plexus_infra.resources.role import role_arn

EXPORT_NAME_TAG = "plexus:export-name"


class SsmOutputs(Removable):
    kind = "ssm_outputs"
    noop_reason = "outputs already published with the current values"

    @property
    def name(self) -> str:
        return self.ctx.env.name

    def values(self) -> dict[str, str]:
        """Output key → value, derived from the manifest and the account."""
        return {
            environments.BUCKET_NAME: self.ctx.env.bucket.name,
            environments.BUCKET_ARN: bucket_arn(self.ctx),
            environments.ROLE_ARN: role_arn(self.ctx),
        }

    def desired(self) -> dict[str, Any]:
        values = self.values()
        env = self.ctx.env
        return {
            output.parameter_name: {
                "value": values[output.key],
                "type": "String",
                "tags": {**env.resource_tags, EXPORT_NAME_TAG: output.export_name},
            }
            for output in env.outputs
        }

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        """The declared parameters, plus any this environment published under another name before (a changed
        parameter_prefix), found by their tags so they can be removed rather than orphaned. Environments planned
        together read the first two together (`read_together`), once for all of them."""
        declared = {output.parameter_name for output in self.ctx.env.outputs}
        shared: SharedReads | None = clients.shared.get(SharedReads.KEY)
        if shared is not None and self.ctx.env.name in shared.environments:
            mine = declared | set(shared.stale.get(self.ctx.env.name, ()))
            found = {name: shared.values[name] for name in mine if name in shared.values}
        else:
            found = parameter_values(clients, declared | set(published(clients, [self.ctx.env.name])))
        if not found:
            return None
        observed = {}
        for name, parameter in sorted(found.items()):
            known = shared.tags.get(name) if shared is not None else None
            user, system = split_system_tags(known if known is not None else parameter_tags(clients, name))
            observed[name] = {"value": parameter["Value"], "type": parameter["Type"], "tags": user}
            if system:  # a parameter CloudFormation made; its `aws:` tags are never diffed nor removed
                observed[name]["system_tags"] = system
        return observed

    def calls(self, change: Change) -> Iterable[Call]:
        live, wanted = change.before or {}, self.desired()
        stale = [name for name in change.changed if name not in wanted]
        if stale:
            yield self._delete(stale)
        for name in change.changed:
            if name in wanted:
                yield from self._publish(name, live.get(name), wanted[name])

    def _publish(self, name: str, current: dict[str, Any] | None, wanted: dict[str, Any]) -> Iterator[Call]:
        """One parameter: create it with its tags, or overwrite the value and fix the tags, as needed."""
        resource = f"parameter {name}"
        value = {"Name": name, "Value": wanted["value"], "Type": "String"}
        if current is None:
            # Created without Overwrite, so Tags may go along (AWS rejects Overwrite together with Tags); one
            # made meanwhile by someone else is planned again (and is theirs unless it carries our tags).
            yield Call(
                "ssm",
                "PutParameter",
                {**value, "Tags": tag_list(wanted["tags"])},
                resource,
                conflict=("ParameterAlreadyExists",),
            )
            return
        if (current["value"], current["type"]) != (wanted["value"], wanted["type"]):
            yield Call("ssm", "PutParameter", {**value, "Overwrite": True}, resource)
        target = {"ResourceType": "Parameter", "ResourceId": name}
        yield from tag_calls(
            current["tags"],
            wanted["tags"],
            lambda keys: Call("ssm", "RemoveTagsFromResource", {**target, "TagKeys": keys}, resource),
            lambda tags: Call("ssm", "AddTagsToResource", {**target, "Tags": tags}, resource),
        )

    @staticmethod
    def _delete(names: list[str]) -> Call:
        return Call("ssm", "DeleteParameters", {"Names": names}, f"parameters {', '.join(names)}")

    def evidence(self, observed: dict[str, Any] | None) -> Evidence:
        """What the declared outputs that carry this environment's ownership tags name (see Evidence)."""
        declared = {output.parameter_name for output in self.ctx.env.outputs}
        return Evidence(
            frozenset(
                parameter["value"]
                for name, parameter in (observed or {}).items()
                if name in declared and owned_by(parameter["tags"], self.ctx.env)
            )
        )

    def compare(self, observed: dict[str, Any] | None) -> Change:
        """Ours under a name the manifest no longer declares is removed."""
        wanted = self.desired()
        stale = tuple(sorted(name for name in observed or {} if name not in wanted))
        change = super().compare(observed)
        if stale:
            change = replace(
                change,
                actions=UPDATE,
                after=wanted,
                changed=(*change.changed, *stale),
                reason="differs from the manifest",
            )
        return change

    def ownership(self, change: Change, observed: dict[str, Any] | None, evidence: Evidence) -> Change:
        """Each existing parameter must be ours; one that is nobody's makes the change foreign (--adopt)."""
        for parameter in (observed or {}).values():
            change = claim(change, parameter["tags"], self.ctx.env, self.desired())
        return change

    def destroy(self, observed: dict[str, Any] | None, evidence: Evidence = NO_EVIDENCE) -> Change:
        ours = {n: p for n, p in (observed or {}).items() if owned_by(p["tags"], self.ctx.env)}
        if not ours:
            return super().destroy(None)
        calls = tuple(self.removal(ours))
        return Change(self.address, DELETE, ours, None, tuple(sorted(ours)), "removed by destroy", calls=calls)

    def removal(self, observed: dict[str, Any]) -> Iterable[Call]:
        yield self._delete(sorted(observed))


def published(clients: Clients, environments: list[str]) -> list[str]:
    """Names of every output parameter tagged as one of `environments`' (wherever its prefix put it)."""
    names: list[str] = []
    for batch in (environments[i : i + 50] for i in range(0, len(environments), 50)):  # a filter takes 50 values
        filters = [{"Key": f"tag:{ENVIRONMENT_TAG}", "Values": batch}, {"Key": f"tag:{EXPORT_NAME_TAG}"}]
        page: dict[str, Any] = {}
        while True:
            more = {"NextToken": page["NextToken"]} if page.get("NextToken") else {}
            page = call(clients.ssm.describe_parameters, "output parameters", ParameterFilters=filters, **more) or {}
            names += [parameter["Name"] for parameter in page.get("Parameters", ())]
            if not page.get("NextToken"):
                break
    return names


def parameter_tags(clients: Clients, name: str) -> dict[str, str]:
    answer = call(
        clients.ssm.list_tags_for_resource,
        f"parameter {name}",
        absent=("InvalidResourceId",),
        ResourceType="Parameter",
        ResourceId=name,
    )
    return tag_dict((answer or {}).get("TagList"))


def parameter_values(clients: Clients, names: set[str]) -> dict[str, Any]:
    """GetParameters for `names`, ten at a time (its limit): name → the parameter, for those that exist."""
    ordered, found = sorted(names), {}
    for batch in (ordered[i : i + 10] for i in range(0, len(ordered), 10)):
        answer = call(clients.ssm.get_parameters, f"parameters {', '.join(batch)}", Names=batch)
        found |= {p["Name"]: p for p in (answer or {}).get("Parameters", ())}
    return found


@dataclass(frozen=True)
class SharedReads:
    """What several environments sharing clients (one account and region) read once, together: the values of
    every output they declare, and the outputs each published under a name it no longer declares (stale: found
    by their tags, which were read to tell whose they are)."""

    KEY: ClassVar[str] = "ssm_outputs"
    environments: frozenset[str]
    values: dict[str, Any]
    stale: dict[str, list[str]]
    tags: dict[str, dict[str, str]]


def read_together(clients: Clients, envs: list[Environment]) -> None:
    """Make the reads of `envs`' outputs once for all of them, for their observes to use (`SharedReads`): one
    DescribeParameters and GetParameters ten names at a time, instead of one and one for each environment."""
    declared = {output.parameter_name for env in envs for output in env.outputs}
    found = set(published(clients, sorted({env.name for env in envs})))
    values = parameter_values(clients, declared | found)
    tags = {name: parameter_tags(clients, name) for name in sorted(found - declared)}  # rare: a moved prefix
    stale: dict[str, list[str]] = {}
    for name, tagged in tags.items():
        stale.setdefault(tagged.get(ENVIRONMENT_TAG, ""), []).append(name)
    clients.shared[SharedReads.KEY] = SharedReads(frozenset(e.name for e in envs), values, stale, tags)
