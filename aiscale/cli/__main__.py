"""``python -m aiscale.cli``: the ``aiscale`` command."""

from aiscale.cli.main import main

raise SystemExit(main())
