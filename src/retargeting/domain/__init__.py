"""Pure rules: no I/O, no clocks, no randomness that the caller does not pass in."""
