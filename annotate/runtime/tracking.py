"""MLflow's tracking URI in one place: which store a record goes to, and a context that sets it
and restores it afterwards.

`mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI into the process environment, so a
second pipeline, comparison or study in the same Python process would silently record into the
first one's store. Every writer of MLflow records here goes through `tracking`, which puts both
back as they were.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

URI_VARIABLE = "MLFLOW_TRACKING_URI"
#: The local store a run or study folder gets when nothing else is named.
LOCAL_STORE = "mlflow.db"


def tracking_uri(explicit: str | None, folder: str | os.PathLike | None = None) -> str | None:
    """The store to record into.

    Parameters
    ----------
    explicit : str, optional
        A URI the user named (`--tracking-uri`): always wins.
    folder : path, optional
        A run or study folder whose own `mlflow.db` is the default.

    Returns
    -------
    str or None
        `explicit`, else $MLFLOW_TRACKING_URI, else `sqlite:///<folder>/mlflow.db`; None when
        none of them is given.

    Examples
    --------
    >>> tracking_uri("http://127.0.0.1:5000", "/runs/a")
    'http://127.0.0.1:5000'
    """
    if explicit:
        return explicit
    if os.environ.get(URI_VARIABLE):
        return os.environ[URI_VARIABLE]
    if folder is None:
        return None
    return f"sqlite:///{(Path(folder) / LOCAL_STORE).resolve()}"


@contextlib.contextmanager
def tracking(uri: str) -> Iterator[ModuleType]:
    """Use `uri` as MLflow's tracking URI inside the block; restore the previous URI and the
    environment variable afterwards, also when the block fails.

    Parameters
    ----------
    uri : str
        The tracking URI (`tracking_uri` gives the default).

    Yields
    ------
    module
        `mlflow`, set to record into `uri`.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous = getattr(utils, "_tracking_uri", None)
    variable = os.environ.get(URI_VARIABLE)
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(previous)
        if variable is None:
            os.environ.pop(URI_VARIABLE, None)
        else:
            os.environ[URI_VARIABLE] = variable
