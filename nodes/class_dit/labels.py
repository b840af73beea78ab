"""Class names -> ids for class-conditional DiT models, from the names the model folder ships (model_index.json's
``id2label``, as DiTPipeline reads them: each entry lists synonyms separated by commas)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping


def label_index(id2label: Mapping[int, str]) -> dict[str, int]:
    """Every synonym (lower case) -> its class id."""
    index: dict[str, int] = {}
    for key, value in id2label.items():
        for name in str(value).split(","):
            name = name.strip().lower()
            if name:
                index.setdefault(name, int(key))
    return index


class UnknownClass(ValueError):
    pass


def lookup(names: str, id2label: Mapping[int, str]) -> list[int]:
    """Ids for a comma- or newline-separated list of class names (a number is taken as an id)."""
    index = label_index(id2label)
    ids = []
    for raw in names.replace("\n", ",").split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name.isdigit():
            ids.append(int(name))
            continue
        if name not in index:
            close = difflib.get_close_matches(name, list(index), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownClass(f"{raw.strip()!r} is not one of this model's {len(id2label)} class names{hint}")
        ids.append(index[name])
    if not ids:
        raise UnknownClass("no class name given")
    return ids
