"""Constants, text and arithmetic: the small nodes every graph reaches for. No torch needed."""

from __future__ import annotations

import math
import re
import string
from typing import Any

import nodegraph.limits as limits
from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.limits import LimitExceeded
from nodegraph.node import Input, Output, node
from nodegraph.params import INT_MAX, INT_MIN, Bool, Choice, Float, Int, Seed, String, Text
from nodegraph.types import ANY, BOOLEAN, FLOAT, INT, STRING


@node(
    "core.Int", name="Integer", category="primitives",
    description="A whole number to feed other nodes.",
    params=[Int("value", 0, help="The number.")],
    outputs=[Output("value", INT)],
)
def int_constant(ctx: NodeContext, value: int) -> int:
    return value


@node(
    "core.Float", name="Float", category="primitives",
    description="A real number to feed other nodes.",
    params=[Float("value", 0.0, help="The number.")],
    outputs=[Output("value", FLOAT)],
)
def float_constant(ctx: NodeContext, value: float) -> float:
    return value


@node(
    "core.Seed", name="Seed", category="primitives",
    description="A random seed to share between nodes: link it to several samplers' seed inputs.",
    params=[Seed("value", 0, help="The seed.")],
    outputs=[Output("value", INT)],
)
def seed_constant(ctx: NodeContext, value: int) -> int:
    return value


@node(
    "core.String", name="String", category="primitives",
    description="A line of text.",
    params=[String("value", "", help="The text.")],
    outputs=[Output("value", STRING)],
)
def string_constant(ctx: NodeContext, value: str) -> str:
    return value


@node(
    "core.Text", name="Text", category="primitives",
    description="Several lines of text, such as a prompt.",
    params=[Text("value", "", help="The text.")],
    outputs=[Output("value", STRING)],
)
def text_constant(ctx: NodeContext, value: str) -> str:
    return value


@node(
    "core.Bool", name="Boolean", category="primitives",
    description="True or false.",
    params=[Bool("value", False, help="The value.")],
    outputs=[Output("value", BOOLEAN)],
)
def bool_constant(ctx: NodeContext, value: bool) -> bool:
    return value


@node(
    "core.StringJoin", name="Join Text", category="primitives/text",
    description="Joins two texts with a separator; an unconnected side counts as empty.",
    inputs=[Input("a", STRING, optional=True), Input("b", STRING, optional=True)],
    params=[String("separator", ", ", help="Placed between the two texts when both are non-empty.")],
    outputs=[Output("text", STRING)],
)
def string_join(ctx: NodeContext, a: str | None, b: str | None, separator: str) -> str:
    return separator.join(part for part in (a, b) if part)


@node(
    "core.StringFormat", name="Format Text", category="primitives/text",
    description="Fills {a}, {b} and {c} in a template, e.g. 'a {a} circle on a {b} background'.",
    inputs=[Input("a", ANY, optional=True), Input("b", ANY, optional=True), Input("c", ANY, optional=True)],
    params=[Text("template", "{a}", help="Python format syntax; the placeholders are a, b and c.")],
    outputs=[Output("text", STRING)],
)
def string_format(ctx: NodeContext, a: Any, b: Any, c: Any, template: str) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise NodeInputError(f"the template is not valid: {exc}", "template") from None
    unknown = sorted(f for f in fields if f not in ("a", "b", "c"))
    if unknown:
        raise NodeInputError(f"the template uses {', '.join(unknown)}; only {{a}}, {{b}} and {{c}} exist", "template")
    try:
        return _BoundedFormatter().format(template, a="" if a is None else a, b="" if b is None else b,
                                          c="" if c is None else c)
    except LimitExceeded as exc:
        raise NodeInputError(str(exc), "template") from None
    except (ValueError, IndexError, TypeError, AttributeError, KeyError) as exc:
        raise NodeInputError(f"the template is not valid: {type(exc).__name__}: {exc}", "template") from None


class _BoundedFormatter(string.Formatter):
    """``str.format`` that refuses a field width or precision past the ``text_chars`` limit before formatting:
    ``{a:>3000000000}`` would otherwise allocate gigabytes. Widths nested in a spec are checked once filled in,
    and the fields together may not pass the limit either (a long template repeating a long value)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        # only the plain names: "{a.__class__}" (also nested in a spec) must not reach into Python's objects
        if field_name not in ("a", "b", "c"):
            raise KeyError(f"{field_name!r} is not one of a, b, c (attributes and indexes are not allowed)")
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        limit = limits.get("text_chars")
        for number in re.findall(r"\d+", format_spec):
            if len(number) > 12 or int(number) > limit:
                raise LimitExceeded(f"the template pads or cuts a field to {number} characters", "text_chars",
                                    int(number) if len(number) <= 12 else number)
        text = super().format_field(value, format_spec)
        self.total += len(text)
        if self.total > limit:
            raise LimitExceeded("the filled-in fields of the template are too long", "text_chars", self.total)
        return text


_OPERATIONS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: a**b,
    "minimum": min,
    "maximum": max,
}


@node(
    "core.Math", name="Math", category="primitives/math",
    description="Applies an arithmetic operation to two numbers. Unconnected operands use the fields.",
    inputs=[Input("a", FLOAT, optional=True), Input("b", FLOAT, optional=True)],
    params=[
        Choice("operation", choices=tuple(_OPERATIONS), help="What to compute from a and b."),
        Float("a_value", 0.0, help="a, when nothing is connected."),
        Float("b_value", 0.0, help="b, when nothing is connected."),
    ],
    outputs=[Output("result", FLOAT)],
)
def math_op(ctx: NodeContext, a: float | None, b: float | None, operation: str, a_value: float, b_value: float) -> float:
    x = a_value if a is None else a
    y = b_value if b is None else b
    if operation == "divide" and y == 0:
        raise NodeInputError("division by zero: b is 0", "b")
    try:
        result = float(_OPERATIONS[operation](x, y))
    except (OverflowError, ZeroDivisionError, TypeError) as exc:
        raise NodeInputError(f"{operation} of {x} and {y} has no real result ({exc})") from None
    if not math.isfinite(result):
        raise NodeInputError(f"{operation} of {x} and {y} is not a finite number")
    return result


@node(
    "core.IntMath", name="Integer Math", category="primitives/math",
    description="Whole-number arithmetic (division rounds down).",
    inputs=[Input("a", INT, optional=True), Input("b", INT, optional=True)],
    params=[
        Choice("operation", choices=("add", "subtract", "multiply", "divide", "modulo", "minimum", "maximum")),
        Int("a_value", 0, help="a, when nothing is connected."),
        Int("b_value", 0, help="b, when nothing is connected."),
    ],
    outputs=[Output("result", INT)],
)
def int_math(ctx: NodeContext, a: int | None, b: int | None, operation: str, a_value: int, b_value: int) -> int:
    x = a_value if a is None else a
    y = b_value if b is None else b
    if operation in ("divide", "modulo") and y == 0:
        raise NodeInputError(f"{operation} by zero: b is 0", "b")
    ops = {"divide": lambda p, q: p // q, "modulo": lambda p, q: p % q, **_OPERATIONS}
    result = int(ops[operation](x, y))
    if not INT_MIN <= result <= INT_MAX:
        raise NodeInputError(f"{operation} of {x} and {y} does not fit a 64-bit whole number ({INT_MIN} .. {INT_MAX})")
    return result


@node(
    "core.Show", name="Show Value", category="primitives",
    description="Shows any value: printed by `nodegraph run`, displayed in the editor.",
    inputs=[Input("value", ANY)],
    outputs=[Output("text", STRING)],
    output_node=True,
)
def show(ctx: NodeContext, value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    ctx.log(text)
    return text
