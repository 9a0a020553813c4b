"""Root pytest hooks.

* nbval compares notebook stdout and outputs, never stderr: TensorFlow and tqdm write to
  stderr differently under papermill and nbval (see ../shared/NOTES-notebooks.md).
* Tests that need the real release or the ImageNet weights, and the notebooks, are marked
  ``slow``: ``make test-fast`` runs the rest.
"""

import pytest

SLOW_FIXTURES = {"real_release", "imagenet_weights", "real_images", "prepared", "trained_run"}


def pytest_collectstart(collector):
    if str(getattr(collector, "path", "")).endswith(".ipynb"):
        collector.skip_compare += ("stderr",)


def pytest_collection_modifyitems(items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if str(item.path).endswith(".ipynb") or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
