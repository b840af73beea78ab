"""The desktop editor (PySide6 + NodeGraphQt): a view over nodegraph's graph, never a second truth."""
