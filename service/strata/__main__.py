"""`python -m strata` runs the CLI."""

from strata.cli import main

if __name__ == "__main__":  # not when a spawned serving process imports this as its parent's main module
    main()
