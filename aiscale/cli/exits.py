"""Exit codes of the ``aiscale`` command: 0 ok, 1 partial load (rows quarantined), 2 usage or
input error, 3 an alert rule of ``aiscale check`` fired."""

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FIRED = 0, 1, 2, 3
