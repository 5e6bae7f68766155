"""The ``aiscale`` command line (entry point in :mod:`aiscale.cli.main`)."""
