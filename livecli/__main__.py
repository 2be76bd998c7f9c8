"""`python -m livecli` runs the CLI."""

from livecli.cli.app import main

main()
