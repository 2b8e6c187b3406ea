"""``python -m live2d_tui`` runs the ``live2d`` command."""

from live2d_tui.cli import main

raise SystemExit(main())
