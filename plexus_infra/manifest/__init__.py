"""Manifests: load (YAML with line marks) → validate (schema + AWS rules) → model (frozen desired state)."""
