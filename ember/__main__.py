"""``python -m ember`` runs the ``ember`` command."""

from ember.cli import main

__all__: list[str] = []

raise SystemExit(main())
