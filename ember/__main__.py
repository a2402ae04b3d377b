"""``python -m ember`` runs the ``ember`` command."""

from ember.cli import main

main()
