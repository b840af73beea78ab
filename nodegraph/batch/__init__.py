"""``nodegraph batch``: one workflow run over every combination of swept parameters.

:mod:`~nodegraph.batch.sweep` parses the ``--sweep`` specs and makes the combinations;
:mod:`~nodegraph.batch.runner` runs them on warm workers (in this process, or Ray actors) and writes the
index; :mod:`~nodegraph.batch.cli` is the subcommand.
"""
