"""Root pytest hooks.

* nbval compares notebook stdout and outputs, never stderr: TensorFlow and tqdm write to
  stderr differently under papermill and nbval (see ../shared/NOTES-notebooks.md).
* Tests that need the real release or the ImageNet weights, and the notebooks, are marked
  ``slow``: ``make test-fast`` runs the rest.
* Notebook 08 needs the external set (``$LUNGCT_EXTERNAL_DIR``): without it the notebook is
  skipped with one line, except under ``LUNGCT_REQUIRE_DATA=1`` (CI), where it runs and fails
  naming the missing folder.
"""

import os

import pytest

from lungct_utils import config

SLOW_FIXTURES = {"real_release", "imagenet_weights", "real_images", "prepared", "trained_run"}


def pytest_collectstart(collector):
    if str(getattr(collector, "path", "")).endswith(".ipynb"):
        collector.skip_compare += ("stderr",)


def pytest_collection_modifyitems(items):
    external = config.external_dir()
    required = os.environ.get("LUNGCT_REQUIRE_DATA") == "1"
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if str(item.path).endswith(".ipynb") or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if item.path.name == config.EXTERNAL_NOTEBOOK and not external.is_dir() and not required:
            reason = f"needs the external set at {external} (set {config.EXTERNAL_DIR_ENV})"
            item.add_marker(pytest.mark.skip(reason=reason))
