"""Tests keep their input files (images, instance folders) in temporary folders: the runs they make may read
there, as a user's runs read their input folders (nodegraph.paths)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nodegraph.context import RunSettings
from nodegraph.paths import PathPolicy

TMP_INPUTS = PathPolicy(input_dirs=(Path(tempfile.gettempdir()).resolve(),))


def tmp_run_settings(**kwargs: Any) -> RunSettings:
    """RunSettings whose reads may use the temporary folders (``kwargs``: the other settings)."""
    return RunSettings(paths=TMP_INPUTS, **kwargs)
