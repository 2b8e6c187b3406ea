"""Subcommands of ``live2d``: one module each (``HELP``, ``add_arguments``, ``run``)."""
