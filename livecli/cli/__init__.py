"""The thin Typer CLI: parses arguments, calls the library, turns errors into exit codes."""
