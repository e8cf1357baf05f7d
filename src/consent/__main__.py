"""``python -m consent``: the same as the ``consent`` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="consent")
