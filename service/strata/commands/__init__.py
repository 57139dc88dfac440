"""Subcommands of `strata`, one module each, registered in `strata.cli`."""
