"""What every metrics file records: parameters, seed, git commit, versions."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess

from .config import ROOT, PaperConfig

#: Set by ``make report`` to the commit taken before the run: the run itself rewrites
#: tracked notebooks and reports, which would mark every later step ``+dirty``.
COMMIT_ENV = "LUNGCT_GIT_COMMIT"


def git_commit() -> str:
    """The repository's HEAD commit, with ``+dirty`` when the tree has changes.

    Returns:
        ``$LUNGCT_GIT_COMMIT`` when set; else the commit hash, or ``"unknown"`` outside a
        git checkout.
    """
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def provenance(cfg: PaperConfig) -> dict:
    """Parameters, seed, commit and library versions, for a metrics or meta file.

    Args:
        cfg: the configuration used.

    Returns:
        ``{"params", "seed", "git_commit", "created", "versions"}``.
    """
    import numpy
    import pandas
    import PIL
    import sklearn

    return {
        "params": cfg.to_dict(),
        "seed": cfg.seed,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "pillow": PIL.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }
