"""How large the editor draws a node, told without Qt: for code that places nodes without a display (an import
spreading ComfyUI's layout apart, auto layout in a script). The editor itself measures its real node items.

The figures were measured on the editor's node items (offscreen, default font): a title bar and one row per
port, then one field per parameter (a multi-line text box is about twice a one-line field, a check box half),
the image box of nodes that show images, the text box of output nodes that show text. Estimates err on the
large side so that nodes placed by them never overlap in the editor.

Also here, because the editor and the engine must agree on them: which nodes reserve an image box or a text
box (:func:`wants_image_box`, :func:`wants_text_box`), and :func:`overlapping_pairs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodegraph.params import Bool, Text
from nodegraph.types import IMAGE, LATENT, MODEL, STRING

Size = tuple[float, float]
Rect = tuple[float, float, float, float]  # x, y, width, height

MIN_WIDTH = 212.0  # the editor's nodes are 196 pixels wide or more (a long field label widens them a little)
IMAGE_WIDTH = 212.0  # nodes with an image box (208)
TITLE_CHAR = 10.0  # pixels per character of the title, rounded up from the default title font
TITLE = 44.0  # title bar and the padding under the last field
ROW = 24.0  # one port row
FIELD = 44.0  # a one-line field (number, choice, file name) with its label
TEXT_FIELD = 88.0  # a multi-line text box
BOOL_FIELD = 24.0  # a check box
IMAGE_BOX = 256.0
TEXT_BOX = 56.0
SMALL = {"core.Reroute": (44.0, 26.0)}  # drawn as a dot, not a node
NOTE = (MIN_WIDTH, 154.0)

# Node types that show images in the node besides output nodes with an IMAGE input (a sampler's live
# preview, a loaded image): extend this set to reserve an image box for another type.
IMAGE_BOX_TYPES: set[str] = {"core.LoadImage"}


def wants_image_box(definition: Any) -> bool:
    """Output nodes that receive images (Save, Preview), samplers (a MODEL in, a LATENT out: their live preview)
    and the types listed in :data:`IMAGE_BOX_TYPES`."""
    receives = any(i.type.name == IMAGE.name for i in definition.inputs)
    samples = (any(i.type.name == MODEL.name for i in definition.inputs)
               and any(o.type.name == LATENT.name for o in definition.outputs))
    return definition.id in IMAGE_BOX_TYPES or (definition.output_node and receives) or samples


def wants_text_box(definition: Any) -> bool:
    """Output nodes whose results include text (Show Value, the paths Save Image wrote)."""
    return definition.output_node and any(o.type.name == STRING.name for o in definition.outputs)


def _field_height(param: Any) -> float:
    if isinstance(param, Text):
        return TEXT_FIELD
    return BOOL_FIELD if isinstance(param, Bool) else FIELD


def estimated_size(graph: Any, registry: Any, node_id: str) -> Size:
    """The size the editor gives node ``node_id`` of ``graph`` (its resize grip's size when that is larger)."""
    node = graph.nodes[node_id]
    definition = registry.get(node.type) if registry is not None else None
    title = node.layout.get("title") if isinstance(node.layout.get("title"), str) else ""
    if node.type in SMALL:
        width, height = SMALL[node.type]
    elif node.type == "core.Note":
        width, height = NOTE
    elif definition is None:  # not installed: the editor shows its ports and kept values
        width = max(MIN_WIDTH, TITLE_CHAR * len(title or node.type) + 4)
        height = TITLE + ROW * max(len(node.inputs), 1) + FIELD * len(node.params)
    else:
        as_inputs = set(getattr(node, "param_inputs", None) or ())
        fields = [p for p in definition.params if p.name not in as_inputs]
        rows = max(len(definition.inputs) + len(as_inputs), len(definition.outputs))
        image = wants_image_box(definition)
        width = max(IMAGE_WIDTH if image else MIN_WIDTH, TITLE_CHAR * len(title or definition.name) + 4)
        height = TITLE + ROW * rows + sum(_field_height(p) for p in fields)
        height += (IMAGE_BOX if image else 0.0) + (TEXT_BOX if wants_text_box(definition) and not image else 0.0)
    user = (node.layout.get("width"), node.layout.get("height"))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in user):
        width, height = max(width, float(user[0])), max(height, float(user[1]))
    return width, height


def overlapping_pairs(rects: Mapping[str, Rect]) -> list[tuple[str, str]]:
    """Pairs of rectangles (x, y, w, h) that overlap (touching edges do not count)."""
    items = sorted(rects.items(), key=lambda item: item[1][0])
    found = []
    for i, (a, (ax, ay, aw, ah)) in enumerate(items):
        for b, (bx, by, bw, bh) in items[i + 1:]:
            if bx >= ax + aw:
                break
            if ay < by + bh and by < ay + ah and ax < bx + bw:
                found.append((a, b))
    return found
