"""`python -m gateway ...`: the same commands as the `gateway` script (gateway/cli.py)."""

from gateway.cli import main

raise SystemExit(main())
