"""The one base class for errors a user can fix (bad input, a missing file, a wrong option).

Command-line tools show a `UserError` as one line and exit 2; any other exception is a bug and
shows its traceback. It subclasses `ValueError` so callers that caught `ValueError` still work.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix; the message says what and where (file, row, task)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named (or a step needs) does not exist."""
