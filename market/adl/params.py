"""Parameters in the scikit-learn habit, one mixin for policies, severity controllers and
eligibility: the constructor's arguments are the parameters, stored under the same names."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

from market.errors import InputError


class Params:
    """``get_params`` / ``set_params`` / ``clone`` / ``repr`` read from ``__init__``'s signature.

    ``set_params`` checks every name, then builds the would-be object (its constructor
    validates the values) before it changes anything: a refused call leaves the object as it
    was.  A parameter whose value is itself a :class:`Params` takes nested names
    (``inner__max_fraction``).  Error fields are ``<name>.<parameter>``, ``name`` being the
    class's registry name.
    """

    name: ClassVar[str] = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, read back from the attributes of the same names
        (with ``deep``, nested ones as ``name__param`` too)."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and isinstance(value, Params):
                out.update({f"{name}__{k}": v for k, v in value.get_params().items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set parameters by name; nothing changes unless every name and value is valid.

        Raises:
            InputError: naming the first unknown parameter, or the constructor's complaint.
        """
        valid = self._param_names()
        own: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            head, _, rest = key.partition("__")
            if head not in valid:
                allowed = f"one of {', '.join(valid)}" if valid else "absent (no parameters)"
                raise InputError(f"{self.name}.{head}", allowed, head)
            if rest:
                inner = own.get(head, getattr(self, head))
                if not isinstance(inner, Params):
                    raise InputError(f"{self.name}.{head}", "a nested parameter object", rest)
                nested.setdefault(head, {})[rest] = value
            else:
                own[key] = value
        for head, sub in nested.items():
            own[head] = own.get(head, getattr(self, head)).clone().set_params(**sub)
        type(self)(**{**self.get_params(deep=False), **own})  # validates, self untouched
        for key, value in own.items():
            setattr(self, key, value)
        return self

    def clone(self) -> Self:
        """A fresh object with the same parameters."""
        return type(self)(**self.get_params(deep=False))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"
