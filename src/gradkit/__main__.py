"""``python -m gradkit``: the same command line as the ``gradkit`` script."""
from gradkit.cli import main

raise SystemExit(main())
