"""Policies from outside the package: a file, a module, or an installed package's entry point.

A policy name is one of

* a built-in registry name (``hyperliquid``),
* ``path/to/file.py:ClassName`` (the file is imported once per process, under a module name
  derived from its absolute path),
* ``package.module:ClassName`` (imported with :func:`importlib.import_module`),
* a name an installed distribution registers in the entry-point group ``adlgame.policies``
  (``[project.entry-points."adlgame.policies"] my_rule = "my_pkg.rules:MyRule"``); those
  appear in ``adlgame policies`` beside the built-ins.

:func:`policy_class` resolves any of them to an :class:`~market.adl.base.ADLPolicy` subclass;
:func:`market.adl.get_policy` accepts them wherever a policy is named.  The specification is
a plain string, so worker processes resolve it again on their side.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from market.adl.base import ADLPolicy
from market.errors import InputError

__all__ = ["ENTRY_POINT_GROUP", "entry_point_policies", "is_plugin_spec", "load_plugin"]

#: The entry-point group installed packages register their policies in.
ENTRY_POINT_GROUP = "adlgame.policies"

_ALLOWED = "a built-in name (adlgame policies), FILE.py:ClassName or package.module:ClassName"


def is_plugin_spec(name: str) -> bool:
    """True for ``something:ClassName`` (a file or module plus a class)."""
    return isinstance(name, str) and ":" in name


def _import_file(path: Path) -> object:
    key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    mod_name = f"adlgame_plugin_{path.stem}_{key}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise InputError("policy", "a Python file (.py)", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise InputError(
            "policy", f"a file that imports cleanly ({type(exc).__name__}: {exc})", str(path)
        ) from None
    return module


def load_plugin(spec: str) -> type[ADLPolicy]:
    """The policy class named by ``FILE.py:Class`` or ``module:Class``.

    Raises:
        InputError: naming the file, module or class and what was expected.
    """
    where, _, cls_name = spec.rpartition(":")
    if not where or not cls_name.isidentifier():
        raise InputError("policy", _ALLOWED, spec)
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise InputError("policy", f"an existing Python file ({_ALLOWED})", where)
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise InputError("policy", f"an importable module ({exc})", where) from None
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ADLPolicy)):
        raise InputError("policy", f"a subclass of market.adl.ADLPolicy in {where}", cls_name)
    return cls


def entry_point_policies() -> dict[str, str]:
    """Name -> ``module:Class`` of every policy installed packages register."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
