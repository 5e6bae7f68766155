"""Exit codes of the ``aiscale`` command: 0 ok, 1 partial load (rows quarantined), 2 usage or input error."""

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
