"""Errors raised by the exchange core for bad input."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input: the message names the field and what is allowed, on one line.

    Raised before any state changes, so a caller that catches it loses nothing.
    """

    def __init__(self, field: str, allowed: str, got: Any = None) -> None:
        self.field = field
        self.allowed = allowed
        self.got = got
        msg = f"{field}: must be {allowed}"
        if got is not None:
            msg += f" (got {got!r})"
        super().__init__(msg)

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str, Any]]:
        """Pickle by the three fields (a worker process's error reaches the caller whole)."""
        return (type(self), (self.field, self.allowed, self.got))


def _short(value: Any) -> Any:
    """A compact repr-able form of a possibly large value for error messages."""
    try:
        import numpy as np

        arr = np.asarray(value)
        if arr.size > 4:
            return f"array of shape {arr.shape}"
    except Exception:  # pragma: no cover - only for exotic inputs
        return value
    return value.tolist() if hasattr(value, "tolist") else value


def require(cond: bool, field: str, allowed: str, got: Any = None) -> None:
    """Raise :class:`InputError` naming ``field`` unless ``cond`` holds."""
    if not cond:
        raise InputError(field, allowed, _short(got) if got is not None else None)
