"""``python -m hub.simulate`` — the same as ``hub simulate``."""

from hub.simulate.cli import main

raise SystemExit(main())
