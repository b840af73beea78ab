"""The import report: what each ComfyUI node became, what could not be mapped (with its node pack), and
every warning, so the user sees at once what will run as in ComfyUI and what needs attention."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MappedNode:
    comfy_id: str
    class_type: str
    node_id: str
    node_type: str


@dataclass(frozen=True)
class Placeholder:
    """A node kept with its data but not runnable here: no mapping for its class type (or its pack)."""

    comfy_id: str
    class_type: str
    pack: str
    node_id: str
    reason: str


@dataclass(frozen=True)
class ReportWarning:
    message: str
    node: str = ""

    def __str__(self) -> str:
        return f"node {self.node}: {self.message}" if self.node else self.message


@dataclass
class ImportReport:
    """What an import did. ``format`` is "api", "ui-0.4" or "ui-1"; ``source`` names the file (or "")."""

    source: str = ""
    format: str = ""
    origin: str = ""  # where in the file the graph came from: "json", "png:prompt", "png:workflow", ...
    mapped: list[MappedNode] = field(default_factory=list)
    placeholders: list[Placeholder] = field(default_factory=list)
    warnings: list[ReportWarning] = field(default_factory=list)
    layout: list[str] = field(default_factory=list)  # notes, reroutes, groups and modes carried over

    def warn(self, message: str, node: str = "") -> None:
        self.warnings.append(ReportWarning(message, node))

    @property
    def ok(self) -> bool:
        """True when every node mapped (the graph can run once its files are found)."""
        return not self.placeholders

    @property
    def messages(self) -> list[str]:
        """The report as lines of text (the same as :meth:`lines`)."""
        return self.lines()

    def lines(self) -> list[str]:
        """The report as lines of text for a terminal."""
        what = f"{self.source}: " if self.source else ""
        kind = {"api": "API format", "ui-0.4": "UI format (schema 0.4)", "ui-1": "UI format (schema 1)"}.get(
            self.format, self.format or "ComfyUI"
        )
        origin = f", from the PNG's {self.origin.split(':', 1)[1]!r} text" if self.origin.startswith(("png:", "webp:")) else ""
        out = [f"{what}ComfyUI {kind}{origin}: {len(self.mapped)} node(s) mapped, {len(self.placeholders)} not mapped"]
        for p in self.placeholders:
            pack = f" from node pack {p.pack!r}" if p.pack and p.pack != "comfy-core" else (
                " (a ComfyUI core node)" if p.pack == "comfy-core" else ""
            )
            out.append(f"  not mapped: node {p.comfy_id} {p.class_type}{pack}: {p.reason}")
        out.extend(f"  note: {line}" for line in self.layout)
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "origin": self.origin,
            "mapped": [asdict(m) for m in self.mapped],
            "placeholders": [asdict(p) for p in self.placeholders],
            "warnings": [asdict(w) for w in self.warnings],
            "layout": list(self.layout),
        }
