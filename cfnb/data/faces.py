"""Procedural faces: an offline stand-in for CelebA whose ground truth is known.

Every face is a function of its latent parameters: ``render_faces(params, size)`` draws a batch of faces with soft
signed-distance masks over a pixel grid, all in torch and all faces at once. Because the renderer is known,
``FaceDataset.with_attribute`` gives the *true* counterfactual of a face (the same face, one attribute changed), and
``correlations`` plants dependencies between attributes (or between an attribute and the background) to build
shortcut benchmarks with a known answer.

Parameters (``FaceDataset.params``, a dict of per-face tensors, all float32):

========================  ======  =====================================================================
key                       shape   meaning
========================  ======  =====================================================================
each name in ATTRIBUTES   (N,)    the attribute, 0 or 1 (CelebA's names; Blond_Hair and Black_Hair never both 1)
``background``            (N,)    background colour class: 0 cool (cyan to blue), 1 warm (red to orange)
``background_hue``        (N,)    in [0, 1): hue within the background class's range
``background_shade``      (N,)    in [0, 1]: brightness of the background
``center_x``/``center_y`` (N,)    face offset from the image centre, in half-image units (about +-0.08)
``scale``                 (N,)    face size factor (about 0.88 to 1.06)
``roll``                  (N,)    in-plane head tilt in radians (about +-0.12)
``yaw``                   (N,)    in [-1, 1]: sideways turn, shifts eyes, nose and mouth left or right
``aspect``                (N,)    face width factor (about 0.9 to 1.1)
``skin_tone``             (N,)    in [0, 1]: light to dark within the non-pale range (a small jitter when Pale_Skin)
``hair_shade``            (N,)    in [0, 1): picks the non-blond, non-black colour (brown, auburn, grey) and a jitter
``hat_hue``               (N,)    in [0, 1): hat colour (blue through purple to red; never yellow or black)
``shirt_hue``             (N,)    in [0, 1): shirt colour
``light``                 (N,)    in [-1, 1]: side lighting of the face
``eye_spacing``           (N,)    in [-1, 1]: identity detail, eye distance
``mouth_height``          (N,)    in [-1, 1]: identity detail, mouth position
========================  ======  =====================================================================

Nuisance factors are the parameters that are not attributes; ``FaceDataset.nuisance`` exposes them, with
``nuisance["background"]`` the (N,) int64 background class (the one that ``correlations`` may tie to an attribute).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from .base import AttributeDataset, announce

ATTRIBUTES: tuple[str, ...] = (
    "Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Blond_Hair", "Black_Hair", "Bangs", "Male", "Mustache",
    "Wearing_Hat", "Pale_Skin", "Rosy_Cheeks",
)
"""Attribute names, in column order of ``FaceDataset.attributes`` (CelebA's spelling)."""

ATTRIBUTE_RATES: dict[str, float] = {
    "Smiling": 0.5, "Mouth_Slightly_Open": 0.5, "Eyeglasses": 0.5, "Bangs": 0.4, "Male": 0.5, "Mustache": 0.3,
    "Wearing_Hat": 0.3, "Pale_Skin": 0.3, "Rosy_Cheeks": 0.3,
}
"""Probability of each independent attribute; hair is blond, black or other with probability 1/3 each."""

NUISANCE_FACTORS: tuple[str, ...] = ("background",)
"""Binary nuisance factors that ``correlations`` may name beside the attributes."""

CONTINUOUS_PARAMS: tuple[str, ...] = (
    "background_hue", "background_shade", "center_x", "center_y", "scale", "roll", "yaw", "aspect", "skin_tone",
    "hair_shade", "hat_hue", "shirt_hue", "light", "eye_spacing", "mouth_height",
)
PARAM_NAMES: tuple[str, ...] = ATTRIBUTES + NUISANCE_FACTORS + CONTINUOUS_PARAMS
"""Every key ``render_faces`` reads from ``params``."""

_HAIR = ("Blond_Hair", "Black_Hair")
_CHUNK = 500


class FaceDataset(AttributeDataset):
    """Procedural faces with their latent parameters, so that any face can be re-rendered with changes.

    Attributes:
        images: (N, 3, size, size) float32 in [0, 1].
        attributes: (N, K) float32 0/1, columns in ``attribute_names`` (= ``ATTRIBUTES``).
        params: dict of (N,) float32 tensors, the renderer's input (see the module docstring).
        size: image side in pixels.
        seed: the seed that drew the parameters.
        correlations: the planted dependencies, as passed to ``synth_faces``.
    """

    def __init__(self, params: dict[str, torch.Tensor], size: int, seed: int | None = None,
                 correlations: Mapping[tuple[str, str], float] | None = None, images: torch.Tensor | None = None):
        _check_params(params)
        self.params = {k: v.float().contiguous() for k, v in params.items()}
        self.size = int(size)
        self.seed = seed
        self.correlations = dict(correlations or {})
        if images is None:
            images = render_faces(self.params, self.size)
        attributes = torch.stack([self.params[name] for name in ATTRIBUTES], dim=1)
        super().__init__(images, attributes, ATTRIBUTES, source=f"synthetic faces (seed={seed})")

    @property
    def nuisance(self) -> dict[str, torch.Tensor]:
        """Nuisance factors by name: ``background`` as (N,) int64 classes, the continuous ones as (N,) floats."""
        factors = {"background": self.params["background"].long()}
        factors.update({name: self.params[name] for name in CONTINUOUS_PARAMS})
        return factors

    def subset_params(self, index: torch.Tensor | Sequence[int] | slice | None = None) -> dict[str, torch.Tensor]:
        """A copy of the parameters of the faces at ``index`` (all faces for ``None``)."""
        if index is None:
            return {k: v.clone() for k, v in self.params.items()}
        if isinstance(index, slice):
            return {k: v[index].clone() for k, v in self.params.items()}
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        if len(index) and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} faces")
        return {k: v[index].clone() for k, v in self.params.items()}

    def with_attribute(self, name: str, value: int | float | bool | torch.Tensor,
                       index: torch.Tensor | Sequence[int] | slice | None = None) -> torch.Tensor:
        """Re-render faces with one attribute set: the ground-truth counterfactual.

        Everything else about each face stays as it was, except that setting ``Blond_Hair`` or ``Black_Hair`` to 1
        sets the other to 0 (hair has one colour). Setting one of them to 0 gives the face its "other" hair colour
        (brown, auburn or grey, fixed by its ``hair_shade``).

        Args:
            name: an attribute in ``ATTRIBUTES``.
            value: 0 or 1 for every face, or a tensor of one 0/1 value per selected face.
            index: which faces (default all).

        Returns:
            (M, 3, size, size) images of the selected faces.

        Raises:
            KeyError: unknown attribute name.
            ValueError: a value other than 0 or 1, or one of the wrong length.
        """
        params = self.subset_params(index)
        return render_faces(set_attribute(params, name, value), self.size)

    def with_nuisance(self, name: str, value: float | torch.Tensor,
                      index: torch.Tensor | Sequence[int] | slice | None = None) -> torch.Tensor:
        """Re-render faces with one nuisance factor (``background`` or a continuous parameter) set to ``value``."""
        if name not in NUISANCE_FACTORS + CONTINUOUS_PARAMS:
            raise KeyError(f"unknown nuisance factor {name!r}; "
                           f"known: {', '.join(NUISANCE_FACTORS + CONTINUOUS_PARAMS)}")
        params = self.subset_params(index)
        n = len(params["Male"])
        value = torch.as_tensor(value, dtype=torch.float32)
        if value.ndim and value.shape != (n,):
            raise ValueError(f"value must be a number or one per selected face ({n}), got shape {tuple(value.shape)}")
        if name == "background" and not bool(((value == 0) | (value == 1)).all()):
            raise ValueError("background is a class: use 0 (cool) or 1 (warm)")
        params[name] = value.expand(n).clone()
        return render_faces(params, self.size)


def set_attribute(params: dict[str, torch.Tensor], name: str,
                  value: int | float | bool | torch.Tensor) -> dict[str, torch.Tensor]:
    """Return a copy of ``params`` with attribute ``name`` set to ``value`` (keeping hair colours exclusive).

    Raises:
        KeyError: unknown attribute name.
        ValueError: a value other than 0 or 1, or one of the wrong length.
    """
    if name not in ATTRIBUTES:
        raise KeyError(f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
    n = len(params[name])
    value = torch.as_tensor(value, dtype=torch.float32)
    if value.ndim and value.shape != (n,):
        raise ValueError(f"value must be 0/1 or one 0/1 value per selected face ({n}), got shape {tuple(value.shape)}")
    if not bool(((value == 0) | (value == 1)).all()):
        raise ValueError(f"attribute values must be 0 or 1, got {value.unique().tolist()}")
    out = dict(params)
    out[name] = value.expand(n).clone()
    if name in _HAIR:
        other = _HAIR[1 - _HAIR.index(name)]
        out[other] = torch.where(out[name] == 1, torch.zeros(n), params[other])
    return out


# ----------------------------------------------------------------------------------------------------------------
# Sampling


def _validate_correlations(correlations: Mapping[tuple[str, str], float] | None) -> list[tuple[str, str, float]]:
    if correlations is None:
        return []
    if not isinstance(correlations, Mapping):
        raise TypeError("correlations must be a dict like {('Smiling', 'Blond_Hair'): 0.9}")
    known = ATTRIBUTES + NUISANCE_FACTORS
    pairs = []
    for key, p in correlations.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"correlation key {key!r} must be a pair (source, target), e.g. ('Smiling', 'Blond_Hair')")
        for name in key:
            if name not in known:
                raise ValueError(
                    f"unknown name {name!r} in correlations; use attributes {', '.join(ATTRIBUTES)} or nuisance "
                    f"factors {', '.join(NUISANCE_FACTORS)}"
                )
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"correlation {key!r}: probability {p!r} is outside [0, 1]; "
                             f"pass P(target == source) in [0, 1]")
        if key[0] == key[1] or {key[0], key[1]} == set(_HAIR):
            raise ValueError(f"correlation {key!r} ties a variable to itself "
                             f"(Blond_Hair and Black_Hair are one hair colour)")
        pairs.append((key[0], key[1], float(p)))
    # Blond_Hair and Black_Hair are one node ("hair"): each node may be the target of one pair only, and no cycles.
    node = lambda name: "hair" if name in _HAIR else name
    targets = [node(t) for _, t, _ in pairs]
    for t in set(targets):
        if targets.count(t) > 1:
            raise ValueError(f"{t!r} is the target of more than one correlation; give each target a single source")
    ordered, remaining = [], list(pairs)
    while remaining:
        ready = [pr for pr in remaining if node(pr[0]) not in {node(t) for _, t, _ in remaining}]
        if not ready:
            raise ValueError(f"correlations form a cycle: {[(s, t) for s, t, _ in remaining]}; remove one pair")
        ordered.extend(ready)
        remaining = [pr for pr in remaining if pr not in ready]
    return ordered


def sample_face_params(n: int, seed: int = 0,
                       correlations: Mapping[tuple[str, str], float] | None = None) -> dict[str, torch.Tensor]:
    """Draw the latent parameters of ``n`` faces (deterministic for a seed).

    See ``synth_faces`` for ``correlations``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int (number of faces), got {n!r}")
    pairs = _validate_correlations(correlations)
    g = torch.Generator().manual_seed(int(seed))
    u = lambda: torch.rand(n, generator=g)
    params: dict[str, torch.Tensor] = {}
    for name in ATTRIBUTES:
        if name not in _HAIR:
            params[name] = (u() < ATTRIBUTE_RATES[name]).float()
    hair = torch.randint(0, 3, (n,), generator=g)  # 0 other, 1 blond, 2 black
    params["Blond_Hair"] = (hair == 1).float()
    params["Black_Hair"] = (hair == 2).float()
    params["background"] = (u() < 0.5).float()
    spread = lambda scale: (u() * 2 - 1) * scale
    params.update(
        background_hue=u(), background_shade=u(), center_x=spread(0.08), center_y=spread(0.06),
        scale=0.88 + 0.18 * u(), roll=spread(0.12), yaw=spread(1.0), aspect=0.9 + 0.2 * u(), skin_tone=u(),
        hair_shade=u(), hat_hue=u(), shirt_hue=u(), light=spread(1.0), eye_spacing=spread(1.0),
        mouth_height=spread(1.0),
    )
    for source, target, p in pairs:
        keep = u() < p
        value = torch.where(keep, params[source], 1 - params[source])
        if target in _HAIR:
            other = _HAIR[1 - _HAIR.index(target)]
            coin = (u() < 0.5).float()  # a non-target hair colour is the other one or "other" hair, 50/50
            params[target] = value
            params[other] = torch.where(value == 1, torch.zeros(n), coin)
        else:
            params[target] = value
    return {name: params[name].float() for name in PARAM_NAMES}


def synth_faces(n: int, seed: int = 0, correlations: Mapping[tuple[str, str], float] | None = None,
                size: int = 64) -> FaceDataset:
    """Draw and render ``n`` procedural faces.

    Args:
        n: number of faces (> 0).
        seed: seed of every random choice; the same seed gives the same faces.
        correlations: planted dependencies ``{(source, target): p}``: ``target`` is redrawn to equal ``source`` with
            probability ``p`` and to be its opposite otherwise, so ``p=1`` copies, ``p=0`` reverses and ``p=0.5``
            leaves them independent. Names are attributes (``ATTRIBUTES``) or the nuisance factor ``"background"``
            (0 cool / 1 warm). Example: ``{("Smiling", "Blond_Hair"): 0.9, ("Male", "background"): 0.8}``. With a
            source of rate 0.5 the target's rate stays 0.5. When the target is ``Blond_Hair`` (or ``Black_Hair``),
            a face that is not blond (not black-haired) gets black (blond) or "other" hair with probability 1/2 each.
            Each target may have one source; pairs are applied sources first, and cycles are refused.
        size: image side in pixels (>= 16).

    Returns:
        A ``FaceDataset``; ``dataset.params`` holds the latent parameters and ``dataset.with_attribute`` re-renders.

    Raises:
        ValueError: ``n <= 0``, ``size < 16``, a probability outside [0, 1], an unknown name, or an ill-formed
            correlation (two sources for one target, a cycle).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    params = sample_face_params(n, seed, correlations)
    dataset = FaceDataset(params, size, seed=seed, correlations=correlations)
    announce(f"synthetic faces: {n} rendered at {size}x{size} (seed={seed}, correlations={dict(correlations or {})})")
    return dataset


def _check_params(params: Mapping[str, torch.Tensor]) -> int:
    if not isinstance(params, Mapping):
        raise TypeError("params must be a dict of per-face tensors (see cfnb.data.faces.PARAM_NAMES)")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(missing)}; draw them with sample_face_params(n, seed)")
    n = len(params["Male"])
    bad = [k for k in PARAM_NAMES if torch.as_tensor(params[k]).shape != (n,)]
    if bad:
        raise ValueError(f"params {', '.join(bad)} must each have shape ({n},)")
    both = (torch.as_tensor(params["Blond_Hair"]) > 0.5) & (torch.as_tensor(params["Black_Hair"]) > 0.5)
    if bool(both.any()):
        raise ValueError("Blond_Hair and Black_Hair are both 1 for some faces; hair has one colour")
    return n


# ----------------------------------------------------------------------------------------------------------------
# Rendering


def _hsv(h: torch.Tensor, s: torch.Tensor | float, v: torch.Tensor | float) -> torch.Tensor:
    """(N,) hue, saturation, value in [0, 1] -> (N, 3) RGB."""
    h = h[:, None] % 1.0
    k = (torch.tensor([5.0, 3.0, 1.0]) + h * 6) % 6
    s = torch.as_tensor(s, dtype=torch.float32).reshape(-1, 1)
    v = torch.as_tensor(v, dtype=torch.float32).reshape(-1, 1)
    return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _lerp(a: Sequence[float], b: Sequence[float], t: torch.Tensor) -> torch.Tensor:
    start, end = torch.tensor(a), torch.tensor(b)
    return start + (end - start) * t[:, None]


def _colours(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-face RGB colours (N, 3) derived from the parameters."""
    shade = p["hair_shade"]
    third = torch.floor(shade * 3).clamp(max=2).long()
    jitter = (shade * 3 - third)[:, None] - 0.5
    others = torch.tensor([[0.42, 0.26, 0.13], [0.62, 0.25, 0.10], [0.62, 0.62, 0.64]])
    other = others[third] + 0.08 * jitter
    blond = torch.tensor([0.93, 0.79, 0.38]) + 0.10 * (shade[:, None] - 0.5)
    black = torch.tensor([0.07, 0.06, 0.06]) + 0.06 * shade[:, None]
    hair = torch.where(p["Blond_Hair"][:, None] > 0.5, blond, torch.where(p["Black_Hair"][:, None] > 0.5, black, other))
    skin_other = _lerp((0.88, 0.68, 0.53), (0.44, 0.29, 0.19), p["skin_tone"])
    skin_pale = torch.tensor([0.98, 0.91, 0.86]) - 0.03 * p["skin_tone"][:, None]
    skin = torch.where(p["Pale_Skin"][:, None] > 0.5, skin_pale, skin_other)
    bg_hue = torch.where(p["background"] > 0.5, -0.02 + 0.12 * p["background_hue"], 0.47 + 0.20 * p["background_hue"])
    background = _hsv(bg_hue, 0.5, 0.55 + 0.35 * p["background_shade"])
    hat = _hsv(0.55 + 0.5 * p["hat_hue"], 0.75, 0.65)
    shirt = _hsv(p["shirt_hue"], 0.45, 0.45 + 0.3 * p["shirt_hue"])
    return {"hair": hair.clamp(0, 1), "skin": skin, "background": background, "hat": hat, "shirt": shirt}


def _col(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None]


def _map(v) -> torch.Tensor:
    """A number, an (N,) tensor or an (N, 1, 1) tensor, as something that broadcasts against (N, H, W) maps."""
    v = torch.as_tensor(v, dtype=torch.float32)
    return v[:, None, None] if v.ndim == 1 else v


def _ellipse(x: torch.Tensor, y: torch.Tensor, a, b) -> torch.Tensor:
    """Approximate signed distance to an axis-aligned ellipse with radii a, b (negative inside)."""
    a, b = _map(a), _map(b)
    xa, yb = x / a, y / b
    return (torch.sqrt(xa * xa + yb * yb) - 1) * torch.minimum(a, b)


def _box(x: torch.Tensor, y: torch.Tensor, hx, hy, radius: float = 0.0) -> torch.Tensor:
    """Signed distance to a rounded box centred at the origin with half sizes hx, hy."""
    hx, hy = _map(hx), _map(hy)
    qx, qy = x.abs() - hx + radius, y.abs() - hy + radius
    ox, oy = qx.clamp(min=0), qy.clamp(min=0)
    outside = torch.sqrt(ox * ox + oy * oy)
    return outside + torch.minimum(torch.maximum(qx, qy), torch.zeros(())) - radius


def _curve(x: torch.Tensor, y: torch.Tensor, half_width, rise) -> torch.Tensor:
    """Distance to the arc y = -rise * (x / half_width)^2 for |x| <= half_width (corners up for rise > 0)."""
    w, r = _map(half_width), _map(rise)
    xc = torch.maximum(torch.minimum(x, w), -w)
    t = xc / w
    yc = -r * t * t
    slope = (-2 * r / w) * t
    dy = (y - yc) * torch.rsqrt(1 + slope * slope)
    dx = (x.abs() - w).clamp(min=0)
    return torch.sqrt(dx * dx + dy * dy)


def _paint(image: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor) -> None:
    """Alpha-blend per-face ``colour`` (N, 3) into ``image`` (N, 3, H, W) where ``mask`` (N, H, W) is 1."""
    image.lerp_(colour[:, :, None, None], mask[:, None])


def _paint_map(image: torch.Tensor, mask: torch.Tensor, colour_map: torch.Tensor) -> None:
    image.lerp_(colour_map, mask[:, None])


def render_faces(params: Mapping[str, torch.Tensor], size: int = 64) -> torch.Tensor:
    """Draw faces from their latent parameters, all at once (vectorised over faces and pixels).

    Args:
        params: dict of (N,) tensors with every key in ``PARAM_NAMES`` (see the module docstring); attribute
            entries are 0/1.
        size: image side in pixels (>= 16).

    Returns:
        (N, 3, size, size) float32 images in [0, 1]; the same parameters always give the same images.

    Raises:
        ValueError: missing keys, wrong shapes, both hair colours set, or a bad size.
    """
    return render_in_chunks(params, size, draw_faces)


def render_in_chunks(params: Mapping[str, torch.Tensor], size: int,
                     draw: Callable[[dict[str, torch.Tensor], int], torch.Tensor]) -> torch.Tensor:
    """``render_faces`` with its drawing function ``draw(chunk, size)`` (``draw_faces`` or a compiled copy of it)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    n = _check_params(params)
    p = {k: torch.as_tensor(params[k], dtype=torch.float32).cpu() for k in PARAM_NAMES}
    out = torch.empty(n, 3, size, size)
    with torch.no_grad():
        for start in range(0, n, _CHUNK):
            chunk = {k: v[start:start + _CHUNK] for k, v in p.items()}
            out[start:start + _CHUNK] = draw(chunk, size)
    return out.clamp_(0, 1)


def draw_faces(p: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Draw one chunk of faces from checked float32 CPU parameters (the work ``render_faces`` does per chunk)."""
    n = len(p["Male"])
    c = _colours(p)
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v_img, u_img = grid[:, None].expand(size, size), grid[None, :].expand(size, size)
    unit = 0.68 * p["scale"]  # image half-units per face unit
    cos, sin = torch.cos(p["roll"]), torch.sin(p["roll"])
    du = u_img[None] - _col(p["center_x"])
    dv = v_img[None] - _col(p["center_y"] - 0.04)
    x = (_col(cos) * du + _col(sin) * dv) / _col(unit)
    y = (-_col(sin) * du + _col(cos) * dv) / _col(unit)
    tau = _col(1.0 / size / unit)  # half a pixel, in face units: the softness of every edge
    sharpness = -1 / tau
    soft = lambda d: torch.sigmoid(d * sharpness)

    male = _col(p["Male"])
    a = 0.60 * p["aspect"] * (1 + 0.06 * p["Male"])  # face half-width
    b = torch.full((n,), 0.80)  # face half-height
    image = c["background"][:, :, None, None] * (1.0 + 0.12 * v_img)[None, None]
    image = image.expand(n, 3, size, size).contiguous()

    # shoulders and neck
    _paint(image, soft(_ellipse(x, y - 1.95, 1.3, 0.85)), c["shirt"])
    # long hair behind the head (not Male)
    long_hair = soft(torch.maximum(_ellipse(x, y - 0.22, a + 0.30, 1.12), y - 1.25)) * (1 - male)
    _paint(image, long_hair, c["hair"] * 0.88)
    _paint(image, soft(_box(x, y - 0.95, 0.2, 0.35)), c["skin"] * 0.85)
    # face: an ellipse; for Male a squarer, wider jaw (superellipse exponent 3 in the lower half)
    ax, bx = _col(a), _col(b)
    xn, yn = (x / ax).abs(), (y / bx).abs()
    round_r = torch.sqrt(xn * xn + yn * yn)
    square_r = (xn * xn * xn + yn * yn * yn).pow(1 / 3)
    r = torch.where((y > 0) & (male > 0.5), square_r, round_r)
    face = soft((r - 1) * ax)
    shade = (1 + 0.10 * _col(p["light"]) * x.clamp(-1, 1))[:, None]
    _paint_map(image, face, c["skin"][:, :, None, None] * shade)

    # hair on the head: a cap above a hairline that dips at the temples; Male: shorter and with sideburns
    hairline = (-0.40 - 0.04 * male) + (0.40 + 0.06 * male) * xn * xn
    cap_region = _ellipse(x, y + 0.03, a + 0.07 - 0.02 * p["Male"], b + 0.10 - 0.03 * p["Male"])
    cap = soft(torch.maximum(cap_region, y - hairline))
    sideburn = soft(torch.maximum(torch.maximum(cap_region, ax - 0.16 - x.abs()), y - 0.10)) * male
    _paint(image, torch.maximum(cap, sideburn), c["hair"])
    # bangs: a fringe over the forehead with a jagged lower edge
    edge = -0.22 + 0.035 * torch.sin(x * 28)
    fringe = torch.maximum(torch.maximum(cap_region, y - edge), -0.62 - y)
    _paint(image, soft(fringe) * _col(p["Bangs"]), c["hair"] * 0.95)

    # inner features move with yaw
    fx = x - _col(0.07 * p["yaw"])
    spacing = _col(0.22 + 0.02 * p["eye_spacing"])
    eye_y = y + 0.05
    ex = fx.abs() - spacing  # both eyes at once (mirror symmetry)
    _paint(image, soft(_ellipse(ex, eye_y, 0.085, 0.05)), torch.full((n, 3), 0.96))
    eye_r = torch.sqrt(ex * ex + eye_y * eye_y)
    _paint(image, soft(eye_r - 0.036), torch.tensor([0.18, 0.12, 0.10]).expand(n, 3))
    # nose
    _paint(image, soft(_ellipse(fx, y - 0.12, 0.045, 0.08)) * 0.5, c["skin"] * 0.78)
    # rosy cheeks
    cx_, cy_ = fx.abs() - 0.34, y - 0.2
    cheeks = torch.sigmoid((torch.sqrt(cx_ * cx_ + cy_ * cy_) - 0.10) * (sharpness / 3))
    _paint(image, cheeks * 0.6 * _col(p["Rosy_Cheeks"]), torch.tensor([0.92, 0.30, 0.38]).expand(n, 3))

    # mouth: a line whose corners rise when Smiling; a dark opening below it when Mouth_Slightly_Open
    smiling, opened = p["Smiling"], p["Mouth_Slightly_Open"]
    mx, my = fx, y - _col(0.47 + 0.03 * p["mouth_height"])
    half = 0.16 + 0.05 * smiling
    rise = 0.15 * smiling
    wx, rx = _col(half), _col(rise)
    xc = torch.maximum(torch.minimum(mx, wx), -wx)
    t2 = (xc / wx) ** 2
    upper = -rx * t2
    depth = 0.14 * (1 - t2)
    inside = torch.maximum(torch.maximum(upper - my, my - upper - depth), mx.abs() - wx)
    _paint(image, soft(inside) * _col(opened), torch.tensor([0.28, 0.05, 0.07]).expand(n, 3))
    lip = torch.tensor([0.70, 0.24, 0.26]).expand(n, 3)
    _paint(image, soft(_curve(mx, my, half, rise) - 0.032), lip)
    lower = _curve(mx, my - _col(0.14 * opened) * (1 - t2), half, rise) - 0.028
    _paint(image, soft(lower) * _col(opened), lip)
    # mustache: a tapered band between nose and mouth, darker than the hair
    tx2 = (fx / 0.19).clamp(-1, 1) ** 2
    thick = 0.05 * torch.sqrt(1 - tx2) + 0.008
    band = torch.maximum((y - 0.27 - 0.05 * tx2).abs() - thick, fx.abs() - 0.19)
    _paint(image, soft(band) * _col(p["Mustache"]), c["hair"] * 0.45 + 0.03)

    # eyeglasses: two rings, a bridge and the arms to the sides of the face
    frame = torch.tensor([0.08, 0.08, 0.10]).expand(n, 3)
    ring = (eye_r - 0.13).abs() - 0.024
    bridge = _box(fx, eye_y, spacing - 0.13, 0.018)
    arm = torch.maximum(_box(fx, eye_y + 0.02, ax, 0.018), spacing + 0.13 - fx.abs())
    glasses = soft(torch.minimum(torch.minimum(ring, bridge), arm)) * _col(p["Eyeglasses"])
    _paint(image, glasses, frame)

    # hat: a crown over the top of the head and a brim just above the forehead
    crown = _box(x, y + 0.86, ax * 0.95, torch.full((n,), 0.36), radius=0.18)
    brim = _box(x, y + 0.52, ax + 0.20, torch.full((n,), 0.06), radius=0.04)
    hat = _col(p["Wearing_Hat"])
    _paint(image, soft(crown) * hat, c["hat"])
    _paint(image, soft(brim) * hat, c["hat"] * 0.75)
    return image
