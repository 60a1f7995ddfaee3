"""``python -m slmkit`` runs the CLI."""

from .cli import main

main()
