"""`python -m monitor.cli`: the same as the `ctmonitor` console script."""

from monitor.cli import main

raise SystemExit(main())
