"""Parameter kinds: the values a user sets on a node (numbers, text, choices, seeds, model files).

Each kind knows its default, its bounds and its help text, and checks and coerces a value. The editor
builds its widgets from :meth:`Param.schema`, the validator calls :meth:`Param.check`, and the CLI's
``--set`` goes through :meth:`Param.parse_text`. A parameter may also be driven by a link from another
node's output of a compatible type (:attr:`Param.socket_type`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from nodegraph.types import BOOLEAN, FLOAT, INT, STRING, SocketType


class ParamError(ValueError):
    """A value does not fit its parameter. ``expected`` and ``found`` are short human phrases."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"expected {expected}, found {found}")
        self.expected = expected
        self.found = found


def describe(value: Any) -> str:
    """A short description of a value for error messages (never raises, whatever the value)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"int of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > 60:
        value = value[:57]
        return f"str {json.dumps(value)}..."
    try:
        text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
    except Exception:  # a broken __repr__
        text = "(not printable)"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


@dataclass(frozen=True)
class Param:
    """Base of all parameter kinds."""

    name: str
    default: Any = None
    help: str = ""
    label: str = ""

    kind: ClassVar[str] = "param"
    socket_type: ClassVar[SocketType] = STRING

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to this kind, or raise :class:`ParamError`."""
        raise NotImplementedError

    def parse_text(self, text: str) -> Any:
        """Parse a value typed on a command line, then check it."""
        return self.check(text)

    def schema(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "type": self.socket_type.name,
            "default": self.default,
            "label": self.label or self.name.replace("_", " "),
            "help": self.help,
        }
        data.update(self._extra_schema())
        return data

    def _extra_schema(self) -> dict[str, Any]:
        return {}


# Whole numbers without declared bounds still fit a signed 64-bit integer: what torch, numpy and float() take
# (a 400-digit number would pass validation and then overflow deep inside a node).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Int(Param):
    default: int = 0
    min: int | None = None
    max: int | None = None
    step: int = 1

    kind: ClassVar[str] = "int"
    socket_type: ClassVar[SocketType] = INT

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError("an integer", describe(value))
        if isinstance(value, float):
            if not value.is_integer():
                raise ParamError("an integer", describe(value))
            value = int(value)
        _check_bounds(value, INT_MIN if self.min is None else self.min, INT_MAX if self.max is None else self.max)
        return value

    def parse_text(self, text: str) -> int:
        try:
            return self.check(int(text.strip()))
        except ValueError as exc:
            if isinstance(exc, ParamError):
                raise
            raise ParamError("an integer", describe(text)) from None

    def _extra_schema(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "step": self.step}


@dataclass(frozen=True)
class Float(Param):
    default: float = 0.0
    min: float | None = None
    max: float | None = None
    step: float = 0.01
    slider: bool = False

    kind: ClassVar[str] = "float"
    socket_type: ClassVar[SocketType] = FLOAT

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError("a number", describe(value))
        value = float(value)
        if not math.isfinite(value):
            raise ParamError("a finite number", describe(value))
        _check_bounds(value, self.min, self.max)
        return value

    def parse_text(self, text: str) -> float:
        try:
            number = float(text.strip())
        except ValueError:
            raise ParamError("a number", describe(text)) from None
        return self.check(number)

    def _extra_schema(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "step": self.step, "slider": self.slider}


@dataclass(frozen=True)
class String(Param):
    default: str = ""
    multiline: bool = False
    placeholder: str = ""

    kind: ClassVar[str] = "string"
    socket_type: ClassVar[SocketType] = STRING

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ParamError("text", describe(value))
        return value

    def _extra_schema(self) -> dict[str, Any]:
        return {"multiline": self.multiline, "placeholder": self.placeholder}


@dataclass(frozen=True)
class Text(String):
    """Multiline text, such as a prompt."""

    multiline: bool = True
    kind: ClassVar[str] = "text"


@dataclass(frozen=True)
class Bool(Param):
    default: bool = False

    kind: ClassVar[str] = "bool"
    socket_type: ClassVar[SocketType] = BOOLEAN

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ParamError("true or false", describe(value))
        return value

    def parse_text(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ParamError("true or false", describe(text))


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple[str, ...] = ()

    kind: ClassVar[str] = "choice"
    socket_type: ClassVar[SocketType] = STRING

    def __post_init__(self) -> None:
        if self.default is None and self.choices:
            object.__setattr__(self, "default", self.choices[0])

    def check(self, value: Any) -> str:
        if value not in self.choices:
            raise ParamError("one of " + ", ".join(self.choices), describe(value))
        return value

    def _extra_schema(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


SEED_MAX = 2**64 - 1


@dataclass(frozen=True)
class Seed(Int):
    """A random seed; the editor offers a randomise button."""

    default: int = 0
    min: int | None = 0
    max: int | None = SEED_MAX

    kind: ClassVar[str] = "seed"


@dataclass(frozen=True)
class ModelFile(Param):
    """A file chosen from a model folder (``checkpoints``, ``loras``, ...), stored by its relative name.

    The cache fingerprints it by resolved path, size and modification time, so replacing the file on disk
    invalidates whatever was computed from it.
    """

    default: str = ""
    folder: str = "checkpoints"
    extensions: tuple[str, ...] = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
    allow_directories: bool = False

    kind: ClassVar[str] = "model_file"
    socket_type: ClassVar[SocketType] = STRING

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ParamError(f"a file name from the {self.folder} folder", describe(value))
        return value

    def _extra_schema(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "extensions": list(self.extensions),
            "allow_directories": self.allow_directories,
        }


@dataclass(frozen=True)
class ImageFile(Param):
    """A path to an image file chosen by the user; fingerprinted by content."""

    default: str = ""
    kind: ClassVar[str] = "image_file"
    socket_type: ClassVar[SocketType] = STRING

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ParamError("an image file path", describe(value))
        return value


def _check_bounds(value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise ParamError(f"at least {low}", describe(value))
    if high is not None and value > high:
        raise ParamError(f"at most {high}", describe(value))


PARAM_KINDS: dict[str, type[Param]] = {
    cls.kind: cls for cls in (Int, Float, String, Text, Bool, Choice, Seed, ModelFile, ImageFile)
}

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "PARAM_KINDS",
    "SEED_MAX",
    "Bool",
    "Choice",
    "Float",
    "ImageFile",
    "Int",
    "ModelFile",
    "Param",
    "ParamError",
    "Seed",
    "String",
    "Text",
    "describe",
]
