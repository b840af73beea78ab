"""Run the application on uvicorn: in the foreground (``nodegraph serve``) or on a thread (tests, benchmarks)."""

from __future__ import annotations

import threading
import time
from typing import Any

from nodegraph.server.app import create_app
from nodegraph.server.service import Service


def _config(service: Service, host: str, port: int) -> Any:
    import uvicorn

    app = create_app(service)
    # ws_max_size: ComfyUI clients send nothing big over the socket; bound what a client may push.
    return uvicorn.Config(app, host=host, port=port, log_level="warning", ws_max_size=1 << 20,
                          timeout_graceful_shutdown=5, access_log=False)


def serve_forever(service: Service, host: str, port: int) -> None:
    """Serve until Ctrl-C (uvicorn handles the signal and shuts down gracefully)."""
    import uvicorn

    uvicorn.Server(_config(service, host, port)).run()


class ServerThread:
    """A real server on a background thread; ``port=0`` picks a free port (read it from ``.port``)."""

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.service = service
        self.host = host
        self.server = uvicorn.Server(_config(service, host, port))
        self._thread = threading.Thread(target=self.server.run, name="nodegraph-http", daemon=True)
        self.port = port

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
