"""Templates of the reports' words: passages by key, filled from figures."""

import pytest

from lungct_utils import prose


@pytest.fixture
def templates(tmp_path, monkeypatch):
    monkeypatch.setattr(prose, "TEMPLATES", tmp_path)
    prose.passages.cache_clear()
    yield tmp_path
    prose.passages.cache_clear()


def test_a_passage_is_filled_and_another_left_alone(templates):
    (templates / "t.md").write_text(
        "<!-- shown -->\nBA {value:.1f}% over {n} cases ({{not a field}}).\n\n"
        "<!-- not_shown -->\nNot shown different.\n"
    )
    assert prose.fill("t", "shown", value=64.644, n=109) == (
        "BA 64.6% over 109 cases ({not a field})."
    )
    assert prose.fill("t", "not_shown") == "Not shown different."
    assert prose.fields("t", "shown") == {"value", "n"}


def test_a_missing_field_or_passage_is_named(templates):
    (templates / "t.md").write_text("<!-- shown -->\n{value} and {n}\n")
    with pytest.raises(ValueError, match=r"needs \['n'\]"):
        prose.fill("t", "shown", value=1)
    with pytest.raises(ValueError, match="no passage 'absent'"):
        prose.fill("t", "absent")
    with pytest.raises(ValueError, match="no template file"):
        prose.fill("nowhere", "shown")


def test_text_before_the_first_marker_or_a_repeated_key_is_refused(templates):
    (templates / "a.md").write_text("stray words\n<!-- k -->\nx\n")
    (templates / "b.md").write_text("<!-- k -->\nx\n<!-- k -->\ny\n")
    with pytest.raises(ValueError, match="before its first"):
        prose.passages("a")
    with pytest.raises(ValueError, match=r"repeats the keys \['k'\]"):
        prose.passages("b")


def test_every_shipped_passage_parses():
    for path in sorted(prose.TEMPLATES.glob("*.md")):
        for key in prose.passages(path.stem):
            prose.fields(path.stem, key)  # a malformed brace raises here
