"""Run a measurement in a forked child process (its own peak memory)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def run_forked(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a forked child process; its record, or ``{"error": ...}`` when it
    raised or the child died.  A fresh child per measurement makes its peak RSS its own (a
    forked child's peak starts at what it actually touches, not at the parent's peak)."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_body, args=(send, fn, args), daemon=True)
    proc.start()
    send.close()
    try:
        rec = recv.recv()
    except EOFError:
        rec = None
    finally:
        recv.close()
    proc.join()
    if rec is None:
        rec = {"error": f"child process ended with exit code {proc.exitcode}"}
    return rec


def _child_body(conn: Any, fn: Callable[..., dict[str, Any]], args: tuple) -> None:
    """Child-process body of :func:`run_forked`: send ``fn``'s record (or the error) back."""
    try:
        conn.send(fn(*args))
    except Exception as exc:  # reported in the record, the suite goes on
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()
