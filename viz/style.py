"""Greyscale-safe figure style: series told apart by marker, line style and fill, not colour.

Every figure of :mod:`viz.figures` goes through these helpers, so a report printed in black
and white still separates its series:

* :func:`series_style` gives series ``i`` a marker, a line style, a fill and a grey-safe
  colour (cividis, whose lightness rises monotonically); the (marker, line style, fill)
  triple differs for the first :data:`DISTINCT` series;
* :func:`hatch` gives bar ``i`` a hatch pattern;
* :data:`HEATMAP_CMAP` is a sequential map that reads the same in grey, and
  :func:`annotate_cells` prints each heat-map cell's value on it, in black or white by the
  cell's lightness;
* :func:`save` writes ``<stem>.png`` (dpi :data:`DPI`) and ``<stem>.svg`` and closes the
  figure.

matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "DISTINCT",
    "DPI",
    "HATCHES",
    "HEATMAP_CMAP",
    "LINESTYLES",
    "MARKERS",
    "RC",
    "annotate_cells",
    "grey_level",
    "hatch",
    "new_figure",
    "save",
    "series_style",
    "styled",
]

#: Resolution of the PNG files.
DPI = 120
#: Markers of successive series (filled shapes first, then the same shapes hollow).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
#: Line styles of successive series (the period differs from the markers').
LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
#: Hatches of successive bars.
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--", "oo", "||", "**")
#: Series with pairwise different (marker, line style, fill).
DISTINCT = 2 * len(MARKERS)
#: Sequential colour map of heat maps: lightness rises monotonically (reads in grey).
HEATMAP_CMAP = "cividis"
#: rcParams every figure is drawn with.
RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.color": "0.6",
    "svg.fonttype": "none",
    "svg.hashsalt": "adlgame",
    "lines.markersize": 6,
}


def styled(draw: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run a drawing function with :data:`RC` in force (fonts, grid, SVG text)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plt.rc_context(RC):
            return draw(*args, **kwargs)

    return wrapper


def series_style(i: int, n: int | None = None) -> dict[str, Any]:
    """Keyword arguments (``marker``, ``linestyle``, ``fillstyle``, ``color``) for series ``i``.

    ``n`` is the number of series (spreads the colours over the map; default
    :data:`DISTINCT`).  Colours run from dark to light along cividis, but the series are told
    apart by their markers, line styles and fills alone: the triple is distinct for
    ``i < DISTINCT`` (markers cycle every 12, line styles every 5, fills every 12).
    """
    i = int(i)
    n = max(int(n if n is not None else DISTINCT), 1)
    cmap = matplotlib.colormaps["cividis"]
    color = cmap(0.85 * ((i % n) / max(n - 1, 1)))
    return {
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "fillstyle": "full" if (i // len(MARKERS)) % 2 == 0 else "none",
        "color": color,
    }


def hatch(i: int) -> str:
    """Hatch pattern of bar ``i`` (cycles through :data:`HATCHES`)."""
    return HATCHES[int(i) % len(HATCHES)]


def grey_level(color: Any) -> float:
    """Lightness of a colour as printed in grey (ITU-R BT.601 luma), in [0, 1]."""
    r, g, b = matplotlib.colors.to_rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b


def new_figure(
    nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (7.0, 4.5), **kw: Any
) -> tuple[Figure, np.ndarray]:
    """A figure with an array of axes (always 2-D), drawn with :data:`RC`."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)
    return fig, axes


def annotate_cells(
    ax: Axes, values: np.ndarray, texts: Sequence[Sequence[str]], image: Any
) -> None:
    """Print ``texts[i][j]`` in cell (i, j) of a heat map, black on light cells, white on dark.

    ``image`` is what ``ax.imshow`` returned (its colour map and norm give each cell's colour).
    """
    vals = np.asarray(values, dtype=np.float64)
    for i in range(vals.shape[0]):  # one text per cell of a small table (policies x actions)
        for j in range(vals.shape[1]):
            v = vals[i, j]
            shade = image.cmap(image.norm(v)) if np.isfinite(v) else (1.0, 1.0, 1.0, 1.0)
            ink = "black" if grey_level(shade[:3]) > 0.5 else "white"
            ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=7, color=ink)


def save(fig: Figure, out: str | Path, stem: str) -> list[Path]:
    """Write ``out/<stem>.png`` (dpi :data:`DPI`) and ``out/<stem>.svg``, close the figure.

    Returns the two paths.
    """
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    files = [path / f"{stem}.png", path / f"{stem}.svg"]
    with plt.rc_context(RC):
        fig.savefig(files[0], dpi=DPI, bbox_inches="tight")
        fig.savefig(files[1], bbox_inches="tight")
    plt.close(fig)
    return files
