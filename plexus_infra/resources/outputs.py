"""Published outputs: SSM String parameters that `plexus train` reads, each tagged with the seed's
export name. One resource for the three, so one `GetParameters` reads them all."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from plexus_infra.aws import Clients, call
from plexus_infra.errors import ApplyError
from plexus_infra.manifest.model import ENVIRONMENT_TAG
from plexus_infra.plan import DELETE, UPDATE, Change
from plexus_infra.resources.base import Removable, claim, owned_by, sync_tags, tag_dict, tag_list

EXPORT_NAME_TAG = "plexus:export-name"


class Outputs(Removable):
    kind = "ssm_outputs"
    noop_reason = "outputs already published with the current values"

    @property
    def name(self) -> str:
        return self.ctx.env.name

    def values(self) -> dict[str, str]:
        """Output key → value, derived from the manifest and the account."""
        return {
            "training-bucket-name": self.ctx.env.bucket.name,
            "training-bucket-arn": self.ctx.bucket_arn,
            "sagemaker-training-role-arn": self.ctx.role_arn,
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
        parameter_prefix), found by their tags so they can be removed rather than orphaned."""
        names = sorted({output.parameter_name for output in self.ctx.env.outputs} | set(self.published(clients)))
        found: dict[str, Any] = {}
        for batch in (names[i : i + 10] for i in range(0, len(names), 10)):  # GetParameters takes 10 names
            answer = call(clients.ssm.get_parameters, f"parameters {', '.join(batch)}", Names=batch)
            found |= {p["Name"]: p for p in (answer or {}).get("Parameters", ())}
        if not found:
            return None
        observed = {}
        for name, parameter in sorted(found.items()):
            tags = call(
                clients.ssm.list_tags_for_resource,
                f"parameter {name}",
                absent=("InvalidResourceId",),
                ResourceType="Parameter",
                ResourceId=name,
            )
            observed[name] = {
                "value": parameter["Value"],
                "type": parameter["Type"],
                "tags": tag_dict((tags or {}).get("TagList")),
            }
        return observed

    def published(self, clients: Clients) -> list[str]:
        """Names of every output parameter tagged as this environment's (wherever its prefix put it)."""
        filters = [
            {"Key": f"tag:{ENVIRONMENT_TAG}", "Values": [self.ctx.env.name]},
            {"Key": f"tag:{EXPORT_NAME_TAG}"},
        ]
        names: list[str] = []
        page: dict[str, Any] = {}
        while True:
            more = {"NextToken": page["NextToken"]} if page.get("NextToken") else {}
            page = call(clients.ssm.describe_parameters, "output parameters", ParameterFilters=filters, **more) or {}
            names += [parameter["Name"] for parameter in page.get("Parameters", ())]
            if not page.get("NextToken"):
                return names

    def apply(self, clients: Clients, change: Change) -> None:
        live, wanted = change.before or {}, self.desired()
        stale = [name for name in change.changed if name not in wanted]
        if stale:
            call(clients.ssm.delete_parameters, f"parameters {', '.join(stale)}", error=ApplyError, Names=stale)
        for name in change.changed:
            if name in wanted:
                self._publish(clients, name, live.get(name), wanted[name])

    def _publish(self, clients: Clients, name: str, current: dict[str, Any] | None, wanted: dict[str, Any]) -> None:
        """One parameter: create it with its tags, or overwrite the value and fix the tags, as needed."""
        resource = f"parameter {name}"
        if current is None:
            # Created without Overwrite, so Tags may go along (AWS rejects Overwrite together with Tags).
            created = call(
                clients.ssm.put_parameter,
                resource,
                absent=("ParameterAlreadyExists",),
                error=ApplyError,
                Name=name,
                Value=wanted["value"],
                Type="String",
                Tags=tag_list(wanted["tags"]),
            )
            if created is not None:
                return
            # Created meanwhile by someone else: unknown, so overwrite the value and set every tag.
            current = {"value": None, "type": None, "tags": {}}
        if (current["value"], current["type"]) != (wanted["value"], wanted["type"]):
            call(
                clients.ssm.put_parameter,
                resource,
                error=ApplyError,
                Name=name,
                Value=wanted["value"],
                Type="String",
                Overwrite=True,
            )
        target = {"ResourceType": "Parameter", "ResourceId": name}
        sync_tags(
            current["tags"],
            wanted["tags"],
            lambda keys: call(
                clients.ssm.remove_tags_from_resource, resource, error=ApplyError, TagKeys=keys, **target
            ),
            lambda tags: call(clients.ssm.add_tags_to_resource, resource, error=ApplyError, Tags=tags, **target),
        )

    def diff(self, observed: dict[str, Any] | None) -> Change:
        """Each existing parameter must be ours; one that is nobody's makes the change foreign (--adopt).
        Ours under a name the manifest no longer declares is removed."""
        wanted = self.desired()
        stale = tuple(sorted(name for name in observed or {} if name not in wanted))
        change = super().diff(observed)
        if stale:
            change = replace(
                change,
                actions=UPDATE,
                after=wanted,
                changed=(*change.changed, *stale),
                reason="differs from the manifest",
            )
        for parameter in (observed or {}).values():
            change = claim(change, parameter["tags"], self.ctx.env, wanted)
        return change

    def destroy(self, observed: dict[str, Any] | None) -> Change:
        ours = {n: p for n, p in (observed or {}).items() if owned_by(p["tags"], self.ctx.env)}
        if not ours:
            return super().destroy(None)
        return Change(self.address, DELETE, ours, None, tuple(sorted(ours)), "removed by destroy")

    def delete(self, clients: Clients, change: Change, progress: Any = None) -> None:
        names = sorted(change.before or {})
        call(clients.ssm.delete_parameters, f"parameters {', '.join(names)}", error=ApplyError, Names=names)


def read_outputs(clients: Clients, env: Any) -> list[dict[str, Any]]:
    """The environment's published outputs, in manifest order; a missing one has value None."""
    names = [output.parameter_name for output in env.outputs]
    answer = call(clients.ssm.get_parameters, f"parameters {', '.join(names)}", Names=names)
    values = {p["Name"]: p["Value"] for p in (answer or {}).get("Parameters", ())}
    return [
        {
            "key": o.key,
            "export_name": o.export_name,
            "parameter": o.parameter_name,
            "value": values.get(o.parameter_name),
        }
        for o in env.outputs
    ]
