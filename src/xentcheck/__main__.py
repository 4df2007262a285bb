"""``python -m xentcheck``: the ``xentcheck`` command, with the same arguments and exit status."""

from xentcheck.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
