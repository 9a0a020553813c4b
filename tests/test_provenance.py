"""Provenance: the commit a metrics file records."""

from lungct_utils import provenance
from lungct_utils.config import PAPER


def test_report_commit_is_pinned_by_the_environment(monkeypatch):
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    live = provenance.git_commit()
    assert live == "unknown" or len(live.split("+")[0]) == 40
    monkeypatch.setenv(provenance.COMMIT_ENV, "abc123")
    assert provenance.git_commit() == "abc123"
    assert provenance.provenance(PAPER)["git_commit"] == "abc123"
