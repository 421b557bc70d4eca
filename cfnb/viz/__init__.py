"""Figures and files from ``Counterfactuals``: pure functions, no model calls.

Every function takes a result first and the same keyword names for the same things (``index``, ``frames``,
``scale``, ``duration_ms``): ``animate`` (the path as a Plotly animation), ``compare`` (original | counterfactual |
difference grid), ``attribute_deltas`` (attribute changes of the attribute method), ``to_gif`` / ``to_html`` /
``gallery_html`` (files). Beside them: ``image_grid`` (images side by side with captions), ``probability_bars``
(one image's class probabilities),
``describe_attribute_change`` (an attribute change in words) and ``png_data_uri`` (the one tensor -> PNG
conversion everything uses).
"""
from .animation import animate
from .attributes import attribute_deltas
from .compare import compare
from .export import gallery_html, to_gif, to_html
from .grid import image_grid
from .images import difference_rgb, png_bytes, png_data_uri
from .probabilities import probability_bars
from .summaries import describe_attribute_change, summarize

__all__ = ["animate", "compare", "attribute_deltas", "probability_bars", "to_gif", "to_html", "gallery_html",
           "png_data_uri", "png_bytes", "difference_rgb", "describe_attribute_change", "summarize", "image_grid"]
