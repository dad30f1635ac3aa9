"""API keys: from an environment variable or a file, compared in constant time."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from mathgpt.errors import ConfigError


def load_api_key(env_var: str, key_file: str | None) -> str:
    """The server's API key; refusing to start without one is the safe default."""
    key = os.environ.get(env_var, "").strip()
    if not key and key_file:
        path = Path(key_file)
        if not path.is_file():
            raise ConfigError(f"serving.api_key_file: {key_file} does not exist")
        key = path.read_text().strip()
    if not key:
        raise ConfigError(f"no API key: set the {env_var} environment variable or serving.api_key_file")
    return key


def check_bearer(header: str | None, key: str) -> bool:
    """True when the Authorization header carries the key (constant-time comparison)."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), key.encode())
