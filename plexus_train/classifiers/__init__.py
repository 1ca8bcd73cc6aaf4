"""Classifiers. This package runs inside SageMaker containers too: it imports only torch, transformers,
numpy and `plexus_infra.core.errors`, never YAML, boto3 or rich."""
