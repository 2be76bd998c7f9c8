"""`livecli login`: Kite's daily login, reduced to one paste.

Kite access tokens die at 06:00 IST every day, so users run this every trading morning. It shows
the login URL (and opens a browser when there is one), accepts the redirect URL or the bare
request_token, and stores the access token where every other command finds it.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from livecli.cli.options import ConfigOption
from livecli.errors import UsageError


def _can_open_browser() -> bool:
    """Only for a person at a graphical terminal: never in CI, over pipes or headless SSH."""
    if os.environ.get("CI") or not sys.stdin.isatty():
        return False
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def login(
    request_token: Annotated[
        str | None,
        typer.Argument(
            metavar="REQUEST_TOKEN_OR_URL",
            help="The URL Kite redirected to after login, or its request_token. Asked for if omitted.",
        ),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the login URL; do not open a browser.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Log in to Kite and store today's access token (valid until 06:00 IST)."""
    from livecli.config import load_settings, mask
    from livecli.kite.auth import describe_instant, login_credentials, login_url
    from livecli.kite.auth import login as do_login

    settings = load_settings(config_path=config)
    login_credentials(settings)  # missing key/secret: say so before sending anyone to a browser
    if request_token is None:
        url = login_url(settings)
        sys.stderr.write(
            f"Log in to Kite at:\n\n  {url}\n\nthen paste the address your browser lands on "
            "(it contains request_token=...).\n"
        )
        if not no_browser and _can_open_browser():
            import webbrowser

            try:
                webbrowser.open(url)
            except Exception:  # a browser that fails to start is no reason to fail the login
                pass
        try:
            request_token = typer.prompt("Redirect URL or request_token", err=True)
        except (typer.Abort, EOFError):
            sys.stderr.write("\n")
            raise UsageError(
                "no request token given: run `livecli login REDIRECT_URL_OR_REQUEST_TOKEN`"
            ) from None
    token = do_login(settings, request_token)
    who = f" as {token.user_id}" if token.user_id else ""
    sys.stdout.write(
        f"Logged in{who}. Access token {mask(token.access_token)} saved to {token.path} "
        f"(valid until {describe_instant(token.expires_at)}).\n"
    )
