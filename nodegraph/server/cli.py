"""``nodegraph serve``: parse the arguments, make the token, start the workers and the HTTP server.

Only argparse is imported until the command runs, so ``nodegraph --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "serve", help="serve workflows over HTTP (native API and ComfyUI's API), with a persistent queue",
        description="Serve workflows over HTTP and websockets: a native API under /v1 (OpenAPI at /docs) and "
                    "ComfyUI's API (/prompt, /queue, /history, /view, /ws, ...). Jobs wait in a queue that survives "
                    "restarts; workers keep their models loaded between jobs.",
        epilog="Security: loopback only by default; a bearer token (made at first start, kept in "
               "~/.config/nodegraph/server-token, mode 0600) is required on any other address, and on loopback "
               "with --auth. Limits: request bodies 16 MiB, uploads 50 MiB and 64 megapixels, 1000 pending jobs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8188, help="port (default 8188, ComfyUI's)")
    workers = parser.add_mutually_exclusive_group()
    workers.add_argument("--workers", type=int, default=None, metavar="N",
                         help="in-process workers, each keeping its own models loaded (default 1)")
    workers.add_argument("--ray", metavar="ADDRESS", default=None,
                         help="run the workers as Ray actors on the cluster at ADDRESS (auto: the local cluster's "
                              "head; local: start one here); needs pip install 'nodegraph[ray]'")
    parser.add_argument("--ray-workers", type=int, default=None, metavar="N",
                        help="actors to start (default: one per GPU, or one per --ray-cpus CPUs)")
    parser.add_argument("--ray-cpus", type=float, default=1.0, metavar="N", help="CPUs per actor without GPUs (default 1)")
    parser.add_argument("--state", type=Path, default=None, metavar="DIR",
                        help="folder for the queue database and the input/output/temp folders "
                             "(default ~/.local/share/nodegraph/server)")
    parser.add_argument("--output", type=Path, default=None, metavar="DIR", help="output folder (default STATE/output)")
    parser.add_argument("--input", type=Path, default=None, metavar="DIR", help="input (upload) folder (default STATE/input)")
    parser.add_argument("--models", action="append", default=[], type=Path, metavar="DIR",
                        help="an extra models root to search first (repeatable)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    parser.add_argument("--auth", action="store_true", help="require the token on loopback too")
    parser.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                        help="where the token is kept (default ~/.config/nodegraph/server-token)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="a web origin allowed to call the server from a browser (repeatable; default none)")
    parser.add_argument("--allow-node", action="append", default=[], metavar="TYPE",
                        help="allow a node type refused by default on a server (e.g. core.TrainLoraDreamBooth)")
    parser.add_argument("--comfy-previews", action="store_true",
                        help="send sampler previews to ComfyUI websocket clients as binary frames")
    parser.add_argument("--retention-days", type=float, default=30.0, help="keep finished jobs in the history this long (default 30)")
    parser.add_argument("--retention-jobs", type=int, default=10_000, help="and at most this many (default 10000)")
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from nodegraph.server.settings import ServerSettings, default_state_dir, default_token_path, is_loopback

    if args.port < 0 or args.port > 65535:
        return _fail(f"--port must be 0..65535, found {args.port}", EXIT_INVALID)
    workers = args.workers if args.workers is not None else args.ray_workers
    if workers is not None and workers < 1:
        return _fail(f"--workers must be at least 1, found {workers}", EXIT_INVALID)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return _fail("serving needs FastAPI and uvicorn: pip install 'nodegraph[serve]'", EXIT_FAILED)
    settings = ServerSettings(
        host=args.host, port=args.port, workers=workers, ray=args.ray, ray_cpus=args.ray_cpus,
        state_dir=args.state or default_state_dir(), output_dir=args.output, input_dir=args.input, models=args.models,
        device=args.device, precision=args.precision, require_auth=args.auth,
        token_path=args.token_file or default_token_path(), cors_origins=args.cors_origin,
        retention_days=args.retention_days, retention_jobs=args.retention_jobs, comfy_previews=args.comfy_previews,
        allow_nodes=args.allow_node,
    )
    from nodegraph.server.tokens import TokenFileError, load_or_create_token

    try:
        settings.token, created = load_or_create_token(settings.token_path)
    except (TokenFileError, OSError) as exc:
        return _fail(str(exc), EXIT_FAILED)
    if created:
        print(f"nodegraph: a new access token was made and saved in {settings.token_path} (mode 0600):", file=sys.stderr)
        print(f"  {settings.token}", file=sys.stderr)
    if not is_loopback(settings.host):
        print(f"nodegraph: listening on {settings.host}: every request needs 'Authorization: Bearer <token from "
              f"{settings.token_path}>'", file=sys.stderr)

    import logging

    from nodegraph.server.service import Service
    from nodegraph.server.serving import serve_forever

    logging.basicConfig(format="nodegraph: %(message)s", level=logging.WARNING)
    logging.getLogger("nodegraph.server").setLevel(logging.INFO)  # one line per finished job

    from nodegraph.server.service import StateInUse

    try:
        service = Service(settings)
    except StateInUse as exc:
        return _fail(str(exc), EXIT_FAILED)
    except Exception as exc:  # an unreadable state folder or database
        return _fail(f"cannot open the server state in {settings.state_dir}: {exc}", EXIT_FAILED)
    if service.recovered:
        print(f"nodegraph: {len(service.recovered)} job(s) that were running when the server stopped are queued again "
              "(each is retried once)", file=sys.stderr)
    if service.failed_on_recovery:
        print(f"nodegraph: {len(service.failed_on_recovery)} job(s) stopped twice and were marked failed", file=sys.stderr)
    problem = _port_problem(settings.host, settings.port)
    if problem:
        service.close()
        return _fail(problem, EXIT_FAILED)
    try:
        service.start()
    except Exception as exc:  # Ray missing, a cluster that cannot be reached
        service.close()
        return _fail(f"cannot start the workers: {exc}", EXIT_FAILED)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"nodegraph: serving on http://{shown}:{settings.port} (API docs at /docs; state in {settings.state_dir}); "
          "Ctrl-C stops", file=sys.stderr)
    try:
        serve_forever(service, settings.host, settings.port)
    except (OSError, SystemExit) as exc:  # uvicorn exits when it cannot bind
        return _fail(f"the server stopped: {exc}", EXIT_FAILED)
    finally:
        service.close()
    return EXIT_OK


def _port_problem(host: str, port: int) -> str:
    """Why the address cannot be listened on (taken, not ours), before any worker starts; "" if it can."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot listen on {host}: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another server running there? try --port)"
    return ""


def _fail(message: str, code: int) -> int:
    print(f"nodegraph: {message}", file=sys.stderr)
    return code
