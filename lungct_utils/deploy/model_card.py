"""``reports/MODEL_CARD.md``, generated from ``metrics.json`` and the deployment figures.

The card's words live in ``templates/model_card.md`` (:func:`lungct_utils.prose.fill`); the
code chooses the passages, computes and formats the figures and builds the tables.
"""

from __future__ import annotations

import json
from functools import reduce
from pathlib import Path

from .. import config, external_summary, prose, tables
from ..audit import SHORTCUT_SIDE
from ..input_check import INPUT_CHECK_GOAL_CT
from ..io_utils import DataError, write_text
from ..report import results_table
from ..tables import goal_status, markdown, pct
from .export import INT8_GOAL_POINTS, int8_met

#: The pixel scaling of the shipped model, whose input-check figures the card states.
SHIPPED_SCALING = "mobilenet_v2"


def _say(key: str, /, **values) -> str:
    """One passage of ``templates/model_card.md``, filled."""
    return prose.fill("model_card", key, **values)


def _either(items: list[str]) -> str:
    """``a``, ``a or b``, ``a or b or c``."""
    return reduce(lambda rest, last: _say("either", rest=rest, last=last), items)


def _both(items: list[str]) -> str:
    """``a``, ``a and b``, ``a and b and c``."""
    return reduce(lambda rest, last: _say("both", rest=rest, last=last), items)


def head_text(final: dict) -> str:
    """The shipped head in words, from its setting (``beyond.selected.final``).

    Args:
        final: the shipped model's info (``head``, ``weighting``, ``C``, ``alpha``).

    Returns:
        A phrase such as "one Dense(3, softmax) layer: a multinomial logistic regression ...".
    """
    per_case = final.get("weighting") == "case"
    weights = _say("weights_per_case" if per_case else "weights_per_class")
    probe = _say("probe", C=final.get("C"))
    mlp = _say("mlp", alpha=final.get("alpha"))
    head = final.get("head", "linear")
    layers = _say(
        "head_mlp" if head == "mlp" else "head_ensemble" if head == "ensemble" else "head_linear",
        probe=probe,
        mlp=mlp,
    )
    return _say("head", layers=layers, weights=weights)


def _ci(selected: dict, key: str) -> str:
    """A figure of the selected recipe with its 95% interval.

    Args:
        selected: ``metrics["beyond"]["selected"]``.
        key: the metric, e.g. ``"macro_f1"`` (its interval is ``<key>_ci95``).

    Returns:
        Text such as "81.23 [78.00, 84.10]" (percent).
    """
    return tables.with_interval(selected[key], selected[f"{key}_ci95"])


def _model_lines(metrics: dict) -> list[str]:
    """The title, the provenance and the ``## Model`` section.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    final = metrics["beyond"]["selected"]["final"]
    shipped = metrics.get("external", {}).get("shipped", {})
    transfer = ""
    if shipped.get("selection", "").endswith("(09)"):
        transfer = " " + _say(
            "shipped_by_transfer_rule",
            recipe=shipped["recipe"],
            trained_on=shipped["trained_on"],
        )
    model = _say(
        "model",
        commit=metrics["git_commit"],
        seed=metrics["seed"],
        default_run=config.DEFAULT_RUN,
        recipe=final["recipe"],
        trained_on=final["trained_on"],
        nested_run=config.NESTED_RUN,
        transfer=transfer,
        head=head_text(final),
        prior=final["prior"],
        tta=_say("test_time_views") if final["tta"] else "",
    )
    return [model, ""]


def _intended_use(metrics: dict) -> list[str]:
    """The ``## Intended use`` section.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    outside = _say("scored_on_one_set" if "external" in metrics else "not_validated_outside")
    return [_say("intended_use", outside=outside), ""]


def _external_lines(metrics: dict) -> list[str]:
    """The ``## At another hospital`` section (none before notebook 09 has run).

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    if "external" not in metrics:
        return []
    part = metrics["external"]
    shipped = part["models"]["shipped model"]
    inside = dict((key, where) for key, _, where in external_summary.model_names(part))
    rows = {
        inside["shipped model"].removeprefix("on "): part["internal"]["shipped model"],
        "external, every distinct slice": shipped["metrics"],
        "external, slices the check accepts": shipped["metrics_accepted"],
    }
    text = _say(
        "external",
        model_sentence=external_summary.model_sentence(
            "shipped model",
            part["internal"]["shipped model"],
            shipped["metrics"],
            inside["shipped model"],
        ),
        check_sentence=external_summary.check_sentence(part),
        table=markdown(tables.metric_table(rows), index="set"),
    )
    goals = [line.removeprefix("  ") for line in external_summary.goal_lines(part["goals"])]
    return [text, "", *goals, ""]


def _data_lines(metrics: dict) -> list[str]:
    """The ``## Data and its limits`` section: counts, duplicates, reconstructed patients.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    audit, groups = metrics["audit"], metrics["cases"]["groups"]
    counts = metrics["dataset"]["original"]
    data = _say(
        "data",
        citation=config.DATASET_CITATION,
        total=sum(counts.values()),
        counts=", ".join(_say("count_of_class", n=counts[c], label=c) for c in config.CLASSES),
        duplicate_pairs=audit["exact_duplicate_groups"],
        links=audit["near_duplicate_links"],
        benign=groups["benign"],
        malignant=groups["malignant"],
        normal=groups["normal"],
    )
    return [data, ""]


def _performance_lines(metrics: dict) -> list[str]:
    """The ``## Honest performance`` section: nested-CV figures and every protocol's table.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    sel, honest = metrics["beyond"]["selected"], metrics["honest_cv"]["cases"]
    shipped = metrics.get("external", {}).get("shipped", {})
    which = ""
    if shipped.get("selection", "").endswith("(09)"):
        which = (
            _say("selected_not_shipped", nested_run=config.NESTED_RUN, recipe=shipped["recipe"])
            + " "
        )
    text = _say(
        "performance",
        selected_not_shipped=which,
        folds=honest["folds"],
        repeats=honest["repeats"],
        n_test=honest["n_test"],
        macro_f1=_ci(sel, "macro_f1"),
        balanced_accuracy=_ci(sel, "balanced_accuracy"),
        recall_benign=_ci(sel, "recall_benign"),
        table=markdown(results_table(metrics), index="protocol"),
    )
    return [text, ""]


def _deployment_lines(deployment: dict | None) -> list[str]:
    """The ``## Deployment`` table: size, latency and accuracy of each format.

    Args:
        deployment: ``<reports>/metrics/deployment.json`` or None.

    Returns:
        Markdown lines ending with an empty one; none without deployment figures.
    """
    if not deployment:
        return []
    lines = [
        _say("deployment"),
        "",
        "| format | size (MB) | latency 1 / 2 threads (ms) | accuracy (seen images) |",
        "|---|---:|---:|---:|",
    ]
    for name in ("keras", "tflite_float32", "tflite_int8"):
        r = deployment[name]
        lat = {str(k): f"{float(v):.1f}" for k, v in r["latency_ms"].items()}
        lines.append(
            f"| {name} | {r['size_mb']:.2f} | {lat.get('1', '-')} / "
            f"{lat.get('2', '-')} | {100 * r['accuracy']:.2f}% |"
        )
    return [*lines, ""]


def _failure_lines(metrics: dict) -> list[str]:
    """The ``## Known failure modes`` section.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    sel, audit = metrics["beyond"]["selected"], metrics["audit"]
    text = _say(
        "failures",
        recall_benign=_ci(sel, "recall_benign"),
        ece=pct(sel["ece"]),
        side=SHORTCUT_SIDE,
        thumbnail=pct(audit["thumbnail_shortcut_balanced_accuracy"]),
        shape=pct(audit["shape_shortcut_balanced_accuracy"]),
        chance=pct(1 / len(config.CLASSES)),
        elsewhere=_elsewhere(metrics),
    )
    return [text, ""]


def _elsewhere(metrics: dict) -> str:
    """The failure-mode bullet on other hospitals: measured on one set, or not at all.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        The bullet's text after its bold title.
    """
    if "external" not in metrics:
        return _say("elsewhere_not_scored")
    facts = metrics["external"]["set"]
    return _say(
        "elsewhere_one_set",
        distinct=facts["distinct slices"],
        proxies=facts["case proxies"],
    )


def corpus_passes(check: dict, scaling: str = SHIPPED_SCALING) -> list[str] | None:
    """Each non-CT corpus item that passes the nested input check in any outer fold.

    Args:
        check: ``metrics["input_check"]``; the counts are its ``"corpus_passed"``:
            ``{"folds": n, "items": {scaling: {part: {item name: folds passed}}}}``.
        scaling: the pixel scaling whose check counts.

    Returns:
        Phrases ``"<item> (<part> part): k of n folds"``, most folds first; None when
        ``metrics.json`` does not record the counts.
    """
    passed = check.get("corpus_passed")
    if passed is None:
        return None
    rows = [
        (k, name, part)
        for part, by_name in passed["items"].get(scaling, {}).items()
        for name, k in by_name.items()
        if k > 0
    ]
    return [
        _say("corpus_item_passes", name=name, part=part, k=k, folds=passed["folds"])
        for k, name, part in sorted(rows, key=lambda r: (-r[0], r[1]))
    ]


def _shipped_corpus(metrics: dict) -> str:
    """What the shipped model's full check (notebook 09) does with the held-out corpus.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        A sentence with a leading space (empty before notebook 09 has run).
    """
    check = metrics.get("external", {}).get("input_check", {})
    verdicts = check.get("corpus_held_out")
    if not verdicts:
        return ""
    total, refused = sum(verdicts.values()), verdicts.get("not_ct", 0)
    refuses = _say("shipped_check_refuses", refused=refused, total=total)
    if refused == total:
        return " " + _say("shipped_check_refuses_all", refuses=refuses)
    kept = ", ".join(
        _say("verdict_count", verdict=v, n=n) for v, n in verdicts.items() if v != "not_ct"
    )
    names = check.get("corpus_not_refused")
    which = (
        "; ".join(_say("named_verdict", name=name, verdict=v) for name, v in names.items())
        if names
        else _say("which_not_recorded")
    )
    text = _say(
        "shipped_check_keeps_some", refuses=refuses, kept_n=total - refused, kept=kept, which=which
    )
    return " " + text


def _corpus_lines(metrics: dict) -> list[str]:
    """The bullet on non-CT images that pass the input check, per part and per item.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines (none before notebook 04 has measured the check).
    """
    if "input_check" not in metrics:
        return []
    check = metrics["input_check"]
    counts = []
    for part in ("design", "held-out"):
        r = check["rates"][f"not CT, {part} part"][SHIPPED_SCALING]
        counts.append(
            _say(
                "corpus_part_passes",
                passed=r["rows"] - r["flagged"],
                rows=r["rows"],
                part=part,
                units=r["units"],
                folds=r["rows"] // r["units"],
            )
        )
    items = corpus_passes(check)
    if items is None:
        named = _say("items_not_recorded")
    else:
        named = _say("items_that_pass", items="; ".join(items) or _say("no_item"))
    bullet = _say(
        "corpus_passes", counts=_both(counts), named=named, shipped=_shipped_corpus(metrics)
    )
    return [bullet]


def _ct_flag_lines(metrics: dict) -> list[str]:
    """The bullet on new patients' CT slices the check flags: the interval, not the estimate.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines (none before notebook 04 has measured the check).
    """
    if "input_check" not in metrics:
        return []
    ct = metrics["input_check"]["rates"]["held-out CT originals"][SHIPPED_SCALING]
    high = ct["ci95"][1]
    status = goal_status(
        {"met": ct["rate"] <= INPUT_CHECK_GOAL_CT, "shown": high <= INPUT_CHECK_GOAL_CT}
    )
    full_check = ""
    verdicts = metrics.get("external", {}).get("input_check", {}).get("held_out_patients", {})
    if verdicts.get("verdicts"):
        v = verdicts["verdicts"]
        full_check = " " + _say(
            "full_check_on_patients",
            refused=v.get("not_ct", 0),
            warned=v.get("ct_unlike_training", 0),
            total=sum(v.values()),
        )
    text = _say(
        "ct_flagged",
        rate=tables.with_interval(ct["rate"], ct["ci95"]),
        flagged=ct["flagged"],
        rows=ct["rows"],
        high=pct(high),
        goal=pct(INPUT_CHECK_GOAL_CT, 0),
        status=status,
        full_check=full_check,
    )
    return [text]


def int8_change(result: dict) -> float:
    """The int8 file's accuracy minus the float32 file's, in points.

    Args:
        result: ``deployment.json`` (``tflite_int8`` and ``tflite_float32`` with ``accuracy``).

    Returns:
        The change (negative: int8 is worse).
    """
    return 100 * (result["tflite_int8"]["accuracy"] - result["tflite_float32"]["accuracy"])


def int8_status(change: float) -> str:
    """``"met"`` when the int8 file loses at most :data:`INT8_GOAL_POINTS`, else
    ``"SHORTFALL"``.

    Args:
        change: from :func:`int8_change`.

    Returns:
        The status.
    """
    return "met" if int8_met(change) else "SHORTFALL"


def _study_int8(study: dict | None, deployment: dict) -> str:
    """The int8 goal over the deployment study's representative draws.

    Args:
        study: ``deployment_study.json`` or None.
        deployment: ``deployment.json`` (the file the card describes).

    Returns:
        A sub-bullet.
    """
    rows = (study or {}).get("_calibration_study")
    if not rows:
        return _say("study_not_measured")
    ref = next(r for r in rows if r["calibration"] == "float32")
    changes = [100 * (r["test_accuracy"] - ref["test_accuracy"]) for r in rows if r is not ref]
    n = len(changes)
    missed = sum(int8_status(c) != "met" for c in changes)
    status = (
        _say("missed_in_some_draws", missed=missed, draws=n)
        if missed
        else _say("met_in_every_draw")
    )
    at, here = study["_meta"].get("git_commit", ""), deployment["_meta"].get("git_commit", "")
    at_commit = ""
    # a study run between make report and its commit carries the card's commit, "+dirty"
    if at.removesuffix("+dirty") != here.removesuffix("+dirty"):
        dirty = " " + _say("with_uncommitted_changes") if at.endswith("+dirty") else ""
        ours, theirs = (
            pct(r) for r in (deployment["tflite_float32"]["accuracy"], ref["test_accuracy"])
        )
        at_commit = " " + _say(
            "study_at_commit_scoring_the_same" if ours == theirs else "study_at_another_commit",
            commit=at[:7],
            dirty=dirty,
            here=here[:7],
            theirs=theirs,
            ours=ours,
        )
    return _say(
        "study",
        draws=_say("n_draws" if n > 1 else "one_draw", n=n),
        status=status,
        mean=sum(changes) / n,
        worst=min(changes),
        at_commit=at_commit,
    )


def _int8_lines(deployment: dict | None, study: dict | None) -> list[str]:
    """The bullet on the int8 file against its goal: one draw, then the study's draws.

    Args:
        deployment: ``deployment.json`` or None.
        study: ``deployment_study.json`` or None.

    Returns:
        Markdown lines (none without deployment figures).
    """
    if not deployment or "tflite_int8" not in deployment:
        return []
    change, meta = int8_change(deployment), deployment["_meta"]
    n = meta["test_images"]
    bullet = _say(
        "int8",
        goal=INT8_GOAL_POINTS,
        status=int8_status(change),
        change=change,
        n=n,
        protocol=meta["protocol"],
        image=100 / n,
    )
    return [bullet, _study_int8(study, deployment)]


def _limit_lines(metrics: dict, deployment: dict | None, study: dict | None) -> list[str]:
    """The ``## Measured limits`` section: the input check's misses, the int8 file's.

    Args:
        metrics: the ``metrics.json`` dict.
        deployment: ``deployment.json`` or None.
        study: ``deployment_study.json`` or None.

    Returns:
        Markdown lines ending with an empty one; none when nothing is measured.
    """
    lines = [*_corpus_lines(metrics), *_ct_flag_lines(metrics), *_int8_lines(deployment, study)]
    return [_say("limits"), "", *lines, ""] if lines else []


def _unmeasured_lines(metrics: dict) -> list[str]:
    """The ``## Not measured`` section: what no figure of the card covers.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines, ending with an empty one.
    """
    external = metrics.get("external")
    if not external:
        outside = _say("outside_training_hospital")
    else:
        classes = external["set"]["classes"]
        missing = [c for c in config.CLASSES if not classes.get(c)]
        outside = (
            _say(
                "outside_one_external_set_missing_classes",
                either=_either(missing),
                both=_both(missing),
            )
            if missing
            else _say("outside_one_external_set")
        )
    corpus = metrics.get("input_check", {}).get("corpus", {})
    size = sum(sum(by_kind.values()) for by_kind in corpus.values())
    return [_say("unmeasured", outside=outside, size=size), ""]


def render(metrics: dict, deployment: dict | None, study: dict | None = None) -> str:
    """The model card text.

    Args:
        metrics: the ``metrics.json`` dict.
        deployment: ``<reports>/metrics/deployment.json`` or None.
        study: ``<reports>/metrics/deployment_study.json`` or None.

    Returns:
        Markdown.
    """
    lines = [
        *_model_lines(metrics),
        *_intended_use(metrics),
        *_data_lines(metrics),
        *_performance_lines(metrics),
        *_external_lines(metrics),
        *_deployment_lines(deployment),
        *_failure_lines(metrics),
        *_limit_lines(metrics, deployment, study),
        *_unmeasured_lines(metrics),
    ]
    return "\n".join(lines)


#: The deployment figures the card reads, under ``<reports>/metrics/``.
DEPLOYMENT_PARTS = ("deployment", "deployment_study")


def _optional(path: Path) -> dict | None:
    """A JSON file's content, or None when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


def main(folder: Path | None = None) -> str:
    """Write ``MODEL_CARD.md`` from ``metrics.json`` (and the deployment figures, if any).

    Args:
        folder: the reports folder (default: this run's).

    Returns:
        The text.
    """
    folder = Path(folder or config.reports_dir())
    path = folder / "metrics.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; run make report first")
    deployment, study = (_optional(folder / "metrics" / f"{n}.json") for n in DEPLOYMENT_PARTS)
    text = render(json.loads(path.read_text()), deployment, study)
    write_text(text, folder / "MODEL_CARD.md")
    return text
