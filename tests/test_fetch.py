import zipfile

import pytest

from lungct_utils import cli
from lungct_utils.dataset import find_release, scan_files
from lungct_utils.errors import DataError
from lungct_utils.fetch import fetch_release


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
