"""Container image URIs: the score's own, else the SageMaker SDK's lookup (an optional, slow-to-import extra)."""

from __future__ import annotations

from collections.abc import Callable

from plexus_infra.core.errors import PlexusError


def python_version(framework_version: str) -> str:
    """The py_version AWS publishes PyTorch images for: 2.3–2.5 → py311, 2.6+ → py312, older → py310."""
    major, minor = (int(part) for part in framework_version.split(".")[:2])
    if (major, minor) >= (2, 6):
        return "py312"
    return "py311" if (major, minor) >= (2, 3) else "py310"


def image_uri(explicit: str | None, scope: str, framework_version: str, region: str, instance_type: str) -> str:
    """`explicit` if given, else the PyTorch `scope` ("training" or "inference") image from the SDK."""
    if explicit:
        return explicit
    retrieve = _sdk_retrieve()
    field = "image_uri" if scope == "training" else "inference_image_uri"
    if retrieve is None:
        raise PlexusError(
            f"no {scope} image: set training.{field} in the score YAML "
            "(or install the sagemaker extra: pip install 'plexus-infra[sagemaker]')"
        )
    try:
        return retrieve(
            "pytorch",
            region,
            version=framework_version,
            py_version=python_version(framework_version),
            instance_type=instance_type,
            image_scope=scope,
        )
    except ValueError as unknown:  # the SDK's data has no such version, region or instance type
        raise PlexusError(
            f"no PyTorch {framework_version} {scope} image for {instance_type} in {region}: "
            f"{str(unknown).split('. ')[0]}; set training.{field} or training.framework_version"
        ) from None


def _sdk_retrieve() -> Callable[..., str] | None:
    try:
        from sagemaker.core import image_uris
    except ImportError:
        try:
            from sagemaker import image_uris
        except ImportError:
            return None
    return image_uris.retrieve
