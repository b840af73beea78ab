"""Socket type compatibility and parameter checking."""

from __future__ import annotations

import pytest

from nodegraph.params import Bool, Choice, Float, Int, ParamError, Seed, String
from nodegraph.types import ANY, FLOAT, IMAGE, INT, LATENT, STRING, compatible, type_named


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        (IMAGE, IMAGE, True),
        (IMAGE, LATENT, False),
        (INT, FLOAT, True),
        (FLOAT, INT, False),
        (ANY, LATENT, True),
        (IMAGE, ANY, True),
        (INT, INT | STRING, True),
        (INT | STRING, STRING, False),
        (INT | FLOAT, FLOAT, True),
        (IMAGE, INT | FLOAT, False),
    ],
)
def test_compatibility_rule(source, target, allowed):
    assert compatible(source, target) is allowed


def test_union_spelled_by_name_resolves_to_the_same_members():
    assert type_named("INT | STRING").members == (INT | STRING).members
    assert type_named("IMAGE") is IMAGE


def test_int_bounds_and_coercion():
    steps = Int("steps", 20, min=1, max=100)
    assert steps.check(5) == 5
    assert steps.check(5.0) == 5
    with pytest.raises(ParamError, match="at least 1"):
        steps.check(0)
    with pytest.raises(ParamError, match="an integer"):
        steps.check(2.5)
    with pytest.raises(ParamError, match="an integer"):
        steps.check(True)
    with pytest.raises(ParamError, match="an integer"):
        steps.parse_text("ten")


def test_float_rejects_text_nan_and_out_of_range():
    cfg = Float("cfg", 7.0, min=0.0, max=30.0)
    assert cfg.check(3) == 3.0 and isinstance(cfg.check(3), float)
    for bad in ("7", float("nan"), 31.0, None):
        with pytest.raises(ParamError):
            cfg.check(bad)
    assert cfg.parse_text(" 4.5 ") == 4.5


def test_choice_bool_string_and_seed():
    sampler = Choice("sampler", choices=("ddim", "euler"))
    assert sampler.default == "ddim"
    with pytest.raises(ParamError, match="one of ddim, euler"):
        sampler.check("heun")
    assert Bool("b").parse_text("yes") is True
    with pytest.raises(ParamError):
        Bool("b").check(1)
    with pytest.raises(ParamError):
        String("s").check(3)
    seed = Seed("seed")
    assert seed.check(2**64 - 1) == 2**64 - 1
    with pytest.raises(ParamError):
        seed.check(-1)


def test_schema_carries_bounds_help_and_kind():
    schema = Int("steps", 20, min=1, max=100, help="How many steps.").schema()
    assert schema == {
        "name": "steps", "kind": "int", "type": "INT", "default": 20, "label": "steps",
        "help": "How many steps.", "min": 1, "max": 100, "step": 1,
    }
