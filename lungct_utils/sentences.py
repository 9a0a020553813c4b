"""The sentences the notebooks render: numbers in, one Markdown sentence out.

Each function turns numbers into a sentence whose words follow the numbers; a notebook shows
it with ``display(Markdown(...))``, so no notebook prose states a result or a setting that a
rerun could contradict. The words live in ``templates/sentences.md``
(:func:`lungct_utils.prose.fill`); the code checks the numbers, chooses the passage they
select and formats the figures. Every function is pure.
"""

from __future__ import annotations

import math

from . import config, prose, tables
from .config import PAPER_EPOCHS, PAPER_TABLE_III
from .tables import pct

#: A count at least this many times another is "times as many" (and at most its inverse,
#: "fewer"); between the two the counts are "about as many".
COUNT_RATIO = 1.5
#: A balanced accuracy within this distance of chance (1 / classes) is "at chance".
CHANCE_MARGIN = 0.01


def _number(where: str, name: str, value, low: float = -math.inf) -> float:
    """``value`` as a finite float of at least ``low``, else ValueError quoting it."""
    try:
        number = float(value) if not isinstance(value, bool | str | bytes) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not (math.isfinite(number) and number >= low):
        raise ValueError(f"{where}: {name}={value!r} is not a finite number >= {low}")
    return number


def _count(where: str, name: str, value, low: int = 0) -> int:
    """``value`` as an int of at least ``low`` (NumPy integers too), else ValueError."""
    if isinstance(value, bool) or not hasattr(value, "__index__") or value < low:
        raise ValueError(f"{where}: {name}={value!r} is not a whole number >= {low}")
    return int(value)


def _fraction(where: str, name: str, value) -> float:
    """``value`` as a float in [0, 1], else ValueError quoting it."""
    number = _number(where, name, value)
    if not 0 <= number <= 1:
        raise ValueError(f"{where}: {name}={value!r} is not a fraction in [0, 1]")
    return number


def _share(value: float) -> str:
    """A fraction as a percent figure without trailing zeros: 0.7 -> "70", 0.002 -> "0.2"."""
    return f"{100 * value:.4g}"


def _say(key: str, /, **values) -> str:
    """One passage of ``templates/sentences.md``, filled."""
    return prose.fill("sentences", key, **values)


def _names(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``; empty for no item."""
    if len(items) < 2:
        return "".join(items)
    return _say("names_and", rest=", ".join(items[:-1]), last=items[-1])


def split_label(params: dict) -> str:
    """The holdout fractions of a run's settings, e.g. ``"70/15/15"``.

    Args:
        params: the run's settings (``PaperConfig.to_dict()``, ``metrics["params"]``):
            ``train_frac``, ``val_frac`` and ``test_frac``.

    Returns:
        ``"<train>/<validation>/<test>"`` in percent.

    Raises:
        ValueError: a fraction outside (0, 1), or fractions that do not sum to 1.
    """
    keys = ("train_frac", "val_frac", "test_frac")
    fracs = [_fraction("split_label", k, params[k]) for k in keys]
    if min(fracs) == 0 or abs(sum(fracs) - 1) > 1e-9:
        raise ValueError(f"split_label: {dict(zip(keys, fracs, strict=True))!r} do not split 1")
    return "/".join(_share(f) for f in fracs)


def protocol_settings_sentence(params: dict) -> str:
    """The split settings of a run, each marked as the paper's or not.

    Args:
        params: the run's settings (``PaperConfig.to_dict()``, ``metrics["params"]``):
            ``train_frac``, ``val_frac``, ``test_frac``, ``n_folds`` and ``cv_repeats``.

    Returns:
        One sentence: the holdout fractions, the early-stopping share inside a fold, the
        folds and the repeats, against the paper's (II.B, II.F).

    Raises:
        ValueError: bad fractions (:func:`split_label`), fewer than 2 folds or no repeat.
    """
    where = "protocol_settings_sentence"
    split = split_label(params)
    folds = _count(where, "n_folds", params["n_folds"], 2)
    repeats = _count(where, "cv_repeats", params["cv_repeats"], 1)
    paper = config.PAPER
    paper_split = split_label(paper.to_dict())
    same_split, same_folds = split == paper_split, folds == paper.n_folds
    val, train = params["val_frac"], params["train_frac"]
    times = _say("one_time" if repeats == 1 else "n_times", n=repeats)
    return _say(
        "protocol_settings",
        split=split,
        split_note=_say(
            "split_is_papers" if same_split else "split_is_not_papers", paper=paper_split
        ),
        val=_share(val),
        train_val=_share(train + val),
        folds=folds,
        folds_note=_say(
            "folds_are_papers" if same_folds else "folds_are_not_papers", paper=paper.n_folds
        ),
        repeated=_say("cv_repeated" if repeats > 1 else "cv_run_once", times=times),
    )


def pseudo_case_sentence(pseudo: dict, stated: dict) -> str:
    """The near-duplicate pseudo-cases against the stated cases: can links find the patient?

    Args:
        pseudo: pseudo-cases per class.
        stated: the dataset's stated cases per class (the same classes).

    Returns:
        One sentence: "times as many" (at least :data:`COUNT_RATIO` times the stated total),
        "fewer" (at most its inverse) or "about as many", with the counts per class.

    Raises:
        ValueError: different classes, or counts that are not whole numbers (stated: >= 1).
    """
    where = "pseudo_case_sentence"
    if set(pseudo) != set(stated) or not stated:
        raise ValueError(f"{where}: classes {sorted(pseudo)!r} against stated {sorted(stated)!r}")
    n = sum(_count(where, f"pseudo[{c!r}]", v) for c, v in pseudo.items())
    m = sum(_count(where, f"stated[{c!r}]", v, 1) for c, v in stated.items())
    each = ", ".join(
        _say("pseudo_cases_of_class", label=c, pseudo=pseudo[c], stated=stated[c]) for c in stated
    )
    ratio = n / m
    return _say(
        "pseudo_cases_many"
        if ratio >= COUNT_RATIO
        else "pseudo_cases_fewer"
        if ratio <= 1 / COUNT_RATIO
        else "pseudo_cases_about_as_many",
        ratio=ratio,
        n=n,
        m=m,
        each=each,
    )


def reconstruction_settings_sentence(settings: dict) -> str:
    """The hand-set numbers of the central reconstruction, as the code sets them.

    Args:
        settings: ``min_run``, ``long_run_factor`` and ``min_links`` (the rule,
            ``cases.MIN_RUN`` ...), ``same_scan_gap`` and ``far_apart`` (numbering distances
            of one scan's pairs and of the reference pairs) and ``thumbnail_side``.

    Returns:
        One sentence with every number.

    Raises:
        ValueError: a count below 1, or a long-run factor not above 1.
    """
    where = "reconstruction_settings_sentence"
    counts = {
        k: _count(where, k, settings[k], 1)
        for k in ("min_run", "min_links", "same_scan_gap", "far_apart", "thumbnail_side")
    }
    factor = _number(where, "long_run_factor", settings["long_run_factor"])
    if factor <= 1:
        raise ValueError(f"{where}: long_run_factor={factor!r} must exceed 1")
    run, links = counts["min_run"], counts["min_links"]
    return _say(
        "reconstruction_settings",
        same_scan_gap=counts["same_scan_gap"],
        far_apart=counts["far_apart"],
        side=counts["thumbnail_side"],
        min_run=_say("one_slice" if run == 1 else "n_slices", n=run),
        factor=factor,
        min_links=_say("one_distinct_slice" if links == 1 else "n_distinct_slices", n=links),
    )


def least_alike_sentence(numbers_in_strip, similarity_to_next, runs) -> str:
    """Where a strip of consecutive slices is least alike, and whether the rule cuts there.

    Args:
        numbers_in_strip: file numbers, in scan order.
        similarity_to_next: each slice's similarity to the next one (the last is ignored;
            NaN where there is no next).
        runs: each slice's run (a cut lies between two slices of different runs).

    Returns:
        One sentence: the least-alike neighbours, and "cuts" or "keeps them in one run".

    Raises:
        ValueError: lengths that differ, fewer than 2 slices, or no finite similarity.
    """
    where = "least_alike_sentence"
    n = len(numbers_in_strip)
    if n < 2 or len(similarity_to_next) != n or len(runs) != n:
        raise ValueError(
            f"{where}: {n} numbers, {len(similarity_to_next)} similarities and {len(runs)} "
            "runs (need as many, at least 2)"
        )
    finite = [(float(s), k) for k, s in enumerate(similarity_to_next[:-1]) if math.isfinite(s)]
    if not finite:
        raise ValueError(f"{where}: no finite similarity in {list(similarity_to_next)!r}")
    s, k = min(finite)
    a, b = numbers_in_strip[k], numbers_in_strip[k + 1]
    cut = runs[k] != runs[k + 1]
    return _say("least_alike_cut" if cut else "least_alike_kept", a=a, b=b, similarity=s)


def non_square_sentence(counts: dict, totals: dict) -> str:
    """Which classes hold the non-square images: does image shape carry the label?

    Args:
        counts: non-square images per class (zeros included).
        totals: images per class (each at least its non-square count).

    Returns:
        One sentence: the counts, whether shape carries label information (one class holds
        at least half of the non-square images) or says little, and what share of that
        class's images it marks.

    Raises:
        ValueError: different classes, or a count that is not a whole number >= 0 (totals:
            at least the non-square count).
    """
    where = "non_square_sentence"
    if set(counts) != set(totals):
        raise ValueError(f"{where}: classes {sorted(counts)!r} against {sorted(totals)!r}")
    counts = {c: _count(where, f"counts[{c!r}]", v) for c, v in counts.items()}
    totals = {c: _count(where, f"totals[{c!r}]", v, counts[c]) for c, v in totals.items()}
    total = sum(counts.values())
    if not total:
        return _say("non_square_none")
    held = sorted(((v, c) for c, v in counts.items() if v), reverse=True)
    top, top_class = held[0]
    if top == total:
        head = _say("non_square_in_one_class", total=total, label=top_class)
    else:
        each = _names([_say("count_of_class", n=v, label=c) for v, c in held])
        head = _say("non_square_in_classes", total=total, counts=each)
    if top / total < 0.5:
        return _say("non_square_spread", head=head)
    share = pct(top / totals[top_class], 0)
    return _say("non_square_carries_the_label", head=head, label=top_class, share=share)


def duplicate_groups_sentence(group_labels: list) -> str:
    """The exact-duplicate groups: their sizes and whether each stays within one class.

    Args:
        group_labels: per group, the class of each of its files.

    Returns:
        One sentence.

    Raises:
        ValueError: a group of fewer than 2 files.
    """
    small = [g for g in group_labels if len(g) < 2]
    if small:
        raise ValueError(f"duplicate_groups_sentence: groups of fewer than 2 files: {small!r}")
    n = len(group_labels)
    if not n:
        return _say("duplicates_none")
    pairs = sum(len(g) == 2 for g in group_labels)
    within = sum(len(set(g)) == 1 for g in group_labels)
    if pairs == within == n:
        return _say("duplicates_pairs_within_a_class", n=n)
    return _say(
        "duplicates_mixed",
        n=n,
        pairs=pairs,
        larger=n - pairs,
        within=within,
        across=n - within,
    )


def augmentation_sentence(originals: dict, augmented: dict, train_frac: float) -> str:
    """How often the most-copied class's originals appear, and what a random split does.

    Each original of a class appears about ``augmented / originals`` times; under a random
    split each of its other appearances lands in training with the chance ``train_frac``, so a
    test image has a sibling in training with the chance ``1 - (1 - train_frac)^(k - 1)``.

    Args:
        originals: originals per class.
        augmented: images per class in the augmented set (at least the originals).
        train_frac: the training share of the random split.

    Returns:
        One sentence: "most" or "fewer than half" of that class's test images have siblings
        in training.

    Raises:
        ValueError: different classes, counts below 1, an augmented count below the
            originals, or a training share outside [0, 1].
    """
    where = "augmentation_sentence"
    if set(originals) != set(augmented) or not originals:
        raise ValueError(f"{where}: classes {sorted(originals)!r} and {sorted(augmented)!r}")
    train_frac = _fraction(where, "train_frac", train_frac)
    times = {}
    for c in originals:
        o = _count(where, f"originals[{c!r}]", originals[c], 1)
        a = _count(where, f"augmented[{c!r}]", augmented[c], o)
        times[c] = a / o
    top = max(times, key=times.get)
    k = times[top]
    chance = 1 - (1 - train_frac) ** (k - 1)
    return _say(
        "augmentation",
        label_capitalized=top.capitalize(),
        label=top,
        originals=originals[top],
        copies=augmented[top] - originals[top],
        times=k,
        train=_share(train_frac),
        chance=pct(chance, 0),
        how_many=_say("siblings_most" if chance > 0.5 else "siblings_fewer_than_half"),
    )


def leakage_sentence(rows: dict) -> str:
    """What each protocol's holdout test set shares with its training data, in words.

    Args:
        rows: protocol -> a row of :func:`lungct_utils.splits.leakage_table`: ``test images
            scored``, ``augmented copies among them``, ``source original in train``, ``case
            (patient) in train``.

    Returns:
        One sentence: the shares per protocol, and which protocols keep sources and patients
        apart.

    Raises:
        ValueError: no protocol, no test image, or a count above the test images.
    """
    where = "leakage_sentence"
    if not rows:
        raise ValueError(f"{where}: no protocol in {rows!r}")
    keys = ("augmented copies among them", "source original in train", "case (patient) in train")
    shares, parts = {}, []
    for p, row in rows.items():
        n = _count(where, f"{p}: test images scored", row["test images scored"], 1)
        shares[p] = [_count(where, f"{p}: {k}", row[k]) / n for k in keys]
        if max(shares[p]) > 1:
            raise ValueError(f"{where}: {p}: counts {[row[k] for k in keys]!r} above {n} tests")
        copies, source, case = (pct(s, 0) for s in shares[p])
        parts.append(
            _say("leakage_of_protocol", protocol=p, copies=copies, source=source, case=case)
        )
    sources, patients = ([f"`{p}`" for p, s in shares.items() if s[i] == 0] for i in (1, 2))
    return _say(
        "leakage",
        protocols="; ".join(parts),
        sources=_say(
            "sources_apart_by_none"
            if not sources
            else "sources_apart_by_one"
            if len(sources) == 1
            else "sources_apart_by_many",
            names=_names(sources),
        ),
        patients=_say(
            "patients_apart_by_none"
            if not patients
            else "patients_apart_by_one"
            if len(patients) == 1
            else "patients_apart_by_many",
            names=_names(patients),
        ),
    )


def shortcut_sentence(shape: float, thumbnail: float, n_classes: int = 3) -> str:
    """The two shortcut probes against chance: how much of the label needs no lungs?

    Args:
        shape: the shape probe's balanced accuracy.
        thumbnail: the thumbnail probe's balanced accuracy.
        n_classes: classes (chance is ``1 / n_classes``).

    Returns:
        One sentence: each probe against chance ("at chance" within
        :data:`CHANCE_MARGIN`), and which gets further.

    Raises:
        ValueError: a balanced accuracy outside [0, 1] or fewer than 2 classes.
    """
    where = "shortcut_sentence"
    shape = _fraction(where, "shape", shape)
    thumbnail = _fraction(where, "thumbnail", thumbnail)
    chance = 1 / _count(where, "n_classes", n_classes, 2)

    def against(v):
        d = v - chance
        return _say("at_chance" if abs(d) < CHANCE_MARGIN else "from_chance", points=100 * d)

    # on a tie the thumbnail is named
    probe = _say("probe_thumbnail" if thumbnail >= shape else "probe_shape")
    above = max(shape, thumbnail) - chance >= CHANCE_MARGIN
    return _say(
        "shortcut",
        chance=pct(chance),
        shape=pct(shape),
        shape_against=against(shape),
        thumbnail=pct(thumbnail),
        thumbnail_against=against(thumbnail),
        verdict=_say("shortcut_found" if above else "shortcut_none", probe=probe),
    )


def parameter_count_sentence(counts: dict, dense_units: int) -> str:
    """The network's parameter counts, and whether they are the paper's head's (Table II).

    Args:
        counts: :func:`lungct_utils.model.parameter_counts`: ``total``, ``trainable``,
            ``non_trainable``.
        dense_units: the head's hidden units.

    Returns:
        One sentence.

    Raises:
        ValueError: negative counts or a total that is not their sum, or no hidden unit.
    """
    where = "parameter_count_sentence"
    total, train, frozen = (
        _count(where, k, counts[k]) for k in ("total", "trainable", "non_trainable")
    )
    if total != train + frozen:
        raise ValueError(f"{where}: total {total} is not {train} + {frozen}")
    units = _count(where, "dense_units", dense_units, 1)
    paper = config.PAPER.dense_units
    head = _say(
        "head_is_papers" if units == paper else "head_is_not_papers", units=units, paper=paper
    )
    return _say("parameter_count", total=total, trainable=train, frozen=frozen, head=head)


def epochs_sentence(epochs: dict, max_epochs: int, restore_best: bool) -> str:
    """How long each holdout run trained, against the paper's run (III.C), and what was saved.

    Args:
        epochs: protocol -> epochs run.
        max_epochs: the schedule's maximum.
        restore_best: whether early stopping restored the best epoch's weights.

    Returns:
        One sentence: the paper's epochs (:data:`lungct_utils.config.PAPER_EPOCHS`), ours,
        which stopped early or ran to the maximum, and which epoch's model was saved.

    Raises:
        ValueError: no run, or epochs outside 1..``max_epochs``.
    """
    where = "epochs_sentence"
    top = _count(where, "max_epochs", max_epochs, 1)
    if not epochs:
        raise ValueError(f"{where}: no run in {epochs!r}")
    for p, e in epochs.items():
        if _count(where, f"epochs[{p!r}]", e, 1) > top:
            raise ValueError(f"{where}: epochs[{p!r}]={e!r} above the maximum {top}")
    full = [f"`{p}`" for p, e in epochs.items() if e == top]
    stop = _say(
        "every_run_stopped_early"
        if not full
        else "every_run_reached_the_maximum"
        if len(full) == len(epochs)
        else "some_runs_reached_the_maximum",
        names=_names(full),
    )
    ours = ", ".join(_say("epochs_of_run", epochs=e, protocol=p) for p, e in epochs.items())
    return _say(
        "epochs",
        paper=PAPER_EPOCHS,
        ours=ours,
        top=top,
        stop=stop,
        saved=_say("saved_best_epoch" if restore_best else "saved_last_epoch"),
    )


def holdout_sentence(holdouts: dict) -> str:
    """The single holdouts against the paper's 97%, and what the honest protocols change.

    Args:
        holdouts: protocol -> :func:`lungct_utils.evaluate.holdout_metrics` (``accuracy``,
            ``accuracy_ci95``, ``per_class`` recalls); ``paper`` required.

    Returns:
        One or two sentences: whether the paper protocol's interval holds the paper's
        accuracy (Table III), lies below or above it; the honest protocols' accuracy against
        it and the class whose recall drops most on average.

    Raises:
        ValueError: no ``paper`` holdout, or an accuracy outside its interval.
    """
    where = "holdout_sentence"
    if "paper" not in holdouts:
        raise ValueError(f"{where}: no 'paper' holdout among {sorted(holdouts)!r}")
    ref = holdouts["paper"]
    acc = _fraction(where, "paper accuracy", ref["accuracy"])
    lo, hi = (_fraction(where, "paper accuracy_ci95", v) for v in ref["accuracy_ci95"])
    if not lo <= acc <= hi:
        raise ValueError(f"{where}: accuracy {acc!r} outside its interval {[lo, hi]!r}")
    paper = PAPER_TABLE_III["accuracy"]
    lands = _say(
        "interval_holds_the_papers"
        if lo <= paper <= hi
        else "below_the_papers"
        if hi < paper
        else "above_the_papers",
        paper=pct(paper, 0),
    )
    text = _say("holdout", accuracy=tables.with_interval(acc, [lo, hi]), lands=lands)
    honest = [p for p in holdouts if p != "paper"]
    if not honest:
        return text
    accs = {p: _fraction(where, f"{p} accuracy", holdouts[p]["accuracy"]) for p in honest}
    lower = [p for p in honest if accs[p] < acc]
    moves = _say(
        "accuracy_lower"
        if len(lower) == len(honest)
        else "accuracy_not_lower"
        if not lower
        else "accuracy_lower_under",
        names=_names([f"`{p}`" for p in lower]),
    )
    each = ", ".join(_say("accuracy_of_run", accuracy=pct(accs[p]), protocol=p) for p in honest)
    drop = {
        c: sum(r["recall"] - holdouts[p]["per_class"][c]["recall"] for p in honest) / len(honest)
        for c, r in ref["per_class"].items()
    }
    worst = max(drop, key=drop.get)
    recall = _say(
        "recall_drops_most" if drop[worst] > 0 else "no_recall_drops",
        label=worst,
        points=100 * drop[worst],
    )
    return _say("holdout_and_honest", holdout=text, moves=moves, each=each, recall=recall)


def input_check_settings_sentence(
    colour_share: float, layout_rate: float, feature_rate: float, repeats: int, folds: int
) -> str:
    """The input check's hand-set shares and the outer folds it is measured in.

    Args:
        colour_share: share of coloured pixels above which an image is a colour picture.
        layout_rate: share of held-out-patient layout distances the threshold flags.
        feature_rate: the same for the feature distance.
        repeats: repeats of the outer grouped CV.
        folds: its folds.

    Returns:
        One sentence with every number.

    Raises:
        ValueError: a share outside [0, 1], no repeat or fewer than 2 folds.
    """
    where = "input_check_settings_sentence"
    shares = [
        _fraction(where, k, v)
        for k, v in (
            ("colour_share", colour_share),
            ("layout_rate", layout_rate),
            ("feature_rate", feature_rate),
        )
    ]
    repeats, folds = _count(where, "repeats", repeats, 1), _count(where, "folds", folds, 2)
    colour, layout, feature = (_share(s) for s in shares)
    return _say(
        "input_check_settings",
        colour=colour,
        layout=layout,
        feature=feature,
        outer=repeats * folds,
        repeats=repeats,
        folds=folds,
    )


def input_check_goal_sentence(non_ct_goal: float, ct_goal: float) -> str:
    """The input check's goals (``report.INPUT_CHECK_GOAL_NON_CT`` and ``..._CT``).

    Args:
        non_ct_goal: the least share of held-out non-CT images to flag.
        ct_goal: the largest share of held-out CT originals to flag.

    Returns:
        One sentence.

    Raises:
        ValueError: a share outside [0, 1].
    """
    non_ct = _fraction("input_check_goal_sentence", "non_ct_goal", non_ct_goal)
    ct = _fraction("input_check_goal_sentence", "ct_goal", ct_goal)
    return _say("input_check_goal", non_ct=_share(non_ct), ct=_share(ct))


#: The passage naming what each honest protocol keeps on one side (others: by their name).
_KEPT_TOGETHER = {
    "grouped": "kept_with_source",
    "grouped_near": "kept_near_duplicates_together",
    "cases": "kept_patient_on_one_side",
}


def protocol_cost_sentence(paper_seeds: dict, honest: dict, stated: dict) -> str:
    """What each honest protocol costs in balanced accuracy, and the weakest class of ``cases``.

    Args:
        paper_seeds: the ``paper_seeds`` part (``cv_balanced_accuracy`` ``mean``).
        honest: protocol -> :func:`lungct_utils.evaluate.repeated_cv_summary` (``mean``,
            ``ci95``).
        stated: stated cases per class.

    Returns:
        One or two sentences: each protocol "costs" or "gains" points against the paper
        protocol's CV over seeds; under ``cases`` (when present) the class with the lowest
        recall.

    Raises:
        ValueError: no honest protocol, or a balanced accuracy outside [0, 1].
    """
    where = "protocol_cost_sentence"
    if not honest:
        raise ValueError(f"{where}: no honest protocol in {honest!r}")
    ref = _fraction(where, "paper balanced accuracy", paper_seeds["cv_balanced_accuracy"]["mean"])
    parts = []
    for p, s in honest.items():
        d = ref - _fraction(where, f"{p} balanced accuracy", s["mean"]["balanced_accuracy"])
        kept = _say(_KEPT_TOGETHER.get(p, "kept_by_protocol"), protocol=p)
        parts.append(
            _say(
                "protocol_costs" if d > 0 else "protocol_gains" if d < 0 else "protocol_changes",
                kept=kept,
                points=abs(100 * d),
            )
        )
    text = _say("protocol_cost", paper=pct(ref), costs="; ".join(parts))
    if "cases" not in honest:
        return text
    c = honest["cases"]
    recalls = {k: c["mean"][f"recall_{k}"] for k in stated}
    low = min(recalls, key=recalls.get)
    return _say(
        "protocol_cost_and_weakest_class",
        cost=text,
        label=low,
        recall=tables.with_interval(recalls[low], c["ci95"][f"recall_{low}"]),
        stated=stated[low],
    )


def domain_shift_sentence(
    shift: dict, internal: str = "IQ-OTH/NCCD", other: str = "external"
) -> str:
    """Grey levels and framing of two sets, in words (notebook 09's table).

    Args:
        shift: set -> ``mean grey level``, ``share of pixels below 10``, ``median body
            width`` and ``median body height`` (shares of the side).
        internal: the reference set's name.
        other: the compared set's name.

    Returns:
        One sentence: brighter or darker, more or fewer near-black pixels, the body filling
        more or less of the frame.

    Raises:
        ValueError: a set missing, or a share outside [0, 1].
    """
    where = "domain_shift_sentence"
    if internal not in shift or other not in shift:
        raise ValueError(f"{where}: need {internal!r} and {other!r}, got {sorted(shift)!r}")
    a, b = shift[internal], shift[other]
    keys = ("share of pixels below 10", "median body width", "median body height")
    for name, row in ((internal, a), (other, b)):
        _number(where, f"{name}: mean grey level", row["mean grey level"], 0)
        for k in keys:
            _fraction(where, f"{name}: {k}", row[k])

    def than(key):
        """1 when the compared set's value is higher, -1 when lower, 0 when equal."""
        x, y = b[key], a[key]
        return 1 if x > y else -1 if x < y else 0

    grey, dark, fills = than("mean grey level"), than(keys[0]), than(keys[1])
    return _say(
        "domain_shift",
        internal=internal,
        other=other,
        grey=_say("brighter" if grey > 0 else "darker" if grey < 0 else "as_bright"),
        grey_other=b["mean grey level"],
        grey_internal=a["mean grey level"],
        dark=_say(
            "more_near_black"
            if dark > 0
            else "fewer_near_black"
            if dark < 0
            else "as_many_near_black"
        ),
        dark_other=pct(b[keys[0]], 0),
        dark_internal=pct(a[keys[0]], 0),
        fills=_say("fills_more" if fills > 0 else "fills_less" if fills < 0 else "fills_as_much"),
        width_other=pct(b[keys[1]], 0),
        width_internal=pct(a[keys[1]], 0),
        height_other=pct(b[keys[2]], 0),
        height_internal=pct(a[keys[2]], 0),
    )
