"""nodegraph-imagetools: an example nodegraph plugin.

Image adjustments (Gaussian blur, sharpen, colour balance) and a custom socket type, PALETTE, produced by
"Extract Palette" / "Palette from Hex" / "Load Palette" and consumed by "Apply Palette" / "Palette Swatches".
Installed, nodegraph finds it through the ``nodegraph.nodes`` entry point in pyproject.toml; copied into a
plugin folder, it works as a folder plugin too (hence the relative imports).
"""

from . import filters, palette

NAMESPACE = "imagetools"
__version__ = "0.1.0"

# What to register: every node declared at the top level of these modules.
NODES = [filters, palette]
