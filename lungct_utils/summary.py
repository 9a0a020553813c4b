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


def render_summary(metrics: dict) -> str:
    """The whole ``summary.md``.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown text.
    """
    p = metrics["protocols"]
    paper_h, paper_cv = p["paper"]["holdout"], p["paper"]["cv"]
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
        f"the paper did, the frozen MobileNetV2 with its small head reaches "
        f"{pct(paper_h['accuracy'])}% test accuracy (paper: 97%) and "
        f"{pct(paper_cv['mean']['accuracy'])} ± {pct(paper_cv['std']['accuracy'])}% in 5-fold CV "
        f"(paper: 97.26 ± 0.66%).",
    ]
    if "grouped" in p:
        gh, gcv = p["grouped"]["holdout"], p["grouped"]["cv"]
        drop = paper_cv["mean"]["accuracy"] - gcv["mean"]["accuracy"]
        lines += [
            f"* **About {100 * drop:.0f} points of it are leakage.** When every augmented copy "
            f"stays on the side of "
            f"its source image (`grouped`), test accuracy is {pct(gh['accuracy'])}% "
            f"(95% CI {pct(gh['accuracy_ci95'][0])}-{pct(gh['accuracy_ci95'][1])}, resampling "
            f"source images) and CV {pct(gcv['mean']['accuracy'])} ± "
            f"{pct(gcv['std']['accuracy'])}%: {100 * drop:.1f} points below the same CV under the "
            f"paper's protocol. Under the paper's protocol the test set holds rotated, shifted "
            f"or flipped copies of training images, so part of its score is recognition, "
            f"not diagnosis.",
            f"* **Benign is the hard class.** Benign recall is "
            f"{pct(gh['per_class']['benign']['recall'])}% under `grouped` against "
            f"{pct(paper_h['per_class']['benign']['recall'])}% under the paper's protocol: "
            f"only 120 benign originals exist, each copied about ten times to reach Table I.",
        ]
    lines += [
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
