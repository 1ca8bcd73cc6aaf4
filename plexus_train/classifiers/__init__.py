"""Classifiers. This package runs inside SageMaker containers too: it imports only torch, transformers,
numpy and `plexus_infra.errors`, never YAML, boto3 or rich."""
