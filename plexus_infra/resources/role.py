"""The SageMaker execution role: the role itself (trust policy, description, session length, tags), its
inline permissions policy and its managed-policy attachments. Only what the manifest declares is kept:
an inline policy or an attachment added by hand shows as drift and is removed by apply."""

from __future__ import annotations

from typing import Any, ClassVar

from plexus_infra.aws import Clients, call, until_consistent, wait_for
from plexus_infra.errors import ApplyError, ObserveError
from plexus_infra.plan import CREATE, Change, noop
from plexus_infra.policy import canonical_json, policies_equal
from plexus_infra.resources.base import (
    Removable,
    Resource,
    claim,
    left_alone,
    live_policy,
    owned_by,
    sync_tags,
    tag_dict,
    tag_list,
    within_size,
)

ROLE_ABSENT = ("NoSuchEntity",)
INLINE_POLICY_NAME = "plexus-training-access"
INLINE_POLICIES_LIMIT = 10_240  # IAM: all of a role's inline policies together
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


def trust_policy(partition: str, region: str, account: str) -> dict[str, Any]:
    """SageMaker may assume the role, only on behalf of this account (confused-deputy protection)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SageMakerAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": SAGEMAKER_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:sagemaker:{region}:{account}:*"},
                },
            }
        ],
    }


def training_access_policy(
    partition: str, region: str, account: str, bucket_arn: str, ecr_repositories: tuple[str, ...]
) -> dict[str, Any]:
    """What a training job needs and nothing more: the bucket and its three prefixes, SageMaker's log
    groups, SageMaker's metrics namespace, and pulling images from ECR."""
    prefixes = ("training-data", "models", "training-code")
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListTrainingBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "ReadWriteTrainingObjects",
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                "Resource": [f"{bucket_arn}/{prefix}/*" for prefix in prefixes],
            },
            {
                "Sid": "SageMakerLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                "Resource": [log_group, f"{log_group}:log-stream:*"],
            },
            {
                "Sid": "SageMakerMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            },
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "EcrPull",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": list(ecr_repositories) or f"arn:{partition}:ecr:{region}:*:repository/*",
            },
        ],
    }


def policy_maps_equal(live: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Named policies compare by name set, then each document semantically."""
    live = live or {}
    return live.keys() == wanted.keys() and all(policies_equal(live[name], wanted[name]) for name in wanted)


class Role(Removable):
    kind = "iam_role"
    noop_reason = "trust policy, description, session length and tags already as declared"
    equal: ClassVar = {"trust_policy": lambda live, wanted: live is not None and policies_equal(live, wanted)}

    @property
    def name(self) -> str:
        return self.ctx.env.role.name

    def desired(self) -> dict[str, Any]:
        env, ctx = self.ctx.env, self.ctx
        return {
            "trust_policy": trust_policy(ctx.partition, env.region, ctx.account),
            "description": env.role.description,
            "max_session_duration": env.role.max_session_duration,
            "permissions_boundary": env.role.permissions_boundary,
            "tags": env.resource_tags,
        }

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        answer = call(clients.iam.get_role, f"role {self.name}", absent=ROLE_ABSENT, RoleName=self.name)
        if answer is None:
            return None
        role = answer["Role"]
        return {
            "trust_policy": live_policy(role["AssumeRolePolicyDocument"], f"role {self.name}"),
            "description": role.get("Description", ""),
            "max_session_duration": role.get("MaxSessionDuration", 3600),
            "permissions_boundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            "tags": tag_dict(role.get("Tags")),
        }

    def diff(self, observed: dict[str, Any] | None) -> Change:
        return claim(super().diff(observed), observed and observed["tags"], self.ctx.env, self.desired())

    def apply(self, clients: Clients, change: Change) -> None:
        wanted = self.desired()
        resource = f"role {self.name}"
        if change.actions == CREATE:
            created = call(
                clients.iam.create_role,
                resource,
                absent=("EntityAlreadyExists",),
                error=ApplyError,
                RoleName=self.name,
                AssumeRolePolicyDocument=canonical_json(wanted["trust_policy"]),
                Description=wanted["description"],
                MaxSessionDuration=wanted["max_session_duration"],
                Tags=tag_list(wanted["tags"]),
                **({"PermissionsBoundary": wanted["permissions_boundary"]} if wanted["permissions_boundary"] else {}),
            )
            wait_for(clients.iam, "role_exists", resource, RoleName=self.name)
            if created is not None:
                return
            # An interrupted apply created it already: bring every attribute in line instead.
        changed = set(change.changed)
        if "trust_policy" in changed:
            call(
                clients.iam.update_assume_role_policy,
                resource,
                error=ApplyError,
                RoleName=self.name,
                PolicyDocument=canonical_json(wanted["trust_policy"]),
            )
        if changed & {"description", "max_session_duration"}:
            call(
                clients.iam.update_role,
                resource,
                error=ApplyError,
                RoleName=self.name,
                Description=wanted["description"],
                MaxSessionDuration=wanted["max_session_duration"],
            )
        if "permissions_boundary" in changed:
            self._set_boundary(clients, wanted["permissions_boundary"])
        if "tags" in changed:
            sync_tags(
                (change.before or {}).get("tags") or {},
                wanted["tags"],
                lambda keys: call(clients.iam.untag_role, resource, error=ApplyError, RoleName=self.name, TagKeys=keys),
                lambda tags: call(clients.iam.tag_role, resource, error=ApplyError, RoleName=self.name, Tags=tags),
            )

    def _set_boundary(self, clients: Clients, boundary: str | None) -> None:
        resource = f"role {self.name}"
        if boundary is None:
            call(
                clients.iam.delete_role_permissions_boundary,
                resource,
                absent=("NoSuchEntity",),  # none set: nothing to remove
                error=ApplyError,
                RoleName=self.name,
            )
        else:
            call(
                clients.iam.put_role_permissions_boundary,
                resource,
                error=ApplyError,
                RoleName=self.name,
                PermissionsBoundary=boundary,
            )

    def destroy(self, observed: dict[str, Any] | None) -> Change:
        if observed is not None and not owned_by(observed["tags"], self.ctx.env):
            return left_alone(self.address, observed)
        return super().destroy(observed)

    def delete(self, clients: Clients, change: Change, progress: Any = None) -> None:
        """A role with policies or in instance profiles cannot be deleted (DeleteConflict): undo those first."""
        resource = f"role {self.name}"
        profiles = call(
            clients.iam.list_instance_profiles_for_role, resource, absent=ROLE_ABSENT, RoleName=self.name
        ) or {"InstanceProfiles": []}
        dependents = [
            *(
                (clients.iam.remove_role_from_instance_profile, {"InstanceProfileName": p["InstanceProfileName"]})
                for p in profiles["InstanceProfiles"]
            ),
            *(
                (clients.iam.detach_role_policy, {"PolicyArn": arn})
                for arn in RoleAttachments(self.ctx).attached(clients) or ()
            ),
            *(
                (clients.iam.delete_role_policy, {"PolicyName": name})
                for name in InlinePolicies(self.ctx).names(clients) or ()
            ),
        ]
        for method, target in dependents:
            call(method, resource, absent=ROLE_ABSENT, error=ApplyError, RoleName=self.name, **target)
        call(clients.iam.delete_role, resource, absent=ROLE_ABSENT, error=ApplyError, RoleName=self.name)


class InlinePolicies(Resource):
    kind = "iam_role_inline_policies"
    noop_reason = "inline policy already as declared"
    equal: ClassVar = {"policies": policy_maps_equal}

    @property
    def name(self) -> str:
        return self.ctx.env.role.name

    def desired(self) -> dict[str, Any]:
        env, ctx = self.ctx.env, self.ctx
        document = training_access_policy(
            ctx.partition, env.region, ctx.account, ctx.bucket_arn, env.role.ecr_repository_arns
        )
        within_size(document, INLINE_POLICIES_LIMIT, f"role {self.name}'s inline policy")
        return {"policies": {INLINE_POLICY_NAME: document}}

    def names(self, clients: Clients) -> list[str] | None:
        pages = call(clients.iam.list_role_policies, f"role {self.name}", absent=ROLE_ABSENT, RoleName=self.name)
        return None if pages is None else pages["PolicyNames"]

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        names = self.names(clients)
        if names is None:
            return None
        policies = {}
        for policy in names:
            answer = call(
                clients.iam.get_role_policy,
                f"role {self.name} policy {policy}",
                absent=ROLE_ABSENT,
                RoleName=self.name,
                PolicyName=policy,
            )
            if answer is not None:
                policies[policy] = live_policy(answer["PolicyDocument"], f"role {self.name} policy {policy}")
        return {"policies": policies}

    def apply(self, clients: Clients, change: Change) -> None:
        live = (change.before or {}).get("policies") or {}
        wanted = self.desired()["policies"]
        for policy, document in wanted.items():
            if policy not in live or not policies_equal(live[policy], document):
                until_consistent(
                    lambda p=policy, d=document: call(
                        clients.iam.put_role_policy,
                        f"role {self.name} policy {p}",
                        error=ApplyError,
                        RoleName=self.name,
                        PolicyName=p,
                        PolicyDocument=canonical_json(d),
                    )
                )
        for policy in sorted(set(live) - set(wanted)):
            call(
                clients.iam.delete_role_policy,
                f"role {self.name} policy {policy}",
                absent=ROLE_ABSENT,
                error=ApplyError,
                RoleName=self.name,
                PolicyName=policy,
            )


class RoleAttachments(Resource):
    kind = "iam_role_policy_attachments"
    noop_reason = "managed policy attachments already as declared"

    @property
    def name(self) -> str:
        return self.ctx.env.role.name

    def desired(self) -> dict[str, Any]:
        return {"managed_policy_arns": sorted(self.ctx.env.role.managed_policy_arns)}

    def attached(self, clients: Clients) -> list[str] | None:
        answer = call(
            clients.iam.list_attached_role_policies, f"role {self.name}", absent=ROLE_ABSENT, RoleName=self.name
        )
        return None if answer is None else sorted(p["PolicyArn"] for p in answer["AttachedPolicies"])

    def observe(self, clients: Clients) -> dict[str, Any] | None:
        self.check_declared_policies_exist(clients)
        attached = self.attached(clients)
        return None if attached is None else {"managed_policy_arns": attached}

    def check_declared_policies_exist(self, clients: Clients) -> None:
        """A mistyped ARN fails the plan with its name, instead of an attach retried until it times out."""
        for arn in self.ctx.env.role.managed_policy_arns:
            if call(clients.iam.get_policy, f"managed policy {arn}", absent=ROLE_ABSENT, PolicyArn=arn) is None:
                raise ObserveError(
                    f"iam:GetPolicy managed policy {arn}: NoSuchEntity "
                    f"(role.managed_policy_arns in {self.ctx.env.source} names a policy that does not exist)"
                )

    def diff(self, observed: dict[str, Any] | None) -> Change:
        if observed is None and not self.ctx.env.role.managed_policy_arns:
            return noop(self.address, None, "no managed policies declared")
        return super().diff(observed)

    def apply(self, clients: Clients, change: Change) -> None:
        live = set((change.before or {}).get("managed_policy_arns") or ())
        wanted = set(self.desired()["managed_policy_arns"])
        for arn in sorted(wanted - live):
            until_consistent(
                lambda a=arn: call(
                    clients.iam.attach_role_policy,
                    f"role {self.name}",
                    error=ApplyError,
                    RoleName=self.name,
                    PolicyArn=a,
                )
            )
        for arn in sorted(live - wanted):
            call(
                clients.iam.detach_role_policy,
                f"role {self.name}",
                absent=ROLE_ABSENT,
                error=ApplyError,
                RoleName=self.name,
                PolicyArn=arn,
            )
