"""``rempart serve`` and ``rempart token create|list|revoke``."""

from __future__ import annotations

from pathlib import Path

import typer

from rempart.cli._common import CONFIG_OPTION, console, get_config, print_json

token_app = typer.Typer(
    help="API tokens of the server (ingest, enforce, admin).", no_args_is_help=True
)


def serve(
    config: Path | None = CONFIG_OPTION,
    host: str | None = typer.Option(None, help="Listen address (default from config: 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Listen port (default from config: 8000)."),
    fd: int | None = typer.Option(
        None,
        help="Serve on this inherited listening socket (a file descriptor) instead of binding "
        "--host and --port: systemd socket activation, or a supervisor holding a privileged port.",
    ),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    follow_from: str = typer.Option(
        "end",
        help="Without a checkpoint, read followed files from the 'end' (live traffic only, the "
        "default: history is for 'rempart ingest') or from the 'start'.",
    ),
) -> None:
    """Run the Rempart server: streaming detection, decisions, enforcement API."""
    import uvicorn

    from rempart.errors import InputError
    from rempart.respond.server import create_app
    from rempart.respond.service import ResponseService

    if follow_from not in ("start", "end"):
        raise InputError(f"--follow-from must be 'start' or 'end', not {follow_from!r}")
    import logging

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise InputError(f"unknown log level {log_level!r}")
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("rempart").setLevel(level)
    cfg = get_config(config)
    server = cfg.response.server
    service = ResponseService(cfg, follow_from=follow_from)
    app = create_app(service)
    bind_host, bind_port = host or server.host, port or server.port
    if fd is not None:
        bind_host, bind_port = _inherited_address(fd)
    console.print(
        f"[bold]rempart[/bold] serving on http://{bind_host}:{bind_port} "
        f"{f'(inherited socket {fd}) ' if fd is not None else ''}"
        f"(policy {cfg.response.policy}"
        f"{', SIMULATION' if service.policy.simulation else ''}; "
        f"{len(cfg.sources)} source(s); API docs at /docs)"
    )
    if fd is not None:
        uvicorn.run(app, fd=fd, log_level="warning", access_log=False)
    else:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False)


def _inherited_address(fd: int) -> tuple[str, int]:
    """The address of the listening TCP socket ``fd``, or an InputError."""
    import os
    import socket

    from rempart.errors import InputError

    try:
        sock = socket.socket(fileno=os.dup(fd))  # a copy: closing it leaves ``fd`` open
    except OSError as exc:
        raise InputError(f"--fd {fd}: not an open socket ({exc.strerror})") from None
    with sock:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        address = sock.getsockname()
    if sock.type != socket.SOCK_STREAM or not listening or not isinstance(address, tuple):
        raise InputError(f"--fd {fd}: not a listening TCP socket")
    return str(address[0]), int(address[1])


@token_app.command("create")
def token_create(
    scope: list[str] = typer.Option(
        ..., "--scope", "-s", help="ingest, enforce or admin (repeat or comma-separate)."
    ),
    name: str = typer.Option(..., "--name", "-n", help="Who or what uses it (shown in audits)."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create a token; it is printed once and only its SHA-256 is stored."""
    from rempart.db import open_database
    from rempart.respond.apitokens import ApiTokens, parse_scopes

    cfg = get_config(config)
    _, sessions = open_database(cfg.state.url)
    text, token = ApiTokens(sessions).create(name, parse_scopes(scope))
    console.print(
        f"token {token.id} ({', '.join(sorted(s.value for s in token.scopes))}) "
        f"for {name}; store it now, it is not shown again:",
        highlight=False,
    )
    typer.echo(text)


@token_app.command("list")
def token_list(
    config: Path | None = CONFIG_OPTION, json_out: bool = typer.Option(False, "--json")
) -> None:
    """List tokens (ids, names, scopes; never the secrets)."""
    from rich.table import Table

    from rempart.db import open_database
    from rempart.respond.apitokens import ApiTokens

    _, sessions = open_database(get_config(config).state.url)
    tokens = ApiTokens(sessions).list()
    if json_out:
        print_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "scopes": sorted(s.value for s in t.scopes),
                    "created": t.created,
                    "revoked_at": t.revoked_at,
                }
                for t in tokens
            ]
        )
        return
    table = Table("id", "name", "scopes", "revoked")
    for t in tokens:
        table.add_row(
            t.id, t.name, ",".join(sorted(s.value for s in t.scopes)), "yes" if t.revoked_at else ""
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: str, config: Path | None = CONFIG_OPTION) -> None:
    """Revoke a token by id (the server notices within 30 s)."""
    from rempart.db import open_database
    from rempart.respond.apitokens import ApiTokens

    _, sessions = open_database(get_config(config).state.url)
    ApiTokens(sessions).revoke(token_id)
    console.print(f"token {token_id} revoked")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(token_app, name="token")
