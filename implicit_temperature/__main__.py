"""``python -m implicit_temperature``: the same as the ``itemp`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
