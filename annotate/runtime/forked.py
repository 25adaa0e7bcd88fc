"""Split a CPU-bound pure-Python job over forked processes: each child computes one part on the
memory it inherited (nothing is sent to it) while the parent computes the first, and the
results come back pickled, in order.

Why fork and not a process pool: the parts read large in-memory data (a decoded export) that a
pool would have to pickle and send to each worker, which costs more than the work saves. A
forked child sees the parent's memory as it was at the fork, for free. A child pickles its
result into an unnamed temporary file and leaves, so its memory, and the pages it still
shared with the parent, are freed before the parent reads the result. Fork is used on Linux
only (macOS' system libraries are not fork-safe; Windows has none); elsewhere, and for one
part, every part runs here, in order.
A part that fails in its child raises `PartFailed`: with the child's traceback when the part
raised, with the child's exit status when it was killed before its result was written.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import IO, Any


class PartFailed(RuntimeError):
    """A part failed in its child process (the message says why: the child's traceback, or
    its exit status when it died before writing its result)."""


def can_fork() -> bool:
    """Whether parts may run in forked children here (Linux with `os.fork`)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ForkedParts:
    """Parts 1 … `parts` − 1 of a job, each started at once in a forked child; `collect` waits
    for their results, in order. Use it as a context manager: leaving the block stops and reaps
    every child not collected (the parent failed, or did not need them).

    Children are forked when the object is made, so the parent may drop, before it computes its
    own part, whatever only the children read: they keep their copy.

    Parameters
    ----------
    part : callable
        Computes part `k` from memory the parent holds; its result must pickle.
    parts : int
        How many parts in all, the parent's own (part 0) included. Without fork (`can_fork`)
        parts 1 … are computed here by `collect`.

    Examples
    --------
    >>> with ForkedParts(lambda k: k * k, 3) as children:
    ...     results = [0, *children.collect()]
    >>> results
    [0, 1, 4]
    """

    def __init__(self, part: Callable[[int], Any], parts: int) -> None:
        self.part, self.parts = part, parts
        self.children: list[tuple[int, IO[bytes]] | None] = []
        if can_fork():
            for k in range(1, parts):
                self.children.append(_start(part, k))

    def collect(self) -> list:
        """The results of parts 1 …, in order; `PartFailed` when one failed in its child."""
        if not self.children:
            return [self.part(k) for k in range(1, self.parts)]
        results = []
        for k, child in enumerate(self.children, start=1):
            self.children[k - 1] = None  # reaped by `_collect`, whatever happens there
            results.append(_collect(k, *child))
        return results

    def __enter__(self) -> ForkedParts:
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self.children:
            if child is not None:
                _stop(*child)
        self.children = []


def _start(part: Callable[[int], Any], k: int) -> tuple[int, IO[bytes]]:
    # unnamed (gone with its last descriptor); closed by `_collect` or `_stop`
    result_file = tempfile.TemporaryFile()  # noqa: SIM115
    pid = os.fork()
    if pid == 0:  # the child: compute, write, leave without running the parent's exit handlers
        status = 1
        try:
            with open(result_file.fileno(), "wb", closefd=False) as out:
                try:
                    result = part(k)
                except Exception:  # written for the parent, which raises it
                    pickle.dump((False, traceback.format_exc()), out)
                else:
                    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
                    pickler.fast = True  # no memo: results are trees (a memo of every
                    pickler.dump((True, result))  # object would double the child's memory)
            status = 0
        finally:
            os._exit(status)
    return pid, result_file


def _collect(k: int, pid: int, result_file: IO[bytes]) -> Any:
    _, status = os.waitpid(pid, 0)
    with result_file:
        result_file.seek(0)
        try:
            ok, value = pickle.load(result_file)
        except Exception as err:  # cut short: the child died while writing
            ok, value = False, f"its result could not be read ({type(err).__name__}: {err})"
    if not ok or status:
        detail = value if not ok else f"exit status {status}"
        raise PartFailed(f"part {k} failed in its child process (pid {pid}): {detail}")
    return value


def _stop(pid: int, result_file: IO[bytes]) -> None:
    result_file.close()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
