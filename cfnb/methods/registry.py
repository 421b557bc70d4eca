"""The method registry: each counterfactual method declares, once, what it is and what it takes.

A ``Method`` names its function, a one-line summary, the helper models it needs (role -> required callables), a
check of the classifier's structure, and its options (``Option``: name, kind, default, range, one-line help).
``cfnb.explain``, its error messages, ``cfnb.methods.available()`` and the panels' controls all read it: a method
registered here with ``register`` is usable everywhere at once.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .base import MethodOutput, Problem

RunFunction = Callable[..., MethodOutput]

KINDS = ("int", "float", "bool", "choice", "any")


@dataclass(frozen=True)
class Option:
    """One setting of a method.

    Attributes:
        name: the keyword ``cfnb.explain`` takes (``steps``, ``lam``...).
        kind: ``"int"``, ``"float"``, ``"bool"``, ``"choice"`` (one of ``choices``) or ``"any"`` (checked by the
            method itself: tensors, lists of names...).
        default: the value used when the option is not given.
        help: one line saying what it does.
        low / high: the allowed range (None: unbounded); ``low_open`` excludes ``low`` itself.
        choices: the allowed values of a ``"choice"`` option.
        span: the range a panel's slider covers when the allowed range is unbounded (default: low..high).
        log: a panel shows it on a logarithmic slider.
        main: a panel shows it in its first row (the others under "more options").
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] | None = None
    span: tuple[float, float] | None = None
    log: bool = False
    main: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"option {self.name!r}: a 'choice' option needs choices=(...)")
        if self.default is not None and self.kind != "any":
            self.check(self.default)

    @property
    def slider_range(self) -> tuple[float, float] | None:
        """The range a panel's slider covers: ``span``, else the finite allowed range, else None (a text box)."""
        if self.span is not None:
            return self.span
        if self.low is not None and self.high is not None:
            return (self.low, self.high)
        return None

    def describe_range(self) -> str:
        """The allowed range in words, e.g. ``> 0`` or ``in [0, 1]``."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"<= {self.high:g}"
        return ""

    def check(self, value: Any) -> Any:
        """``value`` if it fits this option (ints are accepted for floats); raises ``TypeError``/``ValueError``."""
        if self.kind == "any":
            return value
        if self.kind == "choice":
            if value not in (self.choices or ()):  # __post_init__ ensures a choice option has choices
                raise ValueError(f"{self.name} must be {self.describe_range()}, got {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"{self.name} must be True or False, got {value!r}")
            return value
        wanted = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            noun = "an int" if self.kind == "int" else "a number"
            raise TypeError(f"{self.name} must be {noun} {self.describe_range()}, got {value!r}".replace("  ", " "))
        number = float(value)
        below = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        above = self.high is not None and number > self.high
        if math.isnan(number) or below or above:
            noun = "an int" if self.kind == "int" else "a number"
            raise ValueError(f"{self.name} must be {noun} {self.describe_range()}, got {value!r}")
        return value


@dataclass(frozen=True)
class Helper:
    """A helper model a method needs beside the classifier.

    Attributes:
        role: the keyword it is passed as (``generator``, ``decoder``, ``editor``, ``attribute_classifier``).
        needs: the callables it must have (e.g. ``("encode", "decode")``; ``()`` for any callable model).
        help: one line saying what it is.
        required: the method cannot run without it (unless ``find`` finds one).
        find: looks for one for a given classifier (e.g. the shipped decoder of a shipped classifier); None when
            there is none.
    """

    role: str
    needs: tuple[str, ...]
    help: str
    required: bool = True
    find: Callable[[nn.Module], Any] | None = None

    def fits(self, model: Any) -> bool:
        """Whether ``model`` has every callable this helper needs."""
        if model is None:
            return False
        if not self.needs:
            return callable(model)
        return all(callable(getattr(model, name, None)) for name in self.needs)


@dataclass(frozen=True)
class Method:
    """A registered counterfactual method (see the module docstring).

    Attributes:
        name: the ``method=`` of ``cfnb.explain``.
        run: ``run(problem, **options)`` -> ``MethodOutput``; its keyword-only parameters are the options.
        summary: one line.
        options: its settings, in the order a panel shows them.
        helpers: the helper models it takes.
        check_classifier: raises a clear error when the classifier lacks a structure the method needs (run before
            anything else).
        reference: the paper it follows.
    """

    name: str
    run: RunFunction
    summary: str
    options: tuple[Option, ...] = ()
    helpers: tuple[Helper, ...] = ()
    check_classifier: Callable[[nn.Module], object] | None = None
    reference: str = ""
    _by_name: dict[str, Option] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({option.name: option for option in self.options})
        if len(self._by_name) != len(self.options):
            raise ValueError(f"method {self.name!r} declares an option twice")
        parameters = inspect.signature(self.run).parameters
        taken = [n for n, p in parameters.items() if p.kind == p.KEYWORD_ONLY]
        if sorted(taken) != sorted(self._by_name):
            raise ValueError(f"method {self.name!r}: its function takes the keyword-only options {sorted(taken)} but "
                             f"the schema declares {sorted(self._by_name)}; make them the same")

    @property
    def option_names(self) -> list[str]:
        return [option.name for option in self.options]

    def option(self, name: str) -> Option:
        """The option called ``name``; ``KeyError`` if the method has none."""
        return self._by_name[name]

    def defaults(self) -> dict[str, Any]:
        """Every option's default."""
        return {option.name: option.default for option in self.options}

    def resolve(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults with ``options`` checked and applied.

        Raises:
            TypeError: an option this method does not have (the message lists its options), or of the wrong type.
            ValueError: a value outside its range.
        """
        unknown = sorted(set(options) - set(self._by_name))
        if unknown:
            raise TypeError(f"method={self.name!r} has no option(s) {unknown}; its options are: "
                            f"{', '.join(self.option_names) or 'none'}")
        return {**self.defaults(), **{name: self._by_name[name].check(value) for name, value in options.items()}}

    def helper(self, role: str) -> Helper | None:
        """The helper of this role, or None."""
        return next((h for h in self.helpers if h.role == role), None)

    def find_helpers(self, classifier: nn.Module, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` plus the helpers the method finds for itself (e.g. a shipped decoder) where none was given."""
        found = {role: model for role, model in given.items() if model is not None}
        for helper in self.helpers:
            if found.get(helper.role) is None and helper.find is not None:
                model = helper.find(classifier)
                if model is not None:
                    found[helper.role] = model
        return found

    def missing(self, classifier: nn.Module, given: Mapping[str, Any]) -> str | None:
        """Why the method cannot run with these helper models (None when it can); finds nothing it would load."""
        for helper in self.helpers:
            model = given.get(helper.role)
            if model is not None:
                if not helper.fits(model):
                    needs = ", ".join(a + "()" for a in helper.needs)
                    return f"{self.name!r} needs {helper.role}=... with {needs}"
                continue
            if helper.required and not (helper.find is not None and _can_find(helper.find, classifier)):
                needs = f" with {', '.join(a + '()' for a in helper.needs)}" if helper.needs else ""
                return f"{self.name!r} needs {helper.role}=...{needs} ({helper.help})"
        return None

    def check_helpers(self, classifier: nn.Module, helpers: Mapping[str, Any]) -> None:
        """Raise ``TypeError`` naming the first required helper that is missing or lacks a callable it needs."""
        for helper in self.helpers:
            model = helpers.get(helper.role)
            if model is None and not helper.required:
                continue
            if model is None:
                hint = f" ({helper.help})" if helper.help else ""
                raise TypeError(f"method={self.name!r} needs a {helper.role}; pass {helper.role}=...{hint}")
            if not helper.fits(model):
                raise TypeError(f"method={self.name!r} needs a {helper.role} with "
                                f"{', '.join(a + '()' for a in helper.needs)}; {type(model).__name__} lacks "
                                f"{', '.join(a for a in helper.needs if not callable(getattr(model, a, None)))}")


def _can_find(find: Callable[[nn.Module], Any], classifier: nn.Module) -> bool:
    available = getattr(find, "available", None)  # a finder may say so without loading anything
    if callable(available):
        return bool(available(classifier))
    return find(classifier) is not None


_REGISTRY: dict[str, Method] = {}


def register(name: str, *, summary: str, options: Sequence[Option] = (), helpers: Sequence[Helper] = (),
             check_classifier: Callable[[nn.Module], object] | None = None,
             reference: str = "") -> Callable[[RunFunction], RunFunction]:
    """Decorator: register ``run(problem, *, <options>)`` as method ``name`` (replacing one of that name).

    Example::

        @cfnb.methods.register("nudge", summary="...", options=[Option("strength", "float", 0.5, "...", low=0)])
        def nudge(problem, *, strength):
            ...
            return MethodOutput(counterfactual, trajectory, steps_used)
    """
    def wrap(run: RunFunction) -> RunFunction:
        _REGISTRY[name] = Method(name, run, summary, tuple(options), tuple(helpers), check_classifier, reference)
        return run

    return wrap


def unregister(name: str) -> None:
    """Remove method ``name`` from the registry (``KeyError`` if it is not there)."""
    del _REGISTRY[name]


def get(name: str) -> Method:
    """The method called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def available() -> list[Method]:
    """Every registered method, in registration order."""
    return list(_REGISTRY.values())


def names() -> list[str]:
    """The names of every registered method."""
    return list(_REGISTRY)


__all__ = ["Option", "Helper", "Method", "register", "unregister", "get", "available", "names", "Problem",
           "MethodOutput"]
