"""The server's bearer token: made once, kept in the user's config folder readable by the user alone."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path


class TokenFileError(RuntimeError):
    pass


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """``(token, created)``. A new token is written with mode 0600 (created exclusively: never over a file
    another process wrote meanwhile). An existing file readable by others is refused, not silently used."""
    path = Path(path)
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise TokenFileError(
                f"the token file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}` "
                "or delete it to get a new token"
            )
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise TokenFileError(f"the token file {path} holds no usable token (at least 16 characters); delete it to get a new one")
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_token(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, True


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
