"""ComfyUI workflows: detection, import (API and UI formats, PNG/WebP), the mapping table and export.

The public names other parts use::

    load_comfy(data: bytes | dict, registry, *, source="") -> ComfyImport   # .graph, .report
    import_api_prompt(prompt: dict, registry) -> ComfyImport
    export_api_prompt(graph, registry) -> dict
    is_comfy_document(doc) -> bool
    MAPPINGS                         # ComfyUI class type -> ClassMapping (a plugin adds its own entries)
    register_mapping(ClassMapping(...))

Pure Python: importing this package imports neither torch nor Qt.
"""

from nodegraph.comfy.export import ExportError, export_api_prompt
from nodegraph.comfy.load import ComfyImport, comfy_kind, import_api_prompt, is_comfy_document, load_comfy
from nodegraph.comfy.mapping import MAPPINGS, ClassMapping, ValueMap, choice_map, register_mapping
from nodegraph.comfy.report import ImportReport
from nodegraph.comfy.table import install_core

install_core()

__all__ = [
    "MAPPINGS",
    "ClassMapping",
    "ComfyImport",
    "ExportError",
    "ImportReport",
    "ValueMap",
    "choice_map",
    "comfy_kind",
    "export_api_prompt",
    "import_api_prompt",
    "is_comfy_document",
    "load_comfy",
    "register_mapping",
]
