"""A proxy in front of the moto server that answers as real AWS does where moto is kinder.

moto accepts what AWS refuses in a few places this tool must get right; each rule below is AWS's documented
behaviour, and the tests that need one say so. The proxy forwards every other request to moto untouched, so the
tool under test talks real HTTP to something that behaves like AWS in these respects, in-process or from a
subprocess (point AWS_ENDPOINT_URL at `endpoint_url`).

Rules:
- S3 system tags. A bucket CloudFormation made carries `aws:cloudformation:stack-name`, `...:stack-id` and
  `...:logical-id`; GetBucketTagging lists them with the user's tags, and a PutBucketTagging whose set drops one
  is refused with `InvalidTag: System Tags cannot be removed by requester`; one that adds or changes an `aws:` tag
  with `InvalidTag: System tags cannot be added/updated by requester` (terraform-provider-aws #7323,
  cloud-custodian #2834/#2861, moto's own aws_verified test of the second message). moto refuses every `aws:` key
  and CloudFormation in moto adds none, so the proxy keeps them and strips them before moto sees a tag set.
- HeadBucket on a bucket another account owns: 403 with no body (botocore reads it as code "403"); any other
  request on it: 403 AccessDenied.
- PutBucketOwnershipControls(BucketOwnerEnforced) on a bucket whose ACL grants anyone but its owner:
  400 InvalidBucketAclWithObjectOwnership (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
  object-ownership-migrating-acls-prerequisites.html); moto accepts it.
- CopyObject of a source over the single-copy limit (5 GB in AWS, lowered by tests so objects stay small):
  400 InvalidRequest "The specified copy source is larger than the maximum allowable size for a copy source";
  UploadPartCopy (multipart copy) is not limited. moto copies anything.
- SageMaker training job names are unique: a second CreateTrainingJob of a name is refused with ResourceInUse
  ("Training job names must be unique within an AWS account and region..."); moto creates it again.
- STS AssumeRole of a role whose trust policy does not admit the caller: 403 AccessDenied ("... is not authorized to
  perform: sts:AssumeRole on resource: ..."); moto lets anyone assume any role.
- CloudFormation DescribeStackResources by PhysicalResourceId: the stack that manages the resource, as AWS
  answers; moto fails it even for resources it manages ("Stack with id None does not exist").
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
AWS_COPY_LIMIT = 5 * 1024**3


@dataclass
class Rules:
    """What the proxy knows that moto does not: AWS's own tags, other accounts' buckets, the copy limit."""

    system_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    other_accounts_buckets: set[str] = field(default_factory=set)
    copy_limit: int = AWS_COPY_LIMIT
    unassumable_roles: set[str] = field(default_factory=set)  # their trust policy does not let the caller in
    refused: list[str] = field(default_factory=list)  # "code: message" of every refusal, for assertions


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def s3_error(status: int, code: str, message: str) -> Answer:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Answer(status, body.encode(), {"Content-Type": "application/xml"})


def query_error(
    code: str, message: str, namespace: str = "http://cloudformation.amazonaws.com/doc/2010-05-15/", status: int = 400
) -> Answer:
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
    )
    return Answer(status, body.encode(), {"Content-Type": "text/xml"})


def tag_set_xml(tags: dict[str, str]) -> bytes:
    items = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in sorted(tags.items()))
    return f'<?xml version="1.0" encoding="UTF-8"?><Tagging xmlns="{S3_NS}"><TagSet>{items}</TagSet></Tagging>'.encode()


def parse_tag_set(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    tags = {}
    for tag in root.iter():
        if tag.tag.endswith("Tag") and not tag.tag.endswith("TagSet"):
            key = next(c.text for c in tag if c.tag.endswith("Key"))
            value = next((c.text or "" for c in tag if c.tag.endswith("Value")), "")
            tags[key or ""] = value
    return tags


def _describes_the_body(header: str) -> bool:
    """Headers that checksum or hash the body: dropped when the proxy sends moto a body of its own."""
    name = header.lower()
    return name in ("content-md5", "x-amz-content-sha256", "x-amz-sdk-checksum-algorithm") or name.startswith(
        "x-amz-checksum-"
    )


class RealAwsProxy:
    """The proxy server; `rules` may be changed while it runs."""

    def __init__(self, upstream: str, host: str = "127.0.0.1"):
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.rules = Rules()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return None

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy.answer(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                length = answer.headers.get("Content-Length") or answer.headers.get("content-length")
                self.send_header(
                    "Content-Length", length if self.command == "HEAD" and length else str(len(answer.body))
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="real-aws proxy", daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        self.rules = Rules()

    # --- forwarding ----------------------------------------------------------------------------------------

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "expect")}
            sent["Content-Length"] = str(len(body))
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, response.read(), dict(response.getheaders()))
        finally:
            connection.close()

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        scope = CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
        service = scope.group(1) if scope else ""
        if service == "s3":
            return self.s3(method, path, headers, body)
        if service == "cloudformation" and b"Action=DescribeStackResources" in body and b"PhysicalResourceId" in body:
            return self.stack_of(urllib.parse.parse_qs(body.decode())["PhysicalResourceId"][0], headers)
        if service == "sts" and b"Action=AssumeRole" in body:
            role = urllib.parse.parse_qs(body.decode()).get("RoleArn", [""])[0]
            if role in self.rules.unassumable_roles:
                caller = "arn:aws:iam::123456789012:user/ci"
                message = f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}"
                self.rules.refused.append(f"AccessDenied: {message}")
                return query_error("AccessDenied", message, "https://sts.amazonaws.com/doc/2011-06-15/", 403)
        if service == "sagemaker" and headers.get("X-Amz-Target", "").endswith(".CreateTrainingJob"):
            refusal = self.duplicate_job(body)
            if refusal:
                return refusal
        return self.forward(method, path, headers, body)

    # --- S3 ------------------------------------------------------------------------------------------------

    def s3(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        url = urllib.parse.urlsplit(path)
        bucket = urllib.parse.unquote(url.path.lstrip("/").split("/", 1)[0])
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        rules = self.rules
        if bucket in rules.other_accounts_buckets:
            return Answer(403) if method == "HEAD" else s3_error(403, "AccessDenied", "Access Denied")
        if "tagging" in query and "/" not in url.path.lstrip("/"):
            return self.bucket_tagging(method, path, headers, body, bucket)
        if method == "PUT" and "ownershipControls" in query and b"BucketOwnerEnforced" in body:
            refusal = self.acl_refusal(path, headers, bucket)
            if refusal:
                return refusal
        if method == "PUT" and "x-amz-copy-source" in {k.lower() for k in headers} and "partNumber" not in query:
            refusal = self.copy_refusal(headers)
            if refusal:
                return refusal
        return self.forward(method, path, headers, body)

    def bucket_tagging(self, method: str, path: str, headers: dict[str, str], body: bytes, bucket: str) -> Answer:
        system = self.rules.system_tags.get(bucket, {})
        if method == "GET":
            answer = self.forward(method, path, headers, body)
            if not system:
                return answer
            user = parse_tag_set(answer.body) if answer.status == 200 else {}
            return Answer(200, tag_set_xml({**user, **system}), {"Content-Type": "application/xml"})
        if method == "PUT":
            wanted = parse_tag_set(body)
            sent_system = {k: v for k, v in wanted.items() if k.startswith("aws:")}
            if any(sent_system.get(k) != v for k, v in system.items()):
                return self.refuse(s3_error(400, "InvalidTag", "System Tags cannot be removed by requester"))
            if any(system.get(k) != v for k, v in sent_system.items()):
                return self.refuse(s3_error(400, "InvalidTag", "System tags cannot be added/updated by requester"))
            user = {k: v for k, v in wanted.items() if not k.startswith("aws:")}
            if not user:  # only AWS's tags were sent: the user's set is now empty
                return self._empty_user_tags(path, headers)
            stripped = tag_set_xml(user)
            forwarded = {k: v for k, v in headers.items() if not _describes_the_body(k)}
            forwarded["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
            return self.forward(method, path, forwarded, stripped)
        return self.forward(method, path, headers, body)

    def _empty_user_tags(self, path: str, headers: dict[str, str]) -> Answer:
        answer = self.forward("DELETE", path, headers, b"")
        return Answer(200) if answer.status in (200, 204) else answer

    def refuse(self, answer: Answer) -> Answer:
        root = ET.fromstring(answer.body)
        self.rules.refused.append(f"{root.findtext('Code')}: {root.findtext('Message')}")
        return answer

    def acl_refusal(self, path: str, headers: dict[str, str], bucket: str) -> Answer | None:
        acl = self.forward("GET", f"/{urllib.parse.quote(bucket)}?acl", headers, b"")
        if acl.status != 200:
            return None
        root = ET.fromstring(acl.body)
        owner = next((e.text for e in root.iter() if e.tag.endswith("ID") and e.text), None)
        grantees = [g for g in root.iter() if g.tag.endswith("Grantee")]
        others = [g for g in grantees if next((e.text for e in g if e.tag.endswith("ID")), None) != owner]
        if not others:
            return None
        message = "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        return self.refuse(s3_error(400, "InvalidBucketAclWithObjectOwnership", message))

    def copy_refusal(self, headers: dict[str, str]) -> Answer | None:
        source = next(v for k, v in headers.items() if k.lower() == "x-amz-copy-source")
        source_path = "/" + urllib.parse.quote(urllib.parse.unquote(source).lstrip("/").split("?", 1)[0])
        head = self.forward("HEAD", source_path, headers, b"")
        size = int(head.headers.get("Content-Length") or head.headers.get("content-length") or 0)
        if head.status != 200 or size <= self.rules.copy_limit:
            return None
        message = (
            "The specified copy source is larger than the maximum allowable size for a copy source: "
            f"{self.rules.copy_limit}"
        )
        return self.refuse(s3_error(400, "InvalidRequest", message))

    # --- SageMaker ------------------------------------------------------------------------------------------

    def duplicate_job(self, body: bytes) -> Answer | None:
        """Training job names are unique in an account and region; SageMaker refuses a second CreateTrainingJob of
        a name with ResourceInUse (moto creates it again)."""
        import json

        import boto3

        name = json.loads(body)["TrainingJobName"]
        sagemaker = boto3.client("sagemaker", endpoint_url=f"http://{self.upstream[0]}:{self.upstream[1]}")
        try:
            job = sagemaker.describe_training_job(TrainingJobName=name)
        except sagemaker.exceptions.ClientError:
            return None
        message = (
            "Training job names must be unique within an AWS account and region, and a training job with this name "
            f"already exists ({job['TrainingJobArn']})"
        )
        self.rules.refused.append(f"ResourceInUse: {message}")
        document = json.dumps({"__type": "ResourceInUse", "message": message}).encode()
        return Answer(400, document, {"Content-Type": "application/x-amz-json-1.1"})

    # --- CloudFormation ------------------------------------------------------------------------------------

    def stack_of(self, physical_id: str, headers: dict[str, str]) -> Answer:
        """DescribeStackResources(PhysicalResourceId=...): AWS finds the stack that manages it."""
        import boto3

        cloudformation = boto3.client("cloudformation", endpoint_url=f"http://{self.upstream[0]}:{self.upstream[1]}")
        for summary in cloudformation.list_stacks()["StackSummaries"]:
            if summary["StackStatus"] == "DELETE_COMPLETE":
                continue
            resources = cloudformation.describe_stack_resources(StackName=summary["StackId"])["StackResources"]
            if any(r.get("PhysicalResourceId") == physical_id for r in resources):
                members = "".join(
                    f"<member><StackName>{r['StackName']}</StackName><StackId>{r['StackId']}</StackId>"
                    f"<LogicalResourceId>{r['LogicalResourceId']}</LogicalResourceId>"
                    f"<PhysicalResourceId>{r.get('PhysicalResourceId', '')}</PhysicalResourceId>"
                    f"<ResourceType>{r['ResourceType']}</ResourceType>"
                    f"<Timestamp>2026-01-01T00:00:00Z</Timestamp>"
                    f"<ResourceStatus>{r['ResourceStatus']}</ResourceStatus></member>"
                    for r in resources
                    if r.get("PhysicalResourceId") == physical_id
                )
                body = (
                    '<DescribeStackResourcesResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
                    f"<DescribeStackResourcesResult><StackResources>{members}</StackResources>"
                    "</DescribeStackResourcesResult></DescribeStackResourcesResponse>"
                )
                return Answer(200, body.encode(), {"Content-Type": "text/xml"})
        return query_error("ValidationError", f"Stack for {physical_id} does not exist")

    def tag_like_cloudformation(self, stack_name: str) -> dict[str, dict[str, str]]:
        """Give each bucket of `stack_name` the system tags CloudFormation puts on what it creates; returns them."""
        import boto3

        cloudformation = boto3.client("cloudformation", endpoint_url=f"http://{self.upstream[0]}:{self.upstream[1]}")
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        tagged = {}
        for resource in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]:
            if resource["ResourceType"] == "AWS::S3::Bucket":
                tags = {
                    "aws:cloudformation:stack-name": stack["StackName"],
                    "aws:cloudformation:stack-id": stack["StackId"],
                    "aws:cloudformation:logical-id": resource["LogicalResourceId"],
                }
                self.rules.system_tags[resource["PhysicalResourceId"]] = tags
                tagged[resource["PhysicalResourceId"]] = tags
        return tagged


@contextmanager
def running_proxy(upstream: str) -> Iterator[RealAwsProxy]:
    proxy = RealAwsProxy(upstream)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
