"""``OptionControls``: a method's settings as widgets, built from its option schema (``cfnb.methods.Option``).

Numbers get sliders over the option's range (log sliders where the schema says so), or a text box when the range
is unbounded; booleans a checkbox; choices a dropdown. Options of kind ``"any"`` (tensors, lists of names) get no
control: they are passed through a panel's ``options=``. The method's main options come first, in one row; the
others sit under "more options". A new method or option shows up here without touching widget code.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ..methods.registry import Method, Option
from .display import SLIDER_TRACK_PX, name_width_px, wrapping_row

STYLE = {"description_width": "initial"}


def control_for(option: Option, value: Any, label_px: int | None = None) -> widgets.Widget | None:
    """A widget for one option, starting at ``value``; None for options a panel does not show (kind ``"any"``).

    ``label_px`` fixes the description's width (sliders and boxes then get ``SLIDER_TRACK_PX`` more), so that the
    controls of one method line up; None sizes the description to its text.
    """
    control = _control(option, value, STYLE if label_px is None else {"description_width": f"{label_px}px"})
    if control is not None:  # ipywidgets 8 calls it `tooltip`, 7 `description_tooltip`
        setattr(control, "tooltip" if control.has_trait("tooltip") else "description_tooltip", option.help)
    if label_px is not None and isinstance(control, (widgets.FloatLogSlider, widgets.IntSlider, widgets.FloatSlider,
                                                     widgets.IntText, widgets.FloatText)):
        control.layout.width = f"{label_px + SLIDER_TRACK_PX}px"
    return control


def _control(option: Option, value: Any, style: dict[str, str]) -> widgets.Widget | None:
    common = {"description": option.name, "style": style}
    if option.kind == "bool":
        return widgets.Checkbox(value=bool(value), indent=False, **common)
    if option.kind == "choice":
        return widgets.Dropdown(options=list(option.choices or ()), value=value, **common)
    if option.kind not in ("int", "float") or value is None:
        return None
    span = option.slider_range
    if span is None:
        box = widgets.IntText if option.kind == "int" else widgets.FloatText
        return box(value=value, **common)
    low, high = span
    if option.kind == "int":
        return widgets.IntSlider(value=int(min(max(value, low), high)), min=int(low), max=int(high), step=1,
                                 continuous_update=False, **common)
    if option.log and low > 0:
        slider = widgets.FloatLogSlider(value=min(max(value, low), high), base=10, min=math.log10(low),
                                        max=math.log10(high), step=0.1, continuous_update=False,
                                        readout_format=".3g", **common)
        return slider
    return widgets.FloatSlider(value=min(max(value, low), high), min=low, max=high, step=(high - low) / 100,
                               continuous_update=False, readout_format=".3g", **common)


def set_control(control: widgets.Widget, value: Any) -> None:
    """Move ``control`` to ``value``, widening a slider's range first when the value lies outside it (a value set
    from code is never clipped)."""
    with control.hold_sync():
        if isinstance(control, widgets.FloatLogSlider) and isinstance(value, (int, float)) and value > 0:
            exponent = math.log10(value)
            control.min, control.max = min(control.min, math.floor(exponent)), max(control.max, math.ceil(exponent))
        elif isinstance(control, (widgets.IntSlider, widgets.FloatSlider)) and isinstance(value, (int, float)):
            control.min, control.max = min(control.min, value), max(control.max, value)
        control.value = value


class OptionControls(widgets.VBox):
    """The controls of one method's options; ``show(method)`` rebuilds them for another method.

    Attributes:
        controls: option name -> widget, for the options on show.
        method: the method whose options are on show.
    """

    children: Sequence[widgets.Widget]  # ipywidgets' own trait, declared because ipywidgets has no type hints

    def __init__(self) -> None:
        self.controls: dict[str, widgets.Widget] = {}
        self.method: Method | None = None
        self._more = widgets.Accordion(children=[])
        super().__init__([])

    def show(self, method: Method, start: Mapping[str, Any] | None = None) -> None:
        """Build the controls of ``method``, each at ``start[name]`` if given, else at its default."""
        start = dict(start or {})
        rows = [child for child in self.children if child is not self._more] + list(self._more.children)
        for widget in [*self.controls.values(), *rows]:  # what the previous method's controls leave behind
            widget.close()
        self.method = method
        self.controls = {}
        label_px = name_width_px([o.name for o in method.options])
        for option in method.options:
            control = control_for(option, start.get(option.name, option.default), label_px)
            if control is not None:
                self.controls[option.name] = control
        main = [self.controls[o.name] for o in method.options if o.main and o.name in self.controls]
        rest = [self.controls[o.name] for o in method.options if not o.main and o.name in self.controls]
        children: list[widgets.Widget] = []
        if main:
            children.append(widgets.HBox(main, layout=wrapping_row()))
        if rest:
            self._more.children = [widgets.HBox(rest, layout=wrapping_row())]
            self._more.set_title(0, f"more options of {method.name}")
            self._more.selected_index = None
            children.append(self._more)
        else:
            self._more.children = []
        self.children = children

    def values(self) -> dict[str, Any]:
        """Option name -> the value of its control."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, name: str, value: Any) -> bool:
        """Move the control of option ``name`` to ``value``; False when the option has no control."""
        control = self.controls.get(name)
        if control is None:
            return False
        set_control(control, value)
        return True

    def widgets(self) -> list[widgets.Widget]:
        """Every control on show (to disable while a search runs)."""
        return list(self.controls.values())
