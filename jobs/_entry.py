"""Shared by the job scripts: the `mathgpt` of this checkout (the working_dir a job was submitted with) comes
first, so the code that runs is the code submitted, even where the cluster image installs a `mathgpt` of its own;
without a checkout beside it, the installed one."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if (ROOT / "platform" / "mathgpt" / "__init__.py").exists():
    sys.path.insert(0, str(ROOT / "platform"))


def run(argv: list[str]) -> None:
    """Call `mathgpt` with these arguments."""
    from mathgpt.cli import main

    main(argv)
