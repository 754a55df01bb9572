"""The ``adlgame`` console script: the experiments' command line plus what viz adds.

:mod:`experiments.cli` holds every sub-command of the game and its experiments; this module
adds the ones that draw or serve (``graph``, ``dashboard``) and hands experiment reports the
figure writer :func:`viz.figures.write_figures`.  Keeping the entry point here lets the
experiments layer stay free of viz imports.  Heavy modules (solara,
networkx drawing) are imported only by the sub-command that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from experiments import cli as base

__all__ = ["add_viz_commands", "main"]


def _graph(args: argparse.Namespace) -> int:
    from viz import graph

    return graph.command(args)


def _dashboard(args: argparse.Namespace) -> int:
    from viz import dashboard

    return dashboard.command(args)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..65535 (got {text!r})") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..65535 (got {text!r})")
    return value


def add_viz_commands(sub: Any) -> None:
    """Add the ``graph`` and ``dashboard`` sub-commands to an argparse sub-parsers action."""
    g = sub.add_parser(
        "graph", help="loss-transfer graphs of an `adlgame run` folder (PNG + GraphML)"
    )
    g.add_argument("run_dir", help="a folder written by `adlgame run`")
    g.add_argument(
        "--wave", type=int, default=None, help="one ADL wave (default: every wave and the total)"
    )
    g.add_argument(
        "--out", default=None, help="where to write (default: RUN_DIR-graphs, beside the run)"
    )

    d = sub.add_parser("dashboard", help="serve the live dashboard (Mesa + Solara) on a port")
    d.add_argument("--port", type=_port, default=8765, help="TCP port (default 8765)")
    d.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adlgame`` console script."""

    def figures(*args: Any, **kwargs: Any) -> Any:
        from viz.figures import write_figures

        return write_figures(*args, **kwargs)

    return base.main(
        argv,
        extend=add_viz_commands,
        commands={"graph": _graph, "dashboard": _dashboard},
        figures=figures,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
