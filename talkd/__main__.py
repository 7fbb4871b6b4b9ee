"""`python -m talkd` runs the command line."""

from talkd.cli import main

raise SystemExit(main())
