"""Generated: the strata proto namespace."""
