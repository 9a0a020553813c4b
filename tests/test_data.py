"""The release: finding it, scanning, verifying, fetching; clear errors for bad input."""

import shutil
import zipfile

import pandas as pd
import pytest

from lungct_utils import cli
from lungct_utils.audit import duplicate_groups
from lungct_utils.data import (
    find_release,
    folder_label,
    inspect_image,
    load_manifest,
    scan_files,
    verify_release,
)
from lungct_utils.fetch import fetch_release
from lungct_utils.io_utils import DataError


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Bengin cases", "benign"),
        ("benign", "benign"),
        ("Malignant cases", "malignant"),
        ("NORMAL", "normal"),
        ("normal_cases", "normal"),
        ("tumours", None),
        ("Normal cases old", None),
    ],
)
def test_folder_label(name, label):
    assert folder_label(name) == label


def test_scan_original_layout(synth_release):
    manifest = load_manifest(synth_release, progress=False)
    assert manifest["label"].value_counts().to_dict() == {"malignant": 9, "normal": 7, "benign": 6}
    assert set(manifest["mode"]) == {"L"}
    row = manifest[manifest["path"] == "Malignant cases/Malignant case (3).jpg"].iloc[0]
    assert (row.width, row.height) == (60, 40)
    assert duplicate_groups(manifest) == [
        ["Malignant cases/Malignant case (1).jpg", "Malignant cases/Malignant case (9).jpg"]
    ]


def test_nested_and_lowercase_repackagings(synth_release, tmp_path):
    nested = tmp_path / "kaggle" / "The IQ-OTHNCCD lung cancer dataset" / "inner"
    shutil.copytree(synth_release, nested)
    for old, new in [
        ("Bengin cases", "benign"),
        ("Malignant cases", "malignant"),
        ("Normal cases", "normal"),
    ]:
        (nested / old).rename(nested / new)
    release = find_release(tmp_path / "kaggle")
    assert release.root == nested
    assert len(load_manifest(tmp_path / "kaggle", progress=False)) == 22


def test_missing_class_is_named(synth_release):
    shutil.rmtree(synth_release / "Normal cases")
    with pytest.raises(DataError, match="missing class folder for normal"):
        find_release(synth_release)


def test_not_a_folder_and_wrong_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        find_release(tmp_path / "nope")
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError, match="no class folders found"):
        find_release(tmp_path)


def test_empty_and_unknown_class_folders(synth_release):
    extra = synth_release / "Unknown cases"
    extra.mkdir()
    with pytest.raises(DataError, match="unknown class folder.*Unknown cases"):
        load_manifest(synth_release, progress=False)
    extra.rmdir()
    for f in (synth_release / "Normal cases").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="Normal cases: class folder has no images"):
        load_manifest(synth_release, progress=False)


def test_corrupt_and_non_images_are_named(tmp_path, synth_release):
    good = synth_release / "Bengin cases" / "Bengin case (1).jpg"
    truncated = tmp_path / "t.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "x.jpg"
    text.write_text("hello")
    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"t\.jpg: corrupt or truncated"):
        inspect_image(truncated)
    with pytest.raises(DataError, match=r"x\.jpg: not an image"):
        inspect_image(text)
    with pytest.raises(DataError, match=r"e\.jpg: empty file"):
        inspect_image(empty)
    assert inspect_image(good)["format"] == "JPEG"


def _reference(root):
    manifest, problems = scan_files(find_release(root), progress=False)
    assert not problems
    return manifest


def test_verify_ok_then_names_every_problem(synth_release):
    reference = _reference(synth_release)
    assert verify_release(synth_release, reference, progress=False).ok
    folder = synth_release / "Malignant cases"
    victim = folder / "Malignant case (2).jpg"
    victim.write_bytes(victim.read_bytes()[:400])  # truncated
    (folder / "notes.txt").write_text("stray")  # stray text file
    (synth_release / "Normal cases" / "Normal case (1).jpg").unlink()  # missing
    changed = synth_release / "Bengin cases" / "Bengin case (2).jpg"
    (synth_release / "Bengin cases" / "Bengin case (3).jpg").replace(changed)  # changed bytes
    report = verify_release(synth_release, reference, progress=False)
    assert not report.ok
    text = "\n".join(report.problems)
    assert len(report.problems) == 5, text
    assert "unreadable:" in text and "Malignant case (2).jpg: corrupt or truncated" in text
    assert "not an image:" in text and "notes.txt" in text
    assert "missing file:" in text and "Normal case (1).jpg" in text
    assert "changed file:" in text and "Bengin case (2).jpg" in text
    assert "missing file:" in text and "Bengin case (3).jpg" in text


def test_verify_cli_exit_codes_and_no_traceback(synth_release, tmp_path, capsys):
    ref_csv = tmp_path / "manifest.csv"
    _reference(synth_release).to_csv(ref_csv, index=False)
    assert cli.main(["-q", "verify", str(synth_release), "--manifest", str(ref_csv)]) == 0
    out = capsys.readouterr().out
    assert "images: 22 (benign 6, malignant 9, normal 7)" in out
    assert "exact duplicates (same bytes): 1 groups, 2 files" in out
    (synth_release / "Normal cases" / "junk.jpg").write_text("not a jpeg")
    assert cli.main(["-q", "verify", str(synth_release), "--manifest", str(ref_csv)]) == 1
    err = capsys.readouterr().err
    assert "junk.jpg" in err and "Traceback" not in err
    assert cli.main(["-q", "verify", str(tmp_path / "nowhere"), "--manifest", str(ref_csv)]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_manifest_cli_writes_reference_atomically(synth_release, tmp_path):
    out = tmp_path / "m.csv"
    assert cli.main(["-q", "manifest", str(synth_release), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["path", "label", "sha256", "width", "height", "mode"]
    assert len(table) == 22 and not list(tmp_path.glob(".m.csv.*"))


def test_cli_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2


@pytest.fixture
def reference_csv(synth_release, tmp_path):
    manifest, _ = scan_files(find_release(synth_release), progress=False)
    path = tmp_path / "manifest.csv"
    manifest.to_csv(path, index=False)
    return path


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_fetch_from_folder(synth_release, reference_csv, tmp_path):
    dest = tmp_path / "raw" / "iq-othnccd"
    assert fetch_release(str(synth_release), dest, False, reference_csv) == dest
    assert (dest / "Bengin cases" / "Bengin case (1).jpg").is_file()
    assert _leftovers(dest.parent) == []


def test_fetch_from_nested_zip(synth_release, reference_csv, tmp_path):
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in synth_release.rglob("*"):
            zf.write(
                f, "The IQ-OTHNCCD lung cancer dataset/" + f.relative_to(synth_release).as_posix()
            )
    dest = tmp_path / "raw" / "iq-othnccd"
    fetch_release(str(archive), dest, False, reference_csv)
    assert sorted(p.name for p in dest.iterdir()) == [
        "Bengin cases",
        "Malignant cases",
        "Normal cases",
        "README.txt",
    ]


def test_failed_fetch_leaves_nothing(synth_release, reference_csv, tmp_path):
    victim = synth_release / "Normal cases" / "Normal case (2).jpg"
    victim.write_bytes(victim.read_bytes()[:200])
    dest = tmp_path / "raw" / "iq-othnccd"
    with pytest.raises(DataError, match=r"Normal case \(2\)\.jpg: corrupt or truncated") as exc:
        fetch_release(str(synth_release), dest, False, reference_csv)
    assert "LUNGCT_DATA_SOURCE" in str(exc.value)
    assert not dest.exists() and _leftovers(dest.parent) == []


def test_bad_sources_say_what_to_do(tmp_path, reference_csv):
    with pytest.raises(DataError, match="does not exist.*doi:10.17632/bhmdr45bh2"):
        fetch_release(str(tmp_path / "none"), tmp_path / "d", False, reference_csv)
    text = tmp_path / "r.zip"
    text.write_text("no zip")
    with pytest.raises(DataError, match="must be a folder or a .zip"):
        fetch_release(str(text), tmp_path / "d", False, reference_csv)
    with pytest.raises(DataError, match="cannot download"):
        fetch_release("http://127.0.0.1:9/none.zip", tmp_path / "d", False, reference_csv)
    assert not (tmp_path / "d").exists()


def test_fetch_cli_reports_one_line(tmp_path, capsys):
    assert (
        cli.main(["-q", "fetch", "--source", str(tmp_path / "none"), "--dest", str(tmp_path / "d")])
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
