import boto3

from plexus_infra.sandbox import Sandbox


def test_sandbox_serves_real_http_through_aws_endpoint_url(sandbox: Sandbox) -> None:
    s3 = boto3.client("s3")
    assert s3.meta.endpoint_url == sandbox.endpoint_url
    s3.create_bucket(Bucket="probe")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]


def test_sandbox_reset_forgets_everything(sandbox: Sandbox) -> None:
    boto3.client("s3").create_bucket(Bucket="probe")
    sandbox.reset()
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_caller_identity_is_the_sandbox_account(sandbox: Sandbox) -> None:
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_sandbox_without_moto_says_what_to_install(monkeypatch) -> None:
    import sys

    import pytest

    from plexus_infra.core.errors import PlexusError
    from plexus_infra.sandbox import running_sandbox

    monkeypatch.setitem(sys.modules, "moto.server", None)  # as if moto[server] were not installed
    with pytest.raises(PlexusError, match=r"pip install 'plexus-infra\[sandbox\]'"), running_sandbox():
        pass


def test_sandbox_refuses_a_port_in_use(sandbox: Sandbox) -> None:
    import pytest

    from plexus_infra.core.errors import PlexusError
    from plexus_infra.sandbox import running_sandbox

    with pytest.raises(PlexusError, match="already in use"), running_sandbox(port=sandbox.port):
        pass
