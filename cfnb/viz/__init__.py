"""Figures and files from ``Counterfactuals``: pure functions, no model calls.

``animate`` (the path as a Plotly animation), ``compare`` (original | counterfactual | difference grid),
``attribute_deltas`` (attribute changes of the attribute method), ``class_probabilities`` (one image's class
probabilities), ``to_gif`` / ``to_html`` / ``gallery_html`` (files), and ``png_data_uri`` (the one tensor -> PNG
conversion everything uses).
"""
from .animation import animate
from .attributes import attribute_deltas
from .compare import compare
from .export import gallery_html, to_gif, to_html
from .images import difference_rgb, png_bytes, png_data_uri
from .probabilities import class_probabilities

__all__ = ["animate", "compare", "attribute_deltas", "class_probabilities", "to_gif", "to_html", "gallery_html",
           "png_data_uri", "png_bytes", "difference_rgb"]
