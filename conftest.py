"""Root pytest hooks: nbval compares notebook stdout and outputs, never stderr.

TensorFlow and tqdm write to stderr differently under papermill and nbval (see
../shared/NOTES-notebooks.md), so stderr streams are left out of the comparison.
"""


def pytest_collectstart(collector):
    if str(getattr(collector, "path", "")).endswith(".ipynb"):
        collector.skip_compare += ("stderr",)
