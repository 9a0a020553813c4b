"""``python -m lungct_utils predict``: classify new images with a trained model.

Reads JPEG and PNG of any size (8 or 16 bit; grayscale, RGB, RGBA, palette, CMYK) and DICOM
CT slices. DICOM pixel data becomes Hounsfield units with the file's RescaleSlope and
RescaleIntercept, then a window maps it to 8-bit grey: by default the **lung window**
(centre -600 HU, width 1500 HU); ``--window CENTER,WIDTH`` sets another. Pixel data that
cannot be a chest CT slice in HU (no value below -500 HU, while air outside the body is
about -1000 HU, or a range under half the window: a picture converted to DICOM) is scaled
from its own minimum and maximum instead, like a 16-bit PNG, unless ``--window`` is given.
(The training JPEGs were read with windows of width 350-1200 and centre 50-600 HU, per the
dataset's description, so a lung-windowed slice can look unusual to the model; how the model
and the input check answer it is not measured: see the model card.) 16-bit PNGs are scaled
from their own minimum and maximum to 0-255; RGBA is composited on black.

Every image then goes through the paper's preprocessing (RGB, 224x224 bilinear, /255 or the
model's own scaling), the model gives three probabilities, and the input check
(:mod:`lungct_utils.input_check`) asks two questions: is it a CT slice at all (if not: verdict
``not_ct``, refused, no class), and is it like the training hospital's slices (if not:
``ct_unlike_training``, the class is kept with a warning). With ``--study``, each folder is
one patient's study (DICOM files found by their header, whatever their name) and gets one
answer from the slices that are not refused, or none when fewer than 3 or fewer than half of
them pass (:func:`study_row`). An unreadable file gets one line naming it and why; the
others go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pydicom
from PIL import Image
from pydicom.errors import InvalidDicomError

from .. import input_check, shift
from ..audit import views
from ..config import CLASSES, PAPER
from ..evaluate import mean_log_prob, study_probabilities
from ..images import decoded, min_max_uint8, resize_rgb, scale, to_rgb
from ..io_utils import DataError, atomic_path, write_csv, write_text
from ..model import model_info
from . import gradcam

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
LUNG_WINDOW = (-600.0, 1500.0)
#: What a model's inputs are (its sidecar's ``input``): resized slices, or resized then
#: standardised (:func:`lungct_utils.shift.standardised`).
INPUTS = ("resized", "standardised")


def is_dicom(path: Path) -> bool:
    """True for ``.dcm``/``.dicom`` files and files with the DICOM preamble marker."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def window_to_uint8(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map Hounsfield units through a window to 0-255.

    Args:
        hu: values in HU.
        center: window centre.
        width: window width (> 0).

    Returns:
        uint8 array of the same shape.
    """
    if not width > 0:
        raise ValueError(f"window width must be > 0, got {width!r}")
    low = center - width / 2
    return np.clip((hu - low) / width * 255.0, 0, 255).round().astype(np.uint8)


def hounsfield_like(hu: np.ndarray, window: tuple[float, float] = LUNG_WINDOW) -> bool:
    """Whether values can be a chest CT slice in HU, to be shown through ``window``.

    Args:
        hu: the slice after RescaleSlope and RescaleIntercept.
        window: the default window ``(centre, width)``.

    Returns:
        True when some value is air (below -500 HU) and the values span at least half
        the window's width.
    """
    return float(hu.min()) < -500 and float(np.ptp(hu)) >= window[1] / 2


def read_dicom(path: Path, window: tuple[float, float] | None = None) -> Image.Image:
    """A DICOM CT slice as an 8-bit RGB image (HU, then the window).

    Args:
        path: the file.
        window: ``(centre, width)`` in HU; None: the lung window, or min-max scaling for
            values that are not HU of a chest CT (:func:`hounsfield_like`).

    Returns:
        RGB Pillow image.

    Raises:
        DataError: not a readable single-frame DICOM image.
    """
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array.astype(np.float64)
    except InvalidDicomError:
        raise DataError(f"{path}: not a valid DICOM file") from None
    except (AttributeError, KeyError):
        raise DataError(f"{path}: DICOM file has no image data") from None
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode DICOM pixel data ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable DICOM file ({exc})") from None
    if pixels.ndim != 2:
        raise DataError(f"{path}: DICOM pixel data has shape {pixels.shape}; pass one 2-D slice")
    hu = pixels * float(getattr(ds, "RescaleSlope", 1) or 1) + float(
        getattr(ds, "RescaleIntercept", 0) or 0
    )
    if window is None and not hounsfield_like(hu):
        grey = min_max_uint8(hu)
    else:
        grey = window_to_uint8(hu, *(window or LUNG_WINDOW))
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, mode="L").convert("RGB")


def read_image(path: Path, window: tuple[float, float] | None = None) -> Image.Image:
    """Read any supported file as an RGB image.

    Args:
        path: JPEG, PNG or DICOM file.
        window: DICOM window ``(centre, width)``; None: automatic (:func:`read_dicom`).

    Returns:
        RGB Pillow image (original size).

    Raises:
        DataError: missing, empty, unsupported, corrupt or too large.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size > 0 and is_dicom(path):
        return read_dicom(path, window)
    with decoded(path) as img:
        fmt = img.format
        if fmt in ("JPEG", "PNG"):
            return to_rgb(img)
    raise DataError(f"{path}: unsupported format {fmt} (use JPEG, PNG or DICOM)")


def collect(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively) into the files to predict.

    A folder's DICOM files are found by their header too (``DICM`` at byte 128, as
    :func:`is_dicom`): scanners often write ``IM0001`` or ``slice.001``. Only files whose
    suffix is not an image or DICOM suffix are opened, and only their first 132 bytes read.
    A ``DICOMDIR`` (the index of DICOM media: no image) is left out.

    Args:
        paths: command-line paths.

    Returns:
        ``(files, problems)``: folders contribute their JPEG, PNG and DICOM files (sorted;
        hidden files and other files are left out); a named file is taken as it is; a
        missing path is a problem.
    """
    known = IMAGE_SUFFIXES | DICOM_SUFFIXES
    files, problems = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and p.name.upper() != "DICOMDIR"
                and (p.suffix.lower() in known or is_dicom(p))
            )
            if not found:
                problems.append((path, "folder holds no JPEG, PNG or DICOM files"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append((path, "no such file or folder"))
    return files, problems


@dataclass
class Predictor:
    """A loaded end-to-end model with its feature output and OOD reference.

    Args:
        model_path: a ``.keras`` model saved by the training notebook.
    """

    model_path: Path

    def __post_init__(self) -> None:
        path = Path(self.model_path)
        if not path.is_file():
            raise DataError(f"{path}: model not found (train it with notebooks/03_training.ipynb)")
        try:
            self.model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot load the model ({exc})") from None
        try:
            pooled = self.model.get_layer("global_average_pooling").output
        except ValueError:
            raise DataError(
                f"{path}: not a lungct model (no global_average_pooling layer; "
                "build it with lungct_utils.model.build_model)"
            ) from None
        self._both = keras.Model(self.model.inputs, [self.model.output, pooled])
        ref_path = input_check.path_for(path)
        self.ood_ref = input_check.load(ref_path) if ref_path.is_file() else None
        self.image_size = int(self.model.input_shape[1])
        info = model_info(path)
        # the pixel scaling it was trained with, and whether it averages over views (TTA)
        self.mode = info.get("params", {}).get("preprocess", PAPER.preprocess)
        self.tta = bool(info.get("tta", False))
        # "standardised": framed to the body, stretched inside it (shift.standardise, 09)
        self.input = info.get("input", "resized")
        if self.input not in INPUTS:
            raise DataError(
                f"{path}: unknown input {self.input!r} in its sidecar (one of {INPUTS})"
            )

    def __call__(self, images: list[Image.Image]) -> tuple[np.ndarray, pd.DataFrame]:
        """Probabilities and input checks of RGB images.

        With test-time augmentation the probabilities average the log-probabilities of the
        image's views (mirror, small rotations): for the linear probe this is exactly the
        prediction from the views' mean feature.

        Args:
            images: RGB Pillow images.

        Returns:
            ``(probs (n, 3), checks)``: ``checks`` has ``ct_score``, ``layout_distance``,
            ``feature_distance`` (NaN without a reference), ``verdict`` (``ok``,
            ``ct_unlike_training``, ``not_ct``) and ``reason``, "" for an ordinary CT slice
            (:func:`~lungct_utils.input_check.reasons`).
        """
        resized = self.inputs(images)
        probs, feats = self._both.predict(scale(resized, self.mode), batch_size=32, verbose=0)
        if self.tta:
            members = [probs] + [
                self.model.predict(scale(view, self.mode), batch_size=32, verbose=0)
                for view in views(resized)
            ]
            probs = mean_log_prob(members).astype(probs.dtype)
        return probs, self.check(images, resized, feats)

    def inputs(self, images: list[Image.Image]) -> np.ndarray:
        """The model inputs of RGB images: resized, or standardised when it was trained so.

        Args:
            images: RGB Pillow images at their own size.

        Returns:
            uint8 ``(n, s, s, 3)``.
        """
        resized = np.stack([resize_rgb(img, self.image_size) for img in images])
        return shift.standardised(resized) if self.input == "standardised" else resized

    def check(self, images: list[Image.Image], resized: np.ndarray, feats: np.ndarray):
        """The layered input check (:mod:`~lungct_utils.input_check`) of images.

        Args:
            images: the RGB images as read.
            resized: uint8 ``(n, s, s, 3)`` model inputs.
            feats: their pooled backbone features.

        Returns:
            DataFrame ``ct_score, layout_distance, feature_distance, verdict, reason``.
        """
        if self.ood_ref is None:
            dist = pd.DataFrame(
                np.nan, index=range(len(images)), columns=list(input_check.CHECK_COLUMNS)
            )
            why = input_check.reasons(images, None, None)
        else:
            dist = input_check.distances(feats, input_check.layouts(resized), self.ood_ref)
            why = input_check.reasons(images, dist, self.ood_ref)
        return dist.assign(verdict=[input_check.verdict(r) for r in why], reason=why)


def _predicted_rows(
    predictor: Predictor, pending: list[tuple[Path, Image.Image]], gradcam_dir: Path | None
) -> list[dict]:
    """Predict one batch of read images and make their rows.

    Args:
        predictor: a loaded :class:`Predictor`.
        pending: ``(path, RGB image)`` pairs, one model call's worth.
        gradcam_dir: write ``<stem>_gradcam.png`` overlays here when given.

    Returns:
        One row per image, in ``pending`` order (see :func:`predict_files`).
    """
    if not pending:
        return []
    probs, checks = predictor([img for _, img in pending])
    rows = []
    for k, (path, img) in enumerate(pending):
        check = checks.iloc[k]
        # a slice that is not CT gets no class; p_* stay as the network's raw output (audit)
        refused = check["verdict"] == "not_ct"
        row = {"path": str(path), "prediction": "" if refused else CLASSES[int(probs[k].argmax())]}
        row.update({f"p_{c}": float(probs[k, i]) for i, c in enumerate(CLASSES)})
        for name in input_check.CHECK_COLUMNS:
            row[name] = float(check[name])
        row["verdict"] = check["verdict"]
        row["reason"] = check["reason"]
        row["error"] = ""
        if gradcam_dir is not None:
            row["gradcam"] = str(write_gradcam(predictor, img, path, Path(gradcam_dir)))
        rows.append(row)
    return rows


def predict_files(
    predictor: Predictor,
    files: list[Path],
    window: tuple[float, float] | None = None,
    gradcam_dir: Path | None = None,
    batch: int = 32,
) -> pd.DataFrame:
    """Predict every file; unreadable ones get a row with their error.

    Args:
        predictor: a loaded :class:`Predictor`.
        files: the files.
        window: DICOM window.
        gradcam_dir: write ``<stem>_gradcam.png`` overlays here when given.
        batch: images per model call.

    Returns:
        DataFrame ``path, prediction, p_benign, p_malignant, p_normal, ct_score,
        layout_distance, feature_distance, verdict, reason, error``: ``verdict`` is the
        input check's (``ok``, ``ct_unlike_training``, ``not_ct``), ``reason`` says which
        layer and why; a ``not_ct`` slice has no ``prediction`` (its ``p_*`` are the
        network's raw output, kept for audit).
    """
    rows: list[dict] = []
    pending: list[tuple[Path, Image.Image]] = []
    for path in files:
        try:
            pending.append((path, read_image(path, window)))
        except DataError as exc:
            rows.append(
                {"path": str(path), "prediction": "", "error": str(exc).removeprefix(f"{path}: ")}
            )
        if len(pending) >= batch:
            rows += _predicted_rows(predictor, pending, gradcam_dir)
            pending = []
    rows += _predicted_rows(predictor, pending, gradcam_dir)
    if not rows:
        return pd.DataFrame(columns=["path", "prediction", "error"])
    order = {str(p): i for i, p in enumerate(files)}
    frame = pd.DataFrame(rows)
    return frame.sort_values("path", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True
    )


def study_row(
    frame: pd.DataFrame, study: Path, min_slices: int = 3, min_share: float = 0.5
) -> dict:
    """One patient's answer from its slices' rows (one study = one folder).

    A slice *passes* when it was read and its verdict is not ``not_ct``; slices unlike the
    training ones (``ct_unlike_training``) pass with a warning. The study gets an answer
    only when at least ``min_slices`` slices and at least ``min_share`` of all its slices
    pass; the class and probabilities are then the mean log-probability over the passing
    slices (:func:`~lungct_utils.evaluate.study_probabilities`). Refused and unreadable
    slices are counted, never used.

    Args:
        frame: :func:`predict_files` rows of the study's slices.
        study: the study's folder.
        min_slices: the fewest passing slices that give an answer (>= 1).
        min_share: the smallest share of the study's slices (unreadable ones included)
            that must pass, in (0, 1].

    Returns:
        ``study, prediction, p_benign, p_malignant, p_normal, slices, slices_used,
        slices_refused, slices_unlike, slices_unreadable, verdict, reason``:
        ``slices_used`` are the passing slices, ``slices_refused`` the ``not_ct`` ones,
        ``slices_unlike`` the ``ct_unlike_training`` ones among the used. Without an
        answer, ``prediction`` and ``verdict`` are "", the p_* NaN and ``reason`` says why;
        with one, ``verdict`` is ``ct_unlike_training`` when any used slice is unlike the
        training slices (``reason`` says how many), else ``ok`` (``reason`` "").

    Raises:
        ValueError: bad ``min_slices`` or ``min_share``; read slices' rows without a
            ``verdict`` or p_* column, or with an unknown verdict.
    """
    if isinstance(min_slices, bool) or not isinstance(min_slices, int) or min_slices < 1:
        raise ValueError(f"min_slices must be an integer >= 1, got {min_slices!r}")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], got {min_share!r}")
    if len(frame) and "error" not in frame:
        raise ValueError(f"frame needs an 'error' column, got columns {list(frame.columns)!r}")
    read = frame[frame["error"] == ""] if len(frame) else frame.iloc[0:0]
    missing = [c for c in ("verdict", *(f"p_{c}" for c in CLASSES)) if c not in read]
    if len(read) and missing:
        raise ValueError(f"the read slices' rows lack the columns {missing!r}")
    verdicts = read["verdict"] if len(read) else pd.Series([], dtype=object)
    unknown = sorted(set(map(str, verdicts)) - set(input_check.VERDICTS))
    if unknown:
        raise ValueError(f"unknown verdicts {unknown!r} (expected one of {input_check.VERDICTS!r})")
    used = read[(verdicts != "not_ct").to_numpy(bool)]
    unlike = int((verdicts == "ct_unlike_training").sum())
    row = {"study": str(study), "prediction": "", **{f"p_{c}": np.nan for c in CLASSES}}
    row.update(
        slices=len(frame),
        slices_used=len(used),
        slices_refused=len(read) - len(used),
        slices_unlike=unlike,
        slices_unreadable=len(frame) - len(read),
        verdict="",
        reason="",
    )
    if not len(frame):
        row["reason"] = "the study has no slices"
        return row
    if len(used) < min_slices or len(used) < min_share * len(frame):
        share = "half" if min_share == 0.5 else f"{min_share:.0%}"
        row["reason"] = (
            f"{len(used)} of {len(frame)} slices passed the input check "
            f"(a study needs at least {min_slices} and at least {share})"
        )
        return row
    probs = study_probabilities(used[[f"p_{c}" for c in CLASSES]].to_numpy(float))
    row.update({f"p_{c}": float(probs[i]) for i, c in enumerate(CLASSES)})
    row["prediction"] = CLASSES[int(probs.argmax())]
    row["verdict"] = "ct_unlike_training" if unlike else "ok"
    if unlike:
        row["reason"] = f"{unlike} of {len(used)} used slices unlike the training slices"
    return row


def format_study(row: dict) -> str:
    """The on-screen line of a study: its answer (or why none) and its slice counts.

    Args:
        row: from :func:`study_row`.

    Returns:
        Text; a study whose used slices include some unlike the training slices ends with
        a warning.
    """
    used = "used" if row["prediction"] else "passed"
    counts = (
        f"{row['slices_used']} of {row['slices']} slices {used}, {row['slices_refused']} "
        f"refused (not CT), {row['slices_unreadable']} unreadable, {row['slices_unlike']} "
        "unlike the training slices"
    )
    if not row["prediction"]:
        return f"study {row['study']}: NO ANSWER ({row['reason']}; {counts})"
    probs = ", ".join(f"{c} {row[f'p_{c}']:.3f}" for c in CLASSES)
    line = f"study {row['study']}: {row['prediction']} ({probs}; {counts})"
    if row["verdict"] == "ct_unlike_training":
        line += f"  WARNING (unlike the training slices): {row['reason']}"
    return line


def write_gradcam(predictor: Predictor, img: Image.Image, path: Path, out_dir: Path) -> Path:
    """Write the Grad-CAM overlay of one image (at its original size).

    Args:
        predictor: the loaded model.
        img: the RGB image.
        path: its source file (names the output).
        out_dir: target folder.

    Returns:
        The PNG path.
    """
    if not hasattr(predictor, "_grad"):
        predictor._grad = gradcam.grad_model(predictor.model)
    x = scale(predictor.inputs([img])[0], predictor.mode)
    cam = gradcam.heatmap(predictor._grad, x)
    target = Path(out_dir) / f"{path.stem}_gradcam.png"
    with atomic_path(target) as tmp:
        gradcam.overlay(img, cam).save(tmp, format="PNG")
    return target


def format_table(frame: pd.DataFrame) -> str:
    """The on-screen table: path, class, probabilities and the input check, or the error.

    A ``not_ct`` slice shows no class or probabilities, only ``REFUSED (not a CT slice)``
    and its reason; a ``ct_unlike_training`` slice its class and probabilities with
    ``WARNING (unlike the training slices)`` and its reason; an ``ok`` slice ``ok``.

    Args:
        frame: from :func:`predict_files`.

    Returns:
        Text.

    Raises:
        ValueError: a read slice's verdict is not one of :data:`~lungct_utils.input_check.VERDICTS`.
    """
    lines = [f"{'path':<50} {'class':<10} {'benign':>7} {'malig.':>7} {'normal':>7}  input check"]
    for r in frame.itertuples():
        name = r.path if len(r.path) <= 50 else "..." + r.path[-47:]
        if r.error:  # the message itself goes to stderr, once
            lines.append(f"{name:<50} ERROR: not predicted")
            continue
        verdict = getattr(r, "verdict", None)
        if verdict not in input_check.VERDICTS:
            raise ValueError(
                f"{r.path}: unknown verdict {verdict!r} (expected one of {input_check.VERDICTS!r})"
            )
        if verdict == "not_ct":  # the p_* are the network's raw output, not an answer
            blank = f"{'-':<10} {'-':>7} {'-':>7} {'-':>7}"
            lines.append(f"{name:<50} {blank}  REFUSED (not a CT slice): {r.reason}")
            continue
        flag = "ok" if verdict == "ok" else f"WARNING (unlike the training slices): {r.reason}"
        probs = f"{r.p_benign:7.3f} {r.p_malignant:7.3f} {r.p_normal:7.3f}"
        lines.append(f"{name:<50} {r.prediction:<10} {probs}  {flag}")
    return "\n".join(lines)


def save_results(frame: pd.DataFrame, output: Path, studies: pd.DataFrame | None = None) -> Path:
    """Save results as CSV or JSON (by suffix), atomically.

    Without studies, one record per slice. With studies, JSON holds ``{"studies": [...],
    "slices": [...]}`` and CSV one row per slice and per study, told apart by ``level``.
    Every record carries its ``verdict``: a slice's input check (``ok``,
    ``ct_unlike_training``, ``not_ct``; "" for an unreadable file) and a study's
    (:func:`study_row`; "" without an answer).

    Args:
        frame: from :func:`predict_files` (with a ``study`` column for studies).
        output: ``.csv`` or ``.json`` path.
        studies: from :func:`study_row`, one row per study, or None.

    Returns:
        ``output``.

    Raises:
        ValueError: ``output`` is neither ``.csv`` nor ``.json``.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"--output must end in .csv or .json, got {str(output)!r}")
    # unreadable files have no verdict (and a frame of only those no column)
    verdict = frame["verdict"].fillna("") if "verdict" in frame else ""
    frame = frame.assign(verdict=verdict)
    if studies is not None:
        verdict = studies["verdict"].fillna("") if "verdict" in studies else ""
        studies = studies.assign(verdict=verdict)
    if suffix == ".csv":
        if studies is not None:
            # counts stay integers ("6", not "6.0") beside the slice rows that have none
            counts = {c: "Int64" for c in studies.columns if c.startswith("slices")}
            frame = pd.concat(
                [
                    frame.assign(level="slice"),
                    studies.astype(counts)
                    .rename(columns={"study": "path"})
                    .assign(level="study", study=studies["study"]),
                ],
                ignore_index=True,
            )
        write_csv(frame, output)
        return output
    records = json.loads(frame.to_json(orient="records"))
    if studies is not None:
        records = {"studies": json.loads(studies.to_json(orient="records")), "slices": records}
    write_text(json.dumps(records, indent=2) + "\n", output)
    return output


def gradcam_examples(
    predictor: Predictor, images: np.ndarray, labels, n: int = 3, seed: int = 0
) -> list[tuple]:
    """Grad-CAM overlays of ``n`` correctly and ``n`` wrongly classified images.

    Args:
        predictor: a loaded model.
        images: uint8 ``(m, s, s, 3)`` test images.
        labels: their true labels.
        n: examples of each kind.
        seed: sampling seed.

    Returns:
        ``(image, overlay, title)`` tuples for :func:`~lungct_utils.plots.image_pairs`.
    """
    pil = [Image.fromarray(img) for img in images]
    probs, _ = predictor(pil)
    pred = np.array(CLASSES)[probs.argmax(1)]
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picks = []
    for mask in (pred == labels, pred != labels):
        idx = np.flatnonzero(mask)
        picks += list(rng.permutation(idx)[:n])
    grad = gradcam.grad_model(predictor.model)
    out = []
    for i in picks:
        cam = gradcam.heatmap(grad, scale(images[i], predictor.mode))
        verdict = "correct" if pred[i] == labels[i] else "WRONG"
        out.append(
            (
                images[i],
                np.asarray(gradcam.overlay(pil[i], cam)),
                f"true {labels[i]}, predicted {pred[i]} ({verdict})",
            )
        )
    return out


def gradcam_overlays(predictor: Predictor, images: list[Image.Image]) -> list[Image.Image]:
    """Grad-CAM overlays of images for the class the model calls.

    Args:
        predictor: a loaded model.
        images: RGB Pillow images.

    Returns:
        One overlay per image, at its own size.
    """
    grad = gradcam.grad_model(predictor.model)
    inputs = predictor.inputs(images)
    return [
        gradcam.overlay(img, gradcam.heatmap(grad, scale(x, predictor.mode)))
        for img, x in zip(images, inputs, strict=True)
    ]
