"""``nodegraph serve``: the engine over HTTP and websockets, with a persistent queue.

Built on FastAPI (Starlette) and uvicorn, imported only when a server is made (``pip install
'nodegraph[serve]'``), so ``import nodegraph`` and ``nodegraph --help`` stay light.

- :mod:`~nodegraph.server.settings`: what a server is told (address, folders, limits, auth);
- :mod:`~nodegraph.server.tokens`, :mod:`~nodegraph.server.security`: the bearer token and the middleware
  that checks tokens, origins, hosts and body sizes;
- :mod:`~nodegraph.server.store`: jobs, their events and history in SQLite;
- :mod:`~nodegraph.server.submit`, :mod:`~nodegraph.server.confine`: turning a request into a validated,
  confined job;
- :mod:`~nodegraph.server.service`: the queue, the workers and the event hub, without HTTP;
- :mod:`~nodegraph.server.app`: the FastAPI application; routes in ``routes_native``, ``routes_comfy``
  and ``routes_ws``; ComfyUI's message and history shapes in ``comfy_shapes``; ``object_info`` in
  ``comfy_nodes``;
- :mod:`~nodegraph.server.cli`: the ``serve`` subcommand.
"""
