"""The `ctmonitor` command: each subcommand parses, calls one Application method, prints.

Exit codes: 0 done; 1 the work failed (registry or database trouble: see the message);
2 bad input (arguments, config, files); 3 another ctmonitor process holds the lock.

The subcommands live in this package's modules by theme; importing them registers them.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from monitor.cli import database, literature, reading, running, tracking  # noqa: F401  (importing registers)
from monitor.cli.base import EXIT_FAILED, EXIT_USAGE, Failed, _busy, cli
from monitor.core.domain import UserError
from monitor.store.locking import LockBusy

__all__ = ["cli", "main"]


# -- entry point -----------------------------------------------------------------------


# click >= 8.2 raises this for a group run without a command; older versions print the help themselves.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(text: str) -> str:
    return " ".join(text.split())


GLOBAL_VALUE_OPTIONS = ("--config", "--db")
GLOBAL_FLAGS = ("--debug",)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ctmonitor's own options given after the command name to before it, so that
    `ctmonitor status --config x.toml` means `ctmonitor --config x.toml status`. Only the
    options no subcommand has of its own move; everything after `--` stays."""
    command_at = next(
        (
            i
            for i, a in enumerate(args)
            if a in cli.commands and not (i and args[i - 1] in GLOBAL_VALUE_OPTIONS)
        ),
        None,
    )
    if command_at is None:
        return args
    head, tail, moved = list(args[:command_at]), [], []
    rest = args[command_at:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            tail += rest[i:]
            break
        if a in GLOBAL_VALUE_OPTIONS and i + 1 < len(rest):
            moved += [a, rest[i + 1]]
            i += 2
            continue
        if (a.split("=", 1)[0] in GLOBAL_VALUE_OPTIONS and "=" in a) or a in GLOBAL_FLAGS:
            moved.append(a)
        else:
            tail.append(a)
        i += 1
    return head + moved + tail


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, no tracebacks (unless --debug)."""
    args = hoist_global_options(sys.argv[1:] if argv is None else list(argv))
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="ctmonitor", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _NO_ARGS_IS_HELP as exc:  # a bare group: its help is the answer
        exc.show()
        return EXIT_USAGE
    except click.UsageError as exc:  # one line, like every other error, with where to look
        where = exc.ctx.command_path if exc.ctx else "ctmonitor"
        message = _one_line(exc.format_message()).removesuffix(".")
        click.echo(f"ctmonitor: error: {message} (see `{where} --help`)", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"ctmonitor: error: {_one_line(exc.format_message())}", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILED
    except UserError as exc:
        click.echo(f"ctmonitor: error: {exc}", err=True)
        return EXIT_USAGE
    except LockBusy as exc:
        return _busy(exc)
    except Failed as exc:
        click.echo(f"ctmonitor: {exc}", err=True)
        return EXIT_FAILED
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"ctmonitor: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        return EXIT_FAILED
