"""``setup_notebook()``: make cfnb's widgets and figures show on the platform the notebook runs on."""
from __future__ import annotations

import sys


def setup_notebook() -> str:
    """Prepare the notebook front end for cfnb, and say what was done.

    On Google Colab (``google.colab`` imported), enables Colab's custom widget manager (third-party and newer
    widgets need it) and makes Plotly render with the ``"colab"`` renderer; panels there show figures as plain
    figures inside ``Output`` widgets, which works with Colab's ipywidgets 7.7. Elsewhere (JupyterLab, Notebook 7,
    VS Code) nothing needs doing.

    Returns:
        A one-line description of what was done.
    """
    colab = sys.modules.get("google.colab")
    if colab is None:
        return "cfnb: nothing to set up (not on Colab); widgets and Plotly figures work as they are"
    output = getattr(colab, "output", None)
    if output is None:
        import importlib

        output = importlib.import_module("google.colab.output")
    output.enable_custom_widget_manager()
    import plotly.io as pio

    pio.renderers.default = "colab"
    return "cfnb: on Colab: enabled the custom widget manager and set plotly.io.renderers.default = 'colab'"
