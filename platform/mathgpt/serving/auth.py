"""API keys: from an environment variable or a file (local or a URI), compared in constant time."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from mathgpt.errors import ConfigError
from mathgpt.io import exists, is_uri, read_text, write_text

MIN_KEY_CHARS = 12


def load_api_key(env_var: str, key_file: str | None) -> str:
    """The server's API key; refusing to start without one is the safe default."""
    key = os.environ.get(env_var, "").strip()
    if not key and key_file:
        if not exists(key_file):
            raise ConfigError(f"serving.api_key_file: {key_file} does not exist")
        key = read_text(key_file).strip()
    if not key:
        raise ConfigError(f"no API key: set the {env_var} environment variable or serving.api_key_file")
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"the API key (from {env_var if os.environ.get(env_var, '').strip() else key_file}) has "
                          f"{len(key)} characters; use at least {MIN_KEY_CHARS} (`mathgpt serve` makes one when "
                          "none is set)")
    return key


def write_private(key: str, path: str) -> str:
    """Write a generated key where every replica can read it: a 0600 file, or an object beside the run's other
    outputs when the run directory is on object storage (as private as the bucket). Returns the path."""
    if is_uri(path):
        write_text(key, path)
        return path
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.touch(mode=0o600)
    file.chmod(0o600)
    file.write_text(key)
    return str(file)


def check_bearer(header: str | None, key: str) -> bool:
    """True when the Authorization header carries the key (constant-time comparison; the scheme's name is
    case-insensitive, RFC 7235)."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), key.encode())
