"""What every command-line tool of the project does around its command: an error the user can
fix (`UserError`) becomes one line naming the tool and command (exit 2); any other exception is
a bug and keeps its traceback; output piped into `head` ends quietly."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import inspect
import os
import sys

from annotate.runtime.errors import UserError


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
    except OSError as err:
        if err.errno not in _DISK_ERRORS:
            raise
        where = f"{prog} {args.command}" if getattr(args, "command", None) else prog
        print(f"{where}: error: cannot write {err.filename or 'the output'}: {err.strerror} "
              "(nothing half-written was left: outputs are written whole or not at all)",
              file=sys.stderr)
        return 2
    return 0


#: Errors of the disk, not of the program: full, read-only, over quota, not permitted.
_DISK_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


def default(source: object, name: str) -> object:
    """The default of parameter `name` of a function, or of field `name` of a dataclass: the one
    place a command takes its defaults from, so a command and its job cannot disagree.

    Parameters
    ----------
    source : callable or dataclass
        The job function (or its settings class).
    name : str
        The parameter or field.

    Returns
    -------
    object
        Its default value.

    Examples
    --------
    >>> def job(ts, *, n_boot: int = 1000): ...
    >>> default(job, "n_boot")
    1000
    """
    if dataclasses.is_dataclass(source):
        field = {f.name: f for f in dataclasses.fields(source)}[name]
        if field.default is not dataclasses.MISSING:
            return field.default
        return field.default_factory()
    value = inspect.signature(source).parameters[name].default
    if value is inspect.Parameter.empty:
        raise TypeError(f"{getattr(source, '__name__', source)}: {name} has no default")
    return value
