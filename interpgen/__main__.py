"""``python -m interpgen ...`` (and ``accelerate launch -m interpgen train ...``) run the CLI."""

from interpgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
