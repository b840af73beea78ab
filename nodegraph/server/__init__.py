"""``nodegraph serve``: the engine over HTTP and websockets, with a persistent queue.

Built on FastAPI (Starlette) and uvicorn, imported only when a server is made (``pip install
'nodegraph[serve]'``), so ``import nodegraph`` and ``nodegraph --help`` stay light. Where to look:

- what a server is told: ``settings`` (address, folders, limits); ``cli`` (the ``serve`` subcommand);
- the queue without HTTP: ``store`` (jobs, events, history in SQLite), ``service`` (queue + workers + events),
  ``hub`` (events from worker threads to websocket clients);
- what may enter the queue: ``submit`` (parse, override, validate), ``confine`` (files a served workflow may
  touch), ``uploads`` (input images), ``tokens`` and ``security`` (the token, origins, hosts, body limits);
- HTTP: ``app`` (the FastAPI application), ``routes_native`` (/v1), ``routes_comfy`` (ComfyUI's API),
  ``routes_ws`` (/ws and /v1/events), ``errors`` (JSON errors), ``serving`` (uvicorn, foreground or thread);
- ComfyUI: ``comfy_bridge`` (the one door to the ComfyUI import, :mod:`nodegraph.comfy`), ``comfy_shapes``
  (its messages, queue and history shapes), ``comfy_nodes`` (/object_info).

Workers themselves live in :mod:`nodegraph.workers`, shared with ``nodegraph batch``.
"""
