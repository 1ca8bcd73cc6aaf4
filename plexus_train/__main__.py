"""`python -m plexus_train` is `plexus`."""

from plexus_train.cli import main

raise SystemExit(main())
