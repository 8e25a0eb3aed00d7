"""``python -m interpgen.cli ...``: the same as ``interpgen ...``."""

from interpgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
