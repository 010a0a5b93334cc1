"""What git holds of a file: tests about the *committed* course read it, so that what a
learner saved in their working copy (answers in an exercise, say) never fails them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]


def staged_copy(path: Path) -> Optional[str]:
    """Git's staged copy of ``path`` (``git show :./PATH``): what the next commit holds.
    None without git, outside a repository, or when git does not have the file."""
    try:
        shown = subprocess.run(["git", "show", f":./{Path(path).resolve().relative_to(ROOT).as_posix()}"],
                               cwd=ROOT, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return shown.stdout.decode("utf-8") if shown.returncode == 0 else None
