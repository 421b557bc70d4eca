"""Interactive panels composed from stock ipywidgets (7.7 and 8; no custom JavaScript).

``ExplainerPanel`` explains one image at a time with any method; ``AttributePanel`` edits faces attribute by
attribute and explains with the attribute method;
``ComparePanel`` shows the counterfactuals of two to four classifiers for the same image side by side.
"""
from .attribute_panel import AttributePanel
from .compare_panel import ComparePanel
from .explainer_panel import ExplainerPanel

__all__ = ["ExplainerPanel", "AttributePanel", "ComparePanel"]
