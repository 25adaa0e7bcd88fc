"""What every command-line tool of the project does around its command: an error the user can
fix becomes one line naming the tool and command (exit 2), and output piped into `head` ends
quietly."""

from __future__ import annotations

import argparse
import os
import sys

from .ls_import import ExportError
from .schema import SchemaError
from .store import StoreError

USER_ERRORS: tuple[type[Exception], ...] = (ExportError, SchemaError, StoreError,
                                            FileNotFoundError, ValueError)


def run_command(prog: str, args: argparse.Namespace,
                extra_errors: tuple[type[Exception], ...] = ()) -> int:
    """Call `args.func(args)`; return the exit status."""
    try:
        args.func(args)
    except (*USER_ERRORS, *extra_errors) as err:
        where = f"{prog} {args.command}" if getattr(args, "command", None) else prog
        print(f"{where}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
    return 0
