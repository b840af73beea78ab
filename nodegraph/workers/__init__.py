"""Workers: executors that stay alive between jobs, in this process or as Ray actors.

A worker keeps one :class:`~nodegraph.executor.Executor` (its output cache and the models it loaded) and
runs one job at a time. The HTTP server (:mod:`nodegraph.server`) and ``nodegraph batch`` hand jobs to a
:class:`~nodegraph.workers.pool.WorkerPool`, which prefers the worker whose cache already holds a job's
models. Every job writes into its own staging folder; :mod:`nodegraph.workers.outputs` moves the files to
their final place only when the job has finished, so a job retried after a crash never leaves duplicates.

- :mod:`~nodegraph.workers.spec`: what a worker is given (JobSpec) and gives back (Outcome, StagedFile);
- :mod:`~nodegraph.workers.events`: engine events as JSON plus preview bytes, for the wire;
- :mod:`~nodegraph.workers.runner`: runs one JobSpec on an Executor (the same code in threads and actors);
- :mod:`~nodegraph.workers.local`: workers in this process; :mod:`~nodegraph.workers.ray_actors`: on Ray;
  :mod:`~nodegraph.workers.make`: making either kind; :mod:`~nodegraph.workers.load_lock`: one model load at
  a time among workers sharing a process;
- :mod:`~nodegraph.workers.pool`: scheduling with model affinity; :mod:`~nodegraph.workers.outputs`: commit.

Nothing here imports torch, Ray or a web framework at import time.
"""
