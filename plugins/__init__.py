"""Built-in interpgen plugins, each registered through the ``interpgen`` entry-point group."""
