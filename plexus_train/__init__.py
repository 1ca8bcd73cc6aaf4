"""plexus_train: train, deploy and query Plexus score classifiers on the infrastructure plexus-infra provisions."""

__version__ = "0.1.0"
