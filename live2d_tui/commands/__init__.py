"""Subcommands of ``live2d``: one module each (``add_arguments``, ``run``; the one-line help is
``cli.COMMANDS``)."""
