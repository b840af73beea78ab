"""Socket colours that a user can tell apart: every socket type gets a colour distinct from every other.

The built-in types have fixed colours close to the ones ComfyUI users know (MODEL lavender, CLIP yellow,
VAE red, CONDITIONING orange, LATENT pink, IMAGE blue, MASK green), chosen so that every pair differs by
at least :data:`MIN_DIFFERENCE` (CIE76 colour difference, where about 2 is just noticeable and 20 is
unmistakable) and each stands out against a node's dark body. A type from a plugin keeps its declared
colour when that is distinct enough; otherwise it gets the candidate colour farthest from all others.
Pure Python, no Qt.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable

MIN_DIFFERENCE = 20.0
MIN_CONTRAST = 3.0  # against the node body (WCAG contrast ratio; 3 is the minimum for graphics)
NODE_BODY = (13, 18, 23)

BUILTIN: dict[str, tuple[int, int, int]] = {
    "*": (225, 225, 225),
    "MODEL": (179, 157, 219),
    "CLIP": (255, 213, 0),
    "VAE": (255, 110, 110),
    "CONDITIONING": (255, 169, 49),
    "LATENT": (255, 156, 249),
    "IMAGE": (100, 181, 246),
    "MASK": (129, 199, 132),
    "CONTROL_NET": (0, 214, 214),
    "T2I_ADAPTER": (60, 120, 255),
    "LORA": (190, 140, 80),
    "INT": (40, 160, 130),
    "FLOAT": (200, 235, 120),
    "STRING": (255, 235, 180),
    "BOOLEAN": (200, 80, 160),
}


def _linear(channel: float) -> float:
    c = channel / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    r, g, b = (_linear(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def difference(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """CIE76 colour difference (Euclidean distance in L*a*b*)."""
    return math.dist(lab(a), lab(b))


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(rgb: tuple[int, int, int]) -> float:
        r, g, b = (_linear(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _candidates() -> list[tuple[int, int, int]]:
    found = []
    for step in range(36):
        for saturation, value in ((0.75, 1.0), (0.45, 0.95), (0.9, 0.8), (0.3, 0.8)):
            r, g, b = colorsys.hsv_to_rgb(step / 36, saturation, value)
            found.append((round(r * 255), round(g * 255), round(b * 255)))
    return [c for c in found if contrast(c, NODE_BODY) >= MIN_CONTRAST]


def assign_colors(declared: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
    """A colour for every built-in socket type and every type in ``declared`` (name -> the colour it asks for).

    Built-in types get :data:`BUILTIN`; the others are taken in name order, so the result does not depend on
    which plugin loaded first.
    """
    assigned = {name: color for name, color in BUILTIN.items()}
    pool = _candidates()
    for name in sorted(n for n in declared if n not in BUILTIN):
        wanted = tuple(int(c) for c in declared[name][:3])
        if _distinct(wanted, assigned.values()):
            assigned[name] = wanted  # type: ignore[assignment]
            continue
        assigned[name] = max(pool, key=lambda c: min((difference(c, other) for other in assigned.values()), default=0.0))
    return assigned


def _distinct(color: tuple[int, ...], others: Iterable[tuple[int, int, int]]) -> bool:
    if len(color) != 3 or contrast(color, NODE_BODY) < MIN_CONTRAST:  # type: ignore[arg-type]
        return False
    return all(difference(color, other) >= MIN_DIFFERENCE for other in others)  # type: ignore[arg-type]


_assigned: dict[str, tuple[int, int, int]] = dict(BUILTIN)


def refresh(declared: dict[str, tuple[int, int, int]]) -> None:
    """Recompute the colours for these declared types (at start-up and after a plugin reload)."""
    _assigned.clear()
    _assigned.update(assign_colors(declared))


def socket_color(type_name: str) -> tuple[int, int, int]:
    """The editor's colour for a socket type (a union takes its first member's)."""
    if type_name in _assigned:
        return _assigned[type_name]
    first = type_name.split("|")[0].strip()
    if first != type_name:
        return socket_color(first)
    from nodegraph.types import all_types

    refresh({t.name: t.color for t in all_types()} | {type_name: (160, 160, 160)})
    return _assigned[type_name]
