"""Where the money goes: the source's reported cost against aiscale's own."""
