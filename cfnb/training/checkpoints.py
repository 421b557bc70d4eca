"""Checkpoints of a training loop: everything that decides the next step, saved atomically every N steps, so a run
killed at any point resumes to the same weights as an uninterrupted one (same seed, same thread count).

A loop hands ``Checkpointer.save`` its stateful objects (model, optimiser, schedule, ...: anything with
``state_dict``/``load_state_dict``), its random generators and a small ``position`` dict (epoch, batch, the epoch's
order...); ``restore`` puts them back and returns the position, or None when there is nothing to resume.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"


class Checkpointer:
    """Saves a loop's state to ``folder/checkpoint.pt`` (or ``file_name``) every ``every`` steps and restores it when
    resuming.

    Args:
        folder: where the checkpoint lives (created if needed).
        every: save after every ``every`` steps (and after the last one).
        resume: restore the checkpoint found in ``folder`` (if any) before the loop starts.
        file_name: the checkpoint's file in ``folder``; a training with several stages gives each its own.
    """

    def __init__(self, folder: str | Path, every: int = 500, resume: bool = False, file_name: str = CHECKPOINT_FILE):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"checkpoint_every must be an int >= 1 (steps), got {every!r}")
        self.folder = Path(folder)
        self.every = every
        self.resume = resume
        self.path = self.folder / file_name

    def for_stage(self, file_name: str) -> Checkpointer:
        """A checkpointer like this one (folder, interval, resume) that writes ``file_name`` instead."""
        return Checkpointer(self.folder, self.every, self.resume, file_name)

    def restore(self, stateful: Mapping[str, Any], generators: Mapping[str, torch.Generator]) -> dict[str, Any] | None:
        """Load the saved state into ``stateful`` and ``generators`` (and torch's global generator); return the saved
        position, or None when not resuming or nothing was saved yet."""
        if not self.resume or not self.path.is_file():
            return None
        saved = torch.load(self.path, map_location="cpu", weights_only=False)
        missing = sorted((set(stateful) | set(generators)) - set(saved["state"]) - set(saved["generators"]))
        if missing:
            raise ValueError(f"{self.path} does not hold {missing}: it was written by another kind of training; "
                             "remove it or train into another folder")
        for name, value in stateful.items():
            value.load_state_dict(saved["state"][name])
        for name, generator in generators.items():
            generator.set_state(saved["generators"][name])
        torch.set_rng_state(saved["global_rng"])
        return dict(saved["position"])

    def due(self, step: int, total: int) -> bool:
        """Whether ``save`` should run after ``step`` of ``total`` steps."""
        return step % self.every == 0 or step == total

    def save(self, stateful: Mapping[str, Any], generators: Mapping[str, torch.Generator],
             position: Mapping[str, Any]) -> Path:
        """Write the state atomically: to a temporary file in the same folder, flushed and synced, then renamed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"state": {name: value.state_dict() for name, value in stateful.items()},
                   "generators": {name: g.get_state() for name, g in generators.items()},
                   "global_rng": torch.get_rng_state(), "position": dict(position)}
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        return self.path
