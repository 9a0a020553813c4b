"""``make data``: put the IQ-OTH/NCCD release into ``data/raw/iq-othnccd``, verified.

The source is ``$LUNGCT_DATA_SOURCE`` (a folder or a ``.zip`` of the release, or an
``http(s)`` URL of such a zip); without it, ``$LUNGCT_DATA_URL`` or the dataset's public
Mendeley download is tried. Everything is copied or unpacked into a temporary folder beside
the destination, verified file by file against ``data/manifest.csv``, and only then renamed
into place: a failed or partial fetch leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from .config import DATASET_DOI, DEFAULT_DATA_DIR, MANIFEST_CSV
from .data import read_reference, verify_release
from .io_utils import DataError, replace_dir

#: The public "download all" zip of the Mendeley record (version 1); override with
#: ``$LUNGCT_DATA_URL``.
PUBLIC_URL = "https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/bhmdr45bh2-1.zip"

HOW_TO_GET = (
    "Download 'The IQ-OTH/NCCD lung cancer dataset' (Mendeley Data, "
    f"{DATASET_DOI}, or the Kaggle copy 'iqothnccd-lung-cancer-dataset'), then either set "
    "LUNGCT_DATA_SOURCE=/path/to/the/folder-or-zip and run 'make data', or unpack it so "
    "that data/raw/iq-othnccd/ holds 'Bengin cases/', 'Malignant cases/' and 'Normal cases/'."
)


def _unpack_zip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"{archive}: corrupt zip member {bad!r}")
            for member in zf.namelist():
                target = (into / member).resolve()
                if not str(target).startswith(str(into.resolve())):
                    raise DataError(f"{archive}: unsafe path in zip: {member!r}")
            zf.extractall(into)
        # The Mendeley zip wraps a second zip of the images: unpack nested zips once.
        for nested in list(into.rglob("*.zip")):
            with zipfile.ZipFile(nested) as zf:
                zf.extractall(nested.parent)
            nested.unlink()
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a valid zip file ({exc})") from None


def _download(url: str, into: Path, progress: bool) -> Path:
    target = into / "download.zip"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(target, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="download", disable=not progress
            ) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as exc:
        raise DataError(f"cannot download {url} ({exc}). {HOW_TO_GET}") from None
    return target


def _stage(source: str, staging: Path, progress: bool) -> None:
    if source.startswith(("http://", "https://")):
        _unpack_zip(_download(source, staging, progress), staging)
        return
    path = Path(source).expanduser()
    if path.is_dir():
        shutil.copytree(path, staging / "release", copy_function=shutil.copyfile)
        for folder, _, _ in os.walk(staging / "release"):
            os.chmod(folder, 0o755)  # a read-only source would leave read-only folders
    elif path.is_file() and zipfile.is_zipfile(path):
        _unpack_zip(path, staging)
    elif path.exists():
        raise DataError(f"{path}: LUNGCT_DATA_SOURCE must be a folder or a .zip of the release")
    else:
        raise DataError(f"{path}: LUNGCT_DATA_SOURCE does not exist. {HOW_TO_GET}")


def fetch_release(
    source: str | None = None,
    dest: Path = DEFAULT_DATA_DIR,
    progress: bool = True,
    reference_csv: Path = MANIFEST_CSV,
) -> Path:
    """Copy, unpack or download the release into ``dest`` and verify it.

    Args:
        source: a folder, a zip or a URL; default ``$LUNGCT_DATA_SOURCE``, then
            ``$LUNGCT_DATA_URL``, then the public download.
        dest: the destination folder (``data/raw/iq-othnccd``).
        progress: show progress bars.
        reference_csv: the manifest to verify against (``data/manifest.csv``).

    Returns:
        ``dest``, holding exactly the files of ``data/manifest.csv``.

    Raises:
        DataError: no source is reachable, or what it holds does not verify; the message
            says what is wrong and what to download.
    """
    dest = Path(dest)
    reference = read_reference(reference_csv)
    if dest.exists() and verify_release(dest, reference, progress=False).ok:
        return dest
    source = source or os.environ.get("LUNGCT_DATA_SOURCE") or os.environ.get("LUNGCT_DATA_URL")
    source = source or PUBLIC_URL
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".fetch", dir=dest.parent))
    try:
        _stage(source, staging, progress)
        report = verify_release(staging, reference, progress=progress)
        if not report.ok:
            shown = "\n  ".join(report.problems[:20])
            more = len(report.problems) - 20
            extra = f"\n  ... and {more} more" if more > 0 else ""
            raise DataError(
                f"{source} does not match {reference_csv}:\n  {shown}{extra}\n{HOW_TO_GET}"
            )
        return replace_dir(report.root, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
