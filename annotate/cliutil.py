"""What every command-line tool of the project does around its command: an error the user can
fix (`UserError`) becomes one line naming the tool and command (exit 2); any other exception is
a bug and keeps its traceback; output piped into `head` ends quietly."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import UserError


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Call `args.func(args)`; return the exit status."""
    try:
        args.func(args)
    except UserError as err:
        where = f"{prog} {args.command}" if getattr(args, "command", None) else prog
        print(f"{where}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
    return 0
