"""What a server is told: where it listens, where it keeps its state and files, and its limits.

Every limit is stated here, with its default, so the README and ``nodegraph serve --help`` can say them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

MiB = 2**20


@dataclass
class Limits:
    """Bounds on what one request or one client may cost the server."""

    body_bytes: int = 16 * MiB  # any request body (a workflow, a form)
    upload_bytes: int = 50 * MiB  # one uploaded image
    image_pixels: int = 64_000_000  # an uploaded image's width x height (decompression bombs)
    pending_jobs: int = 1000  # jobs waiting in the queue; more get HTTP 429
    events_per_job: int = 5000  # events kept in the history of one job (progress beyond this is dropped)
    client_backlog: int = 1000  # messages waiting for one websocket client; a slower client loses progress messages
    websocket_clients: int = 256


def default_state_dir() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nodegraph" / "server"


def default_token_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "nodegraph" / "server-token"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8188
    workers: int | None = None  # in-process workers (default 1); with Ray, actors (default: per GPU or CPU share)
    ray: str | None = None  # a Ray address ("auto", "local", "host:port", "ray://..."): workers become actors
    ray_cpus: float = 1.0  # CPUs each actor asks for (when the cluster has no GPUs)
    ray_gpus: float = 1.0  # GPUs each actor asks for (when it has)
    state_dir: Path = field(default_factory=default_state_dir)
    output_dir: Path | None = None  # default: <state>/output
    input_dir: Path | None = None  # default: <state>/input
    temp_dir: Path | None = None  # default: <state>/temp
    models: list[Path] = field(default_factory=list)
    device: str | None = None
    precision: str = "auto"
    require_auth: bool = False  # require the token on loopback too (always required elsewhere)
    token_path: Path = field(default_factory=default_token_path)
    token: str | None = None  # set by the server from token_path (or given, in tests)
    cors_origins: list[str] = field(default_factory=list)
    retention_days: float = 30.0  # finished jobs older than this leave the history (their files stay)
    retention_jobs: int = 10_000  # and beyond this many finished jobs, the oldest leave too
    comfy_previews: bool = False  # send sampler previews to ComfyUI clients as binary frames (like --preview-method)
    allow_nodes: list[str] = field(default_factory=list)  # node types refused by default that this server allows
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).expanduser()
        self.output_dir = Path(self.output_dir or self.state_dir / "output").expanduser()
        self.input_dir = Path(self.input_dir or self.state_dir / "input").expanduser()
        self.temp_dir = Path(self.temp_dir or self.state_dir / "temp").expanduser()

    @property
    def auth_required(self) -> bool:
        return self.require_auth or not is_loopback(self.host)

    @property
    def database(self) -> Path:
        return self.state_dir / "queue.sqlite3"

    @property
    def staging_dir(self) -> Path:
        return self.state_dir / "staging"

    def folders(self) -> dict[str, Path]:
        """The folders ``/view`` may read from, by ComfyUI's type names."""
        assert self.output_dir and self.input_dir and self.temp_dir
        return {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
