"""Shared by the job scripts: use the installed `mathgpt` (cluster images install it), else this checkout's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("mathgpt") is None:
    sys.path.insert(0, str(ROOT / "platform"))


def run(argv: list[str]) -> None:
    """Call `mathgpt` with these arguments."""
    from mathgpt.cli import main

    main(argv)
