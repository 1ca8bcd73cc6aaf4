"""plexus-infra: a boto3-only declarative provisioner for Plexus's ML training infrastructure."""

__version__ = "0.1.0"
