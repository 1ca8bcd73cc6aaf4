"""Whether a CloudFormation stack still manages a live resource: two tools writing one bucket fight forever, so
plexus-infra takes over nothing a living stack still holds (engine.check_adoption refuses it, even with --adopt).

CloudFormation tags the buckets (and parameters) it creates with `aws:cloudformation:stack-id` and `logical-id`;
it tags no IAM role (cloudformation-coverage-roadmap #1966), so a role is looked up by its name with
DescribeStackResources(PhysicalResourceId=...). A stack counts only while it exists and still has the resource
in its template: a resource retained (DeletionPolicy: Retain) and then removed from the stack, or whose stack
was deleted, is free to adopt. Reads only, and only for resources that are not this tool's already.
"""

from __future__ import annotations

from typing import Any

from plexus_infra.core.aws import Clients, call

STACK_ID_TAG = "aws:cloudformation:stack-id"
STACK_NAME_TAG = "aws:cloudformation:stack-name"
LOGICAL_ID_TAG = "aws:cloudformation:logical-id"
GONE = ("ValidationError",)  # DescribeStacks / DescribeStackResource(s): no such stack, or not in it
FINISHED = ("DELETE_COMPLETE", "DELETE_SKIPPED")


def stack_managing(clients: Clients, system_tags: dict[str, str]) -> str | None:
    """The name of the living stack that still manages a resource CloudFormation made (by its `aws:` tags)."""
    stack = system_tags.get(STACK_ID_TAG) or system_tags.get(STACK_NAME_TAG)
    if not stack:
        return None
    name = system_tags.get(STACK_NAME_TAG, stack)
    found = call(clients.cloudformation.describe_stacks, f"stack {name}", absent=GONE, StackName=stack)
    stacks = (found or {}).get("Stacks") or []
    if not stacks or stacks[0].get("StackStatus") in FINISHED:
        return None
    logical = system_tags.get(LOGICAL_ID_TAG)
    if logical is None:
        return stacks[0]["StackName"]
    detail = call(
        clients.cloudformation.describe_stack_resource,
        f"stack {name} resource {logical}",
        absent=GONE,
        StackName=stack,
        LogicalResourceId=logical,
    )
    status = ((detail or {}).get("StackResourceDetail") or {}).get("ResourceStatus")
    return stacks[0]["StackName"] if status is not None and status not in FINISHED else None


def stack_holding(clients: Clients, physical_id: str) -> str | None:
    """The name of the living stack whose template holds the resource `physical_id` (for untagged kinds: roles)."""
    found = call(
        clients.cloudformation.describe_stack_resources,
        f"stack of {physical_id}",
        absent=GONE,
        PhysicalResourceId=physical_id,
    )
    for resource in (found or {}).get("StackResources") or []:
        if resource.get("ResourceStatus") in FINISHED:
            continue
        stacks = call(
            clients.cloudformation.describe_stacks,
            f"stack {resource['StackName']}",
            absent=GONE,
            StackName=resource["StackId"],
        )
        for stack in (stacks or {}).get("Stacks") or []:
            if stack.get("StackStatus") not in FINISHED:
                return str(stack["StackName"])
    return None


def hand_over(address: str, stack: str) -> str:
    """What to do, in one line, when a living stack still manages what a manifest declares."""
    return (
        f"{address} is still managed by CloudFormation stack {stack}; two tools writing it would undo each other. "
        f"Set its DeletionPolicy to Retain (CDK: RemovalPolicy.RETAIN) and deploy, then delete the stack or remove "
        f"the resource from it; then run apply --adopt"
    )


def managed_by(stack: str | None) -> dict[str, Any]:
    """The observed-state entry that records it (absent when no stack holds the resource)."""
    return {"managed_by": f"CloudFormation stack {stack}"} if stack else {}
