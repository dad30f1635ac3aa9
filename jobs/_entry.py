"""Shared by the job scripts: make the package importable from a Ray working_dir, then run the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))


def run(argv: list[str]) -> None:
    """Call `mathgpt` with these arguments."""
    from mathgpt.cli import main

    main(argv)
