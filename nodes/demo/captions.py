"""How people word a prompt for the demo model, and the captions it is trained on.

A model trained on one sentence pattern ("a red circle on a blue background") follows that pattern and little
else: a tag list ("red circle, blue background") or "a photo of ..." gave it wrong colours. So every training
caption is drawn from many templates of three forms people type:

- ``sentence``: "a red circle on a blue background", "a blue background with a red circle", ...
- ``tags``: "red circle, blue background", "blue background, red circle", ...
- ``photo``: "a photo of a red circle on a blue background", "a drawing of ...", ...

A few captions leave something out ("a red circle", "a circle on a blue background") so that partial prompts
mean something too. The benchmark (benchmarks/quality.py) prompts one fixed template per form
(:data:`EVAL_TEMPLATES`) and a set of phrasings the model never saw (:data:`UNSEEN_TEMPLATES`).

Templates are ``str.format`` patterns over ``c`` (colour), ``s`` (shape), ``b`` (background), ``ac`` / ``ab``
(the article before the colour / background word) and ``Ac`` (the same, capitalised).
"""

from __future__ import annotations

import numpy as np

FORMS: tuple[str, ...] = ("sentence", "tags", "photo")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "sentence": (
        "{ac} {c} {s} on {ab} {b} background",
        "{Ac} {c} {s} on {ab} {b} background.",
        "{ac} {c} {s} on {b}",
        "{ac} {c} {s} against {ab} {b} background",
        "{ac} {c} {s} with {ab} {b} background",
        "{ac} {c} {s} on a plain {b} background",
        "{ab} {b} background with {ac} {c} {s}",
        "{ac} {c} {s} in front of {ab} {b} background",
        "{c} {s} on {b} background",
        "{c} {s} on {ab} {b} background",
        "{ac} single {c} {s} on {ab} {b} background",
        "{ac} {c} {s} centered on {ab} {b} background",
    ),
    "tags": (
        "{c} {s}, {b} background",
        "{b} background, {c} {s}",
        "{c} {s}, {b} background, simple",
        "{c} {s}, plain {b} background",
        "{s}, {c} {s}, {b} background",
        "{c} {s} {b} background",
        "{c} {s}; {b} background",
        "{c} {s}, {b} backdrop",
    ),
    "photo": (
        "a photo of {ac} {c} {s} on {ab} {b} background",
        "a picture of {ac} {c} {s} on {ab} {b} background",
        "an image of {ac} {c} {s} on {ab} {b} background",
        "a drawing of {ac} {c} {s} on {ab} {b} background",
        "an illustration of {ac} {c} {s} on {ab} {b} background",
        "a photo of {ac} {c} {s}, {b} background",
        "a photograph of {ac} {c} {s} against {ab} {b} background",
        "a simple drawing of {ac} {c} {s} on {ab} {b} background",
    ),
}

# Partial captions: what is left out may be anything (trained with the full image).
PARTIAL_TEMPLATES: tuple[str, ...] = (
    "{ac} {c} {s}",
    "{c} {s}",
    "{ac} {s} on {ab} {b} background",
    "{ac} {c} shape on {ab} {b} background",
    "{ab} {b} background",
)

# The benchmark's prompt for each form (each is also a training template: these are the forms we promise).
EVAL_TEMPLATES: dict[str, str] = {
    "sentence": "{ac} {c} {s} on {ab} {b} background",
    "tags": "{c} {s}, {b} background",
    "photo": "a photo of {ac} {c} {s} on {ab} {b} background",
}

# Never trained on: how far the model follows wordings of its own (reported, no goal).
UNSEEN_TEMPLATES: tuple[str, ...] = (
    "there is {ac} {c} {s} on {ab} {b} background",
    "{c} {s} over {b}",
    "a painting of {ac} {c} {s}, the background is {b}",
    "{ac} {c} {s} drawn on {ab} {b} background",
)

PARTIAL_SHARE = 0.1  # of training captions


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def fill(template: str, colour: str, shape: str, background: str) -> str:
    ac = article(colour)
    return template.format(c=colour, s=shape, b=background, ac=ac, Ac=ac.capitalize(), ab=article(background))


def prompt(form: str, colour: str, shape: str, background: str) -> str:
    """The benchmark's prompt of a form: ``prompt("tags", "red", "circle", "blue")`` -> 'red circle, blue background'."""
    if form not in EVAL_TEMPLATES:
        raise ValueError(f"unknown prompt form {form!r}; expected one of {FORMS}")
    return fill(EVAL_TEMPLATES[form], colour, shape, background)


def all_templates() -> tuple[str, ...]:
    """Every full-caption training template, forms in order."""
    return tuple(t for form in FORMS for t in TEMPLATES[form])


def random_caption(rng: np.random.Generator, colour: str, shape: str, background: str, partial: bool = True) -> str:
    """A training caption: a random template of a random form, sometimes (``partial``) one that leaves a part out."""
    if partial and rng.random() < PARTIAL_SHARE:
        template = PARTIAL_TEMPLATES[int(rng.integers(len(PARTIAL_TEMPLATES)))]
    else:
        templates = TEMPLATES[FORMS[int(rng.integers(len(FORMS)))]]
        template = templates[int(rng.integers(len(templates)))]
    return fill(template, colour, shape, background)
