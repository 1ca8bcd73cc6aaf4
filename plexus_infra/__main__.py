"""`python -m plexus_infra` is `plexus-infra`."""

from plexus_infra.cli import main

raise SystemExit(main())
