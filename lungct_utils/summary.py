"""``reports/summary.md``: the paper's numbers beside ours, in plain words."""

from __future__ import annotations

from .config import CLASSES

#: The paper's Table III (test split) and Table IV (5-fold CV), as fractions.
PAPER_TABLE_III = {
    "accuracy": 0.97,
    "per_class": {
        "benign": {"precision": 0.96, "recall": 0.96, "f1": 0.96},
        "malignant": {"precision": 0.98, "recall": 1.00, "f1": 0.99},
        "normal": {"precision": 0.97, "recall": 0.95, "f1": 0.96},
    },
    "confusion_matrix": [[173, 1, 6], [0, 180, 0], [8, 2, 172]],
}
PAPER_TABLE_IV = {
    "folds": [
        {"accuracy": 0.9695, "precision": 0.9696, "recall": 0.9695, "f1": 0.9695},
        {"accuracy": 0.9792, "precision": 0.9793, "recall": 0.9793, "f1": 0.9792},
        {"accuracy": 0.9806, "precision": 0.9808, "recall": 0.9807, "f1": 0.9806},
        {"accuracy": 0.9626, "precision": 0.9633, "recall": 0.9627, "f1": 0.9627},
        {"accuracy": 0.9709, "precision": 0.9710, "recall": 0.9709, "f1": 0.9709},
    ],
    "mean": {"accuracy": 0.9726, "precision": 0.9728, "recall": 0.9726, "f1": 0.9726},
    "std": {"accuracy": 0.0066, "precision": 0.0065, "recall": 0.0066, "f1": 0.0066},
}
PAPER_EPOCHS = 28


def pct(x: float) -> str:
    """A fraction as a percentage with two decimals."""
    return f"{100 * x:.2f}"


def table_iii(metrics: dict) -> str:
    """Markdown: Table III of the paper beside each protocol's holdout.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown table.
    """
    protos = list(metrics["protocols"])
    head = "| class | metric | published | " + " | ".join(f"ours: {p}" for p in protos) + " |"
    lines = [head, "|---|---|---:|" + "---:|" * len(protos)]
    for c in CLASSES:
        for m in ("precision", "recall", "f1"):
            ours = [pct(metrics["protocols"][p]["holdout"]["per_class"][c][m]) for p in protos]
            paper = pct(PAPER_TABLE_III["per_class"][c][m])
            lines.append(f"| {c} | {m} | {paper} | " + " | ".join(ours) + " |")
    acc = []
    for p in protos:
        h = metrics["protocols"][p]["holdout"]
        lo, hi = h["accuracy_ci95"]
        acc.append(f"{pct(h['accuracy'])} [{pct(lo)}, {pct(hi)}]")
    lines.append("| all | accuracy [95% CI] | 97.00 | " + " | ".join(acc) + " |")
    ep = [str(metrics["protocols"][p]["holdout"]["epochs"]) for p in protos]
    lines.append(f"| all | epochs run | {PAPER_EPOCHS} | " + " | ".join(ep) + " |")
    return "\n".join(lines)


def table_iv(metrics: dict) -> str:
    """Markdown: Table IV (accuracy per fold, mean, std) of the paper and each protocol.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown table.
    """
    protos = list(metrics["protocols"])
    cols = ["published"] + [f"ours: {p}" for p in protos]
    sources = [PAPER_TABLE_IV] + [metrics["protocols"][p]["cv"] for p in protos]
    lines = ["| fold | " + " | ".join(f"{c} acc / F1" for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]  # fmt: skip
    for k in range(len(PAPER_TABLE_IV["folds"])):
        cells = [f"{pct(s['folds'][k]['accuracy'])} / {pct(s['folds'][k]['f1'])}" for s in sources]
        lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
    for stat in ("mean", "std"):
        cells = [f"{pct(s[stat]['accuracy'])} / {pct(s[stat]['f1'])}" for s in sources]
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci(m: dict) -> str:
    lo, hi = m["accuracy_ci95"]
    return f"{pct(m['accuracy'])}% (95% CI {pct(lo)}-{pct(hi)})"


def protocol_table(metrics: dict) -> str:
    """Markdown: every protocol side by side (holdout with intervals, CV).

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown table.
    """
    lines = ["| protocol | test accuracy [95% CI] | macro-F1 [95% CI] | benign recall [95% CI] | "
             "malignant recall | normal recall | 5-fold CV accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    lines.append("| published (paper) | 97.00 | 97.00 | 96.00 | 100.00 | 95.00 | 97.26 ± 0.66 |")
    for p, v in metrics["protocols"].items():
        h, cv = v["holdout"], v["cv"]
        lo, hi = h["accuracy_ci95"]
        b = h["per_class"]["benign"]
        blo, bhi = b["recall_ci95"]
        flo, fhi = h.get("macro_f1_ci95", [float("nan")] * 2)
        lines.append(
            f"| {p} | {pct(h['accuracy'])} [{pct(lo)}, {pct(hi)}] | "
            f"{pct(h['macro_f1'])} [{pct(flo)}, {pct(fhi)}] | "
            f"{pct(b['recall'])} [{pct(blo)}, {pct(bhi)}] | "
            f"{pct(h['per_class']['malignant']['recall'])} | "
            f"{pct(h['per_class']['normal']['recall'])} | "
            f"{pct(cv['mean']['accuracy'])} ± {pct(cv['std']['accuracy'])} |"
        )
    return "\n".join(lines)


def render_summary(metrics: dict) -> str:
    """The whole ``summary.md``.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown text.
    """
    p = metrics["protocols"]
    ph, pcv = p["paper"]["holdout"], p["paper"]["cv"]
    lines = [
        "# Does 97% hold? Summary of the reproduction",
        "",
        f"Seed {metrics['seed']}, commit `{metrics['git_commit']}`. Data: IQ-OTH/NCCD "
        f"(alyasriy & AL-Huseiny 2021, doi:10.17632/bhmdr45bh2), "
        f"{sum(metrics['dataset']['original'].values())} originals rebuilt into "
        f"{sum(metrics['dataset']['augmented'].values())} augmented images as in Table I.",
        "",
        "## In plain words",
        "",
        f"* **The paper's protocol reproduces.** Splitting the augmented images at random, as "
        f"the paper did, the frozen MobileNetV2 with its small head reaches {_ci(ph)} test "
        f"accuracy (paper: 97%) and {pct(pcv['mean']['accuracy'])} ± "
        f"{pct(pcv['std']['accuracy'])}% in 5-fold CV (paper: 97.26 ± 0.66%).",
    ]
    for name, why in (
        ("grouped", "every augmented copy stays on the side of its source image"),
        ("grouped_near", "near-duplicate slices (likely neighbours in one scan) are also kept "
                         "together, as inferred pseudo-cases"),
    ):  # fmt: skip
        if name not in p:
            continue
        h, cv = p[name]["holdout"], p[name]["cv"]
        drop = pcv["mean"]["accuracy"] - cv["mean"]["accuracy"]
        lines.append(
            f"* **`{name}`**: when {why}, test accuracy is {_ci(h)} and CV "
            f"{pct(cv['mean']['accuracy'])} ± {pct(cv['std']['accuracy'])}%, "
            f"{100 * drop:.1f} points below the paper-protocol CV. Benign recall falls to "
            f"{pct(h['per_class']['benign']['recall'])}% (paper protocol: "
            f"{pct(ph['per_class']['benign']['recall'])}%)."
        )
    lines.append(
        "* **Why.** Under the paper's protocol the test set holds rotated, shifted or flipped "
        "copies of training images (benign originals are copied about ten times each to reach "
        "Table I), so part of its score is recognising an image already seen, not diagnosing "
        "a new patient. Intervals resample source images, the honest unit of independence."
    )
    audit = metrics.get("audit")
    if audit:
        cases = audit["pseudo_case_groups"]
        lines += [
            f"* **Audit.** {audit['exact_duplicate_groups']} groups of byte-identical originals "
            f"({audit['images_in_exact_duplicate_groups']} files, none across classes); "
            f"{audit['near_duplicate_links']} near-duplicate links at similarity > "
            f"{audit['near_duplicate_threshold']:.2f} (the lowest threshold with no link across "
            f"classes) join the {audit['unique_images']} distinct originals into "
            f"{sum(cases.values())} pseudo-cases (benign {cases['benign']}, malignant "
            f"{cases['malignant']}, normal {cases['normal']}) against the 110 cases (15 / 40 / "
            f"55) the dataset states: the inferred groups are still much finer than patients, so "
            f"even `grouped_near` is optimistic.",
            f"* **Shortcuts.** Image shape alone predicts the class with "
            f"{pct(audit['shape_shortcut_accuracy'])}% accuracy on the originals (the majority "
            f"class is 51.14%: only malignant and one normal slice are non-square), an 8x8 "
            f"thumbnail with {pct(audit['thumbnail_shortcut_accuracy'])}% (both in 5-fold CV "
            f"grouped by pseudo-case): a large part of any accuracy figure here needs no look at "
            f"the lungs.",
        ]
    ablation = metrics.get("ablations", {}).get("pad_square")
    if ablation and ablation["protocol"] in p:
        base = p[ablation["protocol"]]
        lines.append(
            f"* **Shape ablation.** Padding every image to a square before resizing (so "
            f"non-square malignant slices are no longer stretched) changes "
            f"`{ablation['protocol']}` "
            f"test accuracy from {pct(base['holdout']['accuracy'])}% to "
            f"{pct(ablation['holdout']['accuracy'])}% and CV from "
            f"{pct(base['cv']['mean']['accuracy'])}% to {pct(ablation['cv']['mean']['accuracy'])}%."
        )
    lines += [
        "",
        "## Every protocol side by side (test split, percent)",
        "",
        protocol_table(metrics),
        "",
        "![protocols](figures/04_protocols.png)",
        "",
        "## Table III: test split",
        "",
        table_iii(metrics),
        "",
        "## Table IV: stratified 5-fold CV (std with 1/k, as the paper)",
        "",
        table_iv(metrics),
        "",
        "Validation data for early stopping inside each fold is drawn from that fold's "
        "training part (15/85, by the same protocol); the paper does not say how it chose it.",
        "",
    ]
    return "\n".join(lines)
