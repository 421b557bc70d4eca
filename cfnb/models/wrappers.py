"""Views that give other models the structure the counterfactual methods expect."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class AttributeClassifier(nn.Module):
    """Two-class view of one output of a multi-label GAP classifier.

    Logits are ``(0, l)`` for the attribute's logit ``l``, so softmax gives ``(1 - sigmoid(l), sigmoid(l))``: class 0
    is "not <attribute>", class 1 is "<attribute>". The view keeps the GAP + linear structure (its ``head`` is a
    2-row linear layer sharing the weights), so Mirror-CFE can explain it.

    Args:
        multilabel: a classifier with ``features`` and a linear ``head`` over K attributes.
        attribute_names: the K names, in the head's order.
        attribute: the attribute to view.
    """

    def __init__(self, multilabel: nn.Module, attribute_names: list[str], attribute: str):
        super().__init__()
        if attribute not in attribute_names:
            raise KeyError(f"unknown attribute {attribute!r}; known: {', '.join(attribute_names)}")
        if not isinstance(getattr(multilabel, "head", None), nn.Linear):
            raise TypeError("AttributeClassifier needs a classifier with a linear `head` (GAP + linear structure)")
        self.multilabel: Any = multilabel  # any multi-label GAP classifier, called and read through its head
        self.attribute = attribute
        self.attribute_names = list(attribute_names)
        self.index = attribute_names.index(attribute)
        self.class_names = [f"not {attribute}", attribute]
        self.in_channels = getattr(multilabel, "in_channels", None)
        self.num_classes = 2

    @property
    def head(self) -> nn.Linear:
        """A 2-class linear head equivalent to this view (rows: zeros, the attribute's row)."""
        source: nn.Linear = self.multilabel.head
        head = nn.Linear(source.in_features, 2).to(source.weight.device, source.weight.dtype)
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
            head.weight[1] = source.weight[self.index]
            head.bias[1] = source.bias[self.index]
        head.requires_grad_(False)
        return head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.multilabel.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = self.multilabel(x)[:, self.index]
        return torch.stack([torch.zeros_like(logit), logit], dim=1)
