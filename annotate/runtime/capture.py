"""Send everything a step writes to the terminal into its log file instead.

The pipeline's steps call libraries that print (ultralytics' training tables, transformers'
warnings and "Writing model shards" bars, MLflow's messages). Redirecting the file descriptors,
not just `sys.stdout`, catches output from C code and from handlers that captured the stream
objects at import time. Python `logging` records go to the same file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def captured(log_path: str | os.PathLike) -> Iterator[Path]:
    """Within the block, stdout, stderr and logging go to `log_path` (appended)."""
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    terminal = (sys.stdout, sys.stderr)
    handler = None
    with open(path, "a", encoding="utf-8", buffering=1) as log:
        moved = _handlers_writing_to(terminal)
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = log
            for existing in moved:  # handlers that captured the terminal stream at import
                existing.setStream(log)
            handler = logging.StreamHandler(log)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s "
                                                   "%(message)s"))
            logging.getLogger().addHandler(handler)
            yield path
        finally:
            with contextlib.suppress(ValueError, OSError):
                log.flush()
            if handler is not None:
                logging.getLogger().removeHandler(handler)
            for existing, stream in moved.items():
                existing.setStream(stream)
            # handlers a library made inside the block (ultralytics' logger on first import)
            # hold the log file, closed below: give them the terminal's stdout, which the next
            # captured block moves again
            for created in _handlers_writing_to((log,)):
                if created is not handler:
                    created.setStream(terminal[0])
            sys.stdout, sys.stderr = terminal
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _handlers_writing_to(streams: tuple) -> dict[logging.StreamHandler, object]:
    """Every logging stream handler (of any logger) that writes to one of `streams`."""
    loggers = [logging.getLogger(), *(logger for logger in
                                      logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    return {h: h.stream for logger in loggers for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
            and h.stream in streams}
