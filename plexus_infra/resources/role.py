"""The SageMaker execution role: the role itself (trust policy, description, session length, tags), its
inline permissions policy and its managed-policy attachments. Only what the manifest declares is kept:
an inline policy or an attachment added by hand shows as drift and is removed by apply."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, ClassVar

from plexus_infra import environments
from plexus_infra.core.aws import Clients, call
from plexus_infra.core.errors import ObserveError
from plexus_infra.core.tags import split_system_tags, tag_dict, tag_list
from plexus_infra.plan import CREATE, Call, Change, noop
from plexus_infra.policy import canonical_json, policies_equal
from plexus_infra.resources.base import (
    Context,
    Evidence,
    Resource,
    Tagged,
    live_policy,
    owned_by,
    tag_calls,
    within_size,
)
from plexus_infra.resources.bucket import bucket_arn
from plexus_infra.resources.cloudformation import managed_by, stack_holding

ROLE_ABSENT = ("NoSuchEntity",)
INLINE_POLICY_NAME = environments.INLINE_POLICY_NAME
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
    partition: str,
    region: str,
    account: str,
    bucket_arn: str,
    ecr_repositories: tuple[str, ...],
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """What a training job needs and nothing more: the bucket and its three prefixes, SageMaker's log
    groups, SageMaker's metrics namespace, pulling images from ECR and, when the bucket encrypts with a
    customer key, that key through S3: kms:GenerateDataKey to write objects, kms:Decrypt to read them (multipart
    uploads need both; https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html)."""
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
            *(
                [
                    {
                        "Sid": "TrainingBucketKey",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": kms_key_arn,
                        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                    }
                ]
                if kms_key_arn
                else []
            ),
        ],
    }


def policy_maps_equal(live: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Named policies compare by name set, then each document semantically."""
    live = live or {}
    return live.keys() == wanted.keys() and all(policies_equal(live[name], wanted[name]) for name in wanted)


def role_arn(ctx: Context) -> str:
    """The training role's ARN in the account."""
    return environments.role_arn(ctx.identity.partition, ctx.identity.account, ctx.env.role.name)


def iam_call(operation: str, role: str, **params: Any) -> Call:
    """A call on the role `role`: deletes of what is gone succeed; writes retry while a new role propagates."""
    options: dict[str, Any] = {"absent": ROLE_ABSENT} if operation.startswith(("Delete", "Detach", "Remove")) else {}
    if operation.startswith(("Put", "Attach")):
        options["consistent"] = True
    resource = f"role {role} policy {params['PolicyName']}" if "PolicyName" in params else f"role {role}"
    return Call("iam", operation, {"RoleName": role, **params}, resource, **options)


class IamRole(Tagged):
    kind = "iam_role"
    noop_reason = "trust policy, description, session length and tags already as declared"
    equal: ClassVar = {"trust_policy": lambda live, wanted: live is not None and policies_equal(live, wanted)}

    @property
    def name(self) -> str:
        return self.ctx.env.role.name

    def desired(self) -> dict[str, Any]:
        env, identity = self.ctx.env, self.ctx.identity
        return {
            "trust_policy": trust_policy(identity.partition, env.region, identity.account),
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
        tags, system_tags = split_system_tags(tag_dict(role.get("Tags")))
        return {
            "trust_policy": live_policy(role["AssumeRolePolicyDocument"], f"role {self.name}"),
            "description": role.get("Description", ""),
            "max_session_duration": role.get("MaxSessionDuration", 3600),
            "permissions_boundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            "tags": tags,
            "system_tags": system_tags,
            **(managed_by(stack_holding(clients, self.name)) if not owned_by(tags, self.ctx.env) else {}),
        }

    def vouched(self, evidence: Evidence) -> bool:
        return role_arn(self.ctx) in evidence.published

    def calls(self, change: Change) -> Iterable[Call]:
        wanted = self.desired()
        if change.actions == CREATE:
            boundary = {"PermissionsBoundary": wanted["permissions_boundary"]} if wanted["permissions_boundary"] else {}
            yield Call(
                "iam",
                "CreateRole",
                {
                    "RoleName": self.name,
                    "AssumeRolePolicyDocument": canonical_json(wanted["trust_policy"]),
                    "Description": wanted["description"],
                    "MaxSessionDuration": wanted["max_session_duration"],
                    "Tags": tag_list(wanted["tags"]),
                    **boundary,
                },
                f"role {self.name}",
                conflict=("EntityAlreadyExists",),  # made meanwhile (or by an interrupted run): plan again
                wait="role_exists",
            )
            return
        changed = set(change.changed)
        if "trust_policy" in changed:
            yield iam_call("UpdateAssumeRolePolicy", self.name, PolicyDocument=canonical_json(wanted["trust_policy"]))
        if changed & {"description", "max_session_duration"}:
            yield iam_call(
                "UpdateRole",
                self.name,
                Description=wanted["description"],
                MaxSessionDuration=wanted["max_session_duration"],
            )
        if "permissions_boundary" in changed:
            if wanted["permissions_boundary"] is None:
                yield iam_call("DeleteRolePermissionsBoundary", self.name)
            else:
                yield iam_call(
                    "PutRolePermissionsBoundary", self.name, PermissionsBoundary=wanted["permissions_boundary"]
                )
        if "tags" in changed:
            yield from tag_calls(
                (change.before or {}).get("tags") or {},
                wanted["tags"],
                lambda keys: iam_call("UntagRole", self.name, TagKeys=keys),
                lambda tags: iam_call("TagRole", self.name, Tags=tags),
            )

    def removal(self, observed: dict[str, Any]) -> Iterable[Call]:
        """A role with policies or in instance profiles cannot be deleted (DeleteConflict): undo those first,
        whatever is attached when destroy runs."""
        yield replace(iam_call("RemoveRoleFromInstanceProfile", self.name), each="instance profile holding the role")
        yield replace(iam_call("DetachRolePolicy", self.name), each="attached managed policy")
        yield replace(iam_call("DeleteRolePolicy", self.name), each="inline policy")
        yield iam_call("DeleteRole", self.name)

    def expand(self, clients: Clients, planned: Call) -> Iterator[Call]:
        resource = f"role {self.name}"
        if planned.operation == "RemoveRoleFromInstanceProfile":
            answer = call(
                clients.iam.list_instance_profiles_for_role, resource, absent=ROLE_ABSENT, RoleName=self.name
            ) or {"InstanceProfiles": []}
            targets = [{"InstanceProfileName": p["InstanceProfileName"]} for p in answer["InstanceProfiles"]]
        elif planned.operation == "DetachRolePolicy":
            targets = [{"PolicyArn": arn} for arn in IamRolePolicyAttachments(self.ctx).attached(clients) or ()]
        else:
            targets = [{"PolicyName": name} for name in IamRoleInlinePolicies(self.ctx).names(clients) or ()]
        for target in targets:
            yield replace(planned, params={**planned.params, **target}, each=None)


class IamRoleInlinePolicies(Resource):
    kind = "iam_role_inline_policies"
    noop_reason = "inline policy already as declared"
    equal: ClassVar = {"policies": policy_maps_equal}

    @property
    def name(self) -> str:
        return self.ctx.env.role.name

    def desired(self) -> dict[str, Any]:
        env, identity = self.ctx.env, self.ctx.identity
        document = training_access_policy(
            identity.partition,
            env.region,
            identity.account,
            bucket_arn(self.ctx),
            env.role.ecr_repository_arns,
            self.ctx.kms_key_arn,
        )
        declared = {name: {"Version": "2012-10-17", "Statement": list(s)} for name, s in env.role.inline_policies}
        what = f"role {self.name}'s inline polic{'ies together' if declared else 'y'}"
        within_size(document, INLINE_POLICIES_LIMIT, what, *declared.values())
        return {"policies": {INLINE_POLICY_NAME: document, **declared}}

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

    def calls(self, change: Change) -> Iterable[Call]:
        live = (change.before or {}).get("policies") or {}
        for policy, document in self.desired()["policies"].items():
            if policy not in live or not policies_equal(live[policy], document):
                yield iam_call("PutRolePolicy", self.name, PolicyName=policy, PolicyDocument=canonical_json(document))
        for policy in sorted(set(live) - set(self.desired()["policies"])):
            yield iam_call("DeleteRolePolicy", self.name, PolicyName=policy)


class IamRolePolicyAttachments(Resource):
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

    def compare(self, observed: dict[str, Any] | None) -> Change:
        if observed is None and not self.ctx.env.role.managed_policy_arns:
            return noop(self.address, None, "no managed policies declared")
        return super().compare(observed)

    def calls(self, change: Change) -> Iterable[Call]:
        live = set((change.before or {}).get("managed_policy_arns") or ())
        wanted = set(self.desired()["managed_policy_arns"])
        for arn in sorted(wanted - live):
            yield iam_call("AttachRolePolicy", self.name, PolicyArn=arn)
        for arn in sorted(live - wanted):
            yield iam_call("DetachRolePolicy", self.name, PolicyArn=arn)
