"""``Counterfactuals``: the frozen result of ``cfnb.explain``, CPU tensors plus the settings that made them."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

_PER_SAMPLE = ("original", "counterfactual", "source", "target", "prediction", "probabilities",
               "original_probabilities", "valid", "steps_used")


@dataclass(frozen=True, eq=False)
class Counterfactuals:
    """Counterfactuals for N images, all tensors on the CPU.

    Attributes:
        original: (N, C, H, W) the images explained.
        counterfactual: (N, C, H, W) the edited images.
        source: (N,) the classifier's prediction on ``original``.
        target: (N,) the class asked for.
        prediction: (N,) the classifier's prediction on ``counterfactual``.
        probabilities: (N, K) class probabilities on ``counterfactual``.
        original_probabilities: (N, K) class probabilities on ``original``.
        valid: (N,) bool, ``prediction == target``.
        trajectory: (T, N, C, H, W) frames from ``original`` (t=0) to ``counterfactual`` (t=T-1).
        trajectory_probabilities: (T, N, K) class probabilities of each frame.
        steps_used: (N,) optimisation steps (or path points) each sample needed.
        seconds: wall-clock time of the call.
        method: the method's name.
        settings: the options that made the result (JSON-serialisable).
        class_names: K class names.
        extras: per-method extras: tensors whose first dimension is N (e.g. ``attribute_delta`` (N, A), ``mask``
            (N, 1, H, W)) and JSON-serialisable values (e.g. ``attribute_names``).
    """

    original: torch.Tensor
    counterfactual: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    prediction: torch.Tensor
    probabilities: torch.Tensor
    original_probabilities: torch.Tensor
    valid: torch.Tensor
    trajectory: torch.Tensor
    trajectory_probabilities: torch.Tensor
    steps_used: torch.Tensor
    seconds: float
    method: str
    settings: dict[str, Any]
    class_names: list[str]
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.original.shape[0]

    @property
    def validity(self) -> float:
        """Share of counterfactuals whose prediction is the target."""
        return self.valid.float().mean().item() if len(self) else float("nan")

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> Counterfactuals:
        """A ``Counterfactuals`` holding only the selected samples (an int keeps a batch of one)."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} out of range for {len(self)} counterfactuals")
            index = [index % len(self)]
        if isinstance(index, slice):
            index = list(range(len(self)))[index]
        if not (torch.is_tensor(index) and index.dtype == torch.bool):
            index = torch.as_tensor(index, dtype=torch.long)
        changes = {name: getattr(self, name)[index] for name in _PER_SAMPLE}
        changes["trajectory"] = self.trajectory[:, index]
        changes["trajectory_probabilities"] = self.trajectory_probabilities[:, index]
        changes["extras"] = {
            key: (value[index] if torch.is_tensor(value) and value.ndim > 0 and value.shape[0] == len(self) else value)
            for key, value in self.extras.items()
        }
        return replace(self, **changes)

    def name_of(self, label: int) -> str:
        """Class name of ``label``."""
        return self.class_names[int(label)] if 0 <= int(label) < len(self.class_names) else str(int(label))

    def __repr__(self) -> str:
        n = len(self)
        shape = "x".join(str(s) for s in self.original.shape[1:])
        l1 = (self.counterfactual - self.original).abs().mean().item() if n else float("nan")
        pairs = ", ".join(f"{self.name_of(s)}->{self.name_of(t)}" for s, t in zip(self.source[:4], self.target[:4]))
        more = ", ..." if n > 4 else ""
        return (
            f"Counterfactuals(method={self.method!r}, n={n}, image={shape}, valid={int(self.valid.sum())}/{n}, "
            f"mean_l1={l1:.4f}, frames={self.trajectory.shape[0]}, seconds={self.seconds:.3f}, pairs=[{pairs}{more}])"
        )

    # --- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the result to a ``.safetensors`` file (tensors) with its settings as JSON metadata."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {f.name: getattr(self, f.name).contiguous() for f in fields(self)
                   if torch.is_tensor(getattr(self, f.name))}
        plain_extras = {}
        for key, value in self.extras.items():
            if torch.is_tensor(value):
                tensors[f"extras.{key}"] = value.contiguous()
            else:
                plain_extras[key] = value
        meta = {"seconds": self.seconds, "method": self.method, "settings": self.settings,
                "class_names": self.class_names, "extras": plain_extras}
        save_file(tensors, str(path), metadata={"cfnb": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Counterfactuals:
        """Read a result written by ``save``."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["cfnb"])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        extras = dict(meta.pop("extras"))
        extras.update({k[len("extras."):]: v for k, v in tensors.items() if k.startswith("extras.")})
        core = {k: v for k, v in tensors.items() if not k.startswith("extras.")}
        return cls(**core, **meta, extras=extras)
