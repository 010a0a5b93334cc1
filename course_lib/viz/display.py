"""Showing a widget whose plotly figures were drawn on before it was displayed.

plotly copies a ``FigureWidget``'s current traces and layout into the state the browser
starts from only when the figure itself is displayed (its ``_repr_mimebundle_``).  A
course widget displays an ipywidgets box *containing* its figures, so the browser would
start from each figure as it was built, then receive only the later edits: a trace set
before display and never changed since (the phi widget's flat threshold line) reached
the browser without its values.  :func:`view_bundle` copies every figure's current
state first, as plotly's own display does.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Iterator

import ipywidgets as widgets
from plotly.basewidget import BaseFigureWidget


def figures_in(view: widgets.Widget) -> Iterator[BaseFigureWidget]:
    """Every plotly FigureWidget in ``view`` and its children, depth first."""
    if isinstance(view, BaseFigureWidget):
        yield view
        return
    for child in getattr(view, "children", ()):
        yield from figures_in(child)


def sync_figure(figure: BaseFigureWidget) -> None:
    """Make ``figure``'s widget state (what a new browser view starts from) its current
    traces and layout — what ``FigureWidget._repr_mimebundle_`` does."""
    figure._widget_layout = deepcopy(figure._layout_obj._props)
    figure._widget_data = deepcopy(figure._data)


def view_bundle(view: widgets.Widget, **kwargs) -> dict:
    """The display bundle of ``view``, its figures synced first: a course widget's
    ``_repr_mimebundle_`` returns this."""
    for figure in figures_in(view):
        sync_figure(figure)
    return view._repr_mimebundle_(**kwargs)
