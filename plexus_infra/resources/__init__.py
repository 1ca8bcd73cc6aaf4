"""One module per resource kind, each behind the small interface in `base.Resource`."""
