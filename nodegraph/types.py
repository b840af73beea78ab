"""Socket types and the rule that decides which links are allowed.

A socket type is a name (``"IMAGE"``, ``"MODEL"``) plus a colour for the editor. Unions are written
``INT | FLOAT``. The rule (:func:`compatible`) is the only place that decides whether an output may feed
an input: the validator, the executor and the editor all call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SocketType:
    """A named data type flowing along links. ``members`` holds the alternatives of a union."""

    name: str
    color: tuple[int, int, int] = (160, 160, 160)
    description: str = ""
    members: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.members:
            object.__setattr__(self, "members", frozenset({self.name}))

    def __or__(self, other: SocketType) -> SocketType:
        members = self.members | other.members
        return SocketType(" | ".join(sorted(members)), members=members)

    @property
    def is_any(self) -> bool:
        return ANY_NAME in self.members

    def __str__(self) -> str:
        return self.name


ANY_NAME = "*"

# Promotions that are always safe: the value is converted when it crosses the link.
_PROMOTIONS = {("INT", "FLOAT")}


def compatible(source: SocketType, target: SocketType) -> bool:
    """True if a value of type ``source`` may feed an input of type ``target``.

    Exact names match; ``*`` (ANY) matches everything on either side; a union source is accepted only if
    every alternative is; an INT output may feed a FLOAT input.
    """
    if source.is_any or target.is_any:
        return True
    return all(
        member in target.members or any((member, t) in _PROMOTIONS for t in target.members)
        for member in source.members
    )


_REGISTRY: dict[str, SocketType] = {}


def define_type(name: str, color: tuple[int, int, int], description: str = "") -> SocketType:
    """Declare a socket type (built-in or from a plugin). Re-declaring the same name returns the first."""
    existing = _REGISTRY.get(name)
    if existing is not None:
        return existing
    socket_type = SocketType(name, color, description)
    _REGISTRY[name] = socket_type
    return socket_type


def type_named(name: str) -> SocketType:
    """The socket type with this name; unions are spelled ``"INT | FLOAT"``. Unknown names get a grey type."""
    parts = [p.strip() for p in name.split("|")]
    if len(parts) > 1:
        result = type_named(parts[0])
        for part in parts[1:]:
            result = result | type_named(part)
        return result
    return _REGISTRY.get(name) or SocketType(name)


def all_types() -> list[SocketType]:
    return list(_REGISTRY.values())


ANY = define_type(ANY_NAME, (200, 200, 200), "Accepts or produces any value.")
INT = define_type("INT", (90, 170, 230), "A whole number.")
FLOAT = define_type("FLOAT", (120, 200, 160), "A real number.")
STRING = define_type("STRING", (230, 190, 90), "Text.")
BOOLEAN = define_type("BOOLEAN", (200, 120, 200), "True or false.")
MODEL = define_type("MODEL", (180, 130, 230), "A denoising model (UNet or DiT) with its patches and guidance.")
CLIP = define_type("CLIP", (240, 220, 80), "Text encoder(s) and tokenizer(s).")
VAE = define_type("VAE", (240, 100, 100), "A variational autoencoder between pixels and latents.")
CONDITIONING = define_type("CONDITIONING", (240, 160, 60), "Encoded prompt plus extra conditions.")
LATENT = define_type("LATENT", (255, 130, 180), "A batch of latents.")
IMAGE = define_type("IMAGE", (100, 180, 240), "A batch of RGB images, values 0..1.")
MASK = define_type("MASK", (110, 200, 110), "A batch of single-channel masks, values 0..1.")
CONTROL_NET = define_type("CONTROL_NET", (60, 200, 180), "A ControlNet model.")
T2I_ADAPTER = define_type("T2I_ADAPTER", (60, 160, 200), "A T2I-Adapter model.")
LORA = define_type("LORA", (200, 200, 120), "A LoRA file's weights.")
