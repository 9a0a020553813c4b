"""Holdout and k-fold split manifests for the two protocols (paper II.B, II.F).

* ``paper``: what the paper did. A stratified random 70/15/15 split of the augmented
  images (scikit-learn ``train_test_split``, twice) and a stratified 5-fold CV
  (``StratifiedKFold``) over all of them. Copies of one original land in train and test:
  leaky, kept to reproduce the paper.
* ``grouped``: the same proportions and folds, but an image's group (its source original,
  byte-identical originals merged) lies wholly on one side: holdout by a seeded,
  stratified assignment of whole groups, CV by ``StratifiedGroupKFold``.

Validation data for early stopping inside a CV fold comes from that fold's training part
(:func:`inner_validation`), under the same protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from .config import PROTOCOLS, PaperConfig

SPLIT_NAMES = ("train", "val", "test")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def random_holdout(labels: np.ndarray, val_frac: float, test_frac: float, seed: int) -> np.ndarray:
    """Stratified random train/val/test assignment (the paper's split).

    Args:
        labels: one label per image.
        val_frac: validation share of all images.
        test_frac: test share of all images.
        seed: random seed.

    Returns:
        Array of ``"train"``/``"val"``/``"test"`` strings.
    """
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=test_frac, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_frac / (1 - test_frac), stratify=labels[rest], random_state=seed
    )
    out = np.empty(len(labels), dtype=object)
    out[train], out[val], out[test] = "train", "val", "test"
    return out


def grouped_holdout(
    labels: np.ndarray, groups: np.ndarray, val_frac: float, test_frac: float, seed: int
) -> np.ndarray:
    """Stratified train/val/test assignment of whole groups.

    Per class (a group's class is its most common label), the groups are shuffled with the
    seed and taken into test while that brings the class's test count closer to its quota, then
    likewise into validation, the rest into train: proportions hold to half a group's size.

    Args:
        labels: one label per image.
        groups: one group id per image.
        val_frac: validation share of all images.
        test_frac: test share of all images.
        seed: random seed.

    Returns:
        Array of ``"train"``/``"val"``/``"test"`` strings; no group spans two values.
    """
    frame = pd.DataFrame({"label": np.asarray(labels), "group": np.asarray(groups)})
    rng = np.random.default_rng(seed)
    sizes = frame.groupby("group").size()
    group_label = frame.groupby("group")["label"].agg(lambda s: s.value_counts().index[0])
    assign = {}
    for label in sorted(group_label.unique()):
        members = np.array(sorted(group_label.index[group_label == label]))
        members = members[rng.permutation(len(members))]
        total = int(sizes[members].sum())
        quotas = {"test": test_frac * total, "val": val_frac * total}
        filled = {"test": 0, "val": 0}
        for g in members:
            assign[g] = "train"
            for name, quota in quotas.items():
                # Take the group when that ends closer to the quota than leaving it.
                if filled[name] + sizes[g] / 2 < quota:
                    assign[g] = name
                    filled[name] += int(sizes[g])
                    break
    return frame["group"].map(assign).to_numpy(dtype=object)


def kfold(labels: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int) -> np.ndarray:
    """Stratified k-fold assignment; grouped when ``groups`` is given.

    Args:
        labels: one label per image.
        groups: one group id per image, or None for plain stratified folds.
        n_folds: number of folds.
        seed: random seed.

    Returns:
        int array of fold numbers 0..n_folds-1.
    """
    if not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"n_folds must be an int >= 2, got {n_folds!r}")
    labels = np.asarray(labels)
    fold = np.full(len(labels), -1, dtype=np.int64)
    if groups is None:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(labels)), labels)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(labels)), labels, np.asarray(groups))
    for k, (_, test) in enumerate(parts):
        fold[test] = k
    return fold


def make_splits(table: pd.DataFrame, protocol: str, cfg: PaperConfig) -> pd.DataFrame:
    """The split manifest of one protocol.

    Args:
        table: augmented manifest with ``id``, ``label`` and ``group``.
        protocol: ``"paper"``, ``"grouped"`` or ``"grouped_near"`` (needs a ``case``
            column: the pseudo-case of each image's source).
        cfg: fractions, ``n_folds`` and ``seed``.

    Returns:
        DataFrame ``id, label, group, holdout, fold`` in the table's order; ``group`` is
        the unit the protocol keeps whole (the pseudo-case for ``grouped_near``).
    """
    _check_protocol(protocol)
    labels = table["label"].to_numpy()
    if protocol == "grouped_near":
        if "case" not in table.columns:
            raise ValueError("make_splits: protocol 'grouped_near' needs a 'case' column")
        groups = table["case"].to_numpy()
    else:
        groups = table["group"].to_numpy()
    if protocol == "paper":
        holdout = random_holdout(labels, cfg.val_frac, cfg.test_frac, cfg.seed)
        fold = kfold(labels, None, cfg.n_folds, cfg.seed)
    else:
        holdout = grouped_holdout(labels, groups, cfg.val_frac, cfg.test_frac, cfg.seed)
        fold = kfold(labels, groups, cfg.n_folds, cfg.seed)
    return pd.DataFrame(
        {
            "id": table["id"].to_numpy(),
            "label": labels,
            "group": groups,
            "holdout": holdout,
            "fold": fold,
        }
    )


def inner_validation(splits: pd.DataFrame, fold: int, protocol: str, cfg: PaperConfig) -> pd.Series:
    """Train/val/test roles inside CV fold ``fold``: validation carved from training folds.

    The fold ``fold`` is the test set; of the other folds a ``val_frac / (train_frac +
    val_frac)`` share (15/85, as in the holdout) becomes validation for early stopping,
    drawn like the protocol's holdout (grouped protocols keep groups whole).

    Args:
        splits: from :func:`make_splits`.
        fold: the test fold.
        protocol: the protocol of ``splits``.
        cfg: fractions and seed.

    Returns:
        Series of ``"train"``/``"val"``/``"test"`` aligned with ``splits``.
    """
    _check_protocol(protocol)
    if fold not in set(splits["fold"]):
        raise ValueError(f"inner_validation: fold {fold!r} not in the split manifest")
    role = pd.Series("test", index=splits.index, dtype=object)
    train = splits["fold"] != fold
    share = cfg.val_frac / (cfg.train_frac + cfg.val_frac)
    labels = splits.loc[train, "label"].to_numpy()
    seed = cfg.seed + 1 + fold
    if protocol == "paper":
        idx = np.arange(int(train.sum()))
        tr, va = train_test_split(idx, test_size=share, stratify=labels, random_state=seed)
        inner = np.empty(len(idx), dtype=object)
        inner[tr], inner[va] = "train", "val"
    else:
        inner = grouped_holdout(labels, splits.loc[train, "group"].to_numpy(), 0.0, share, seed)
        inner = np.where(inner == "test", "val", "train")
    role[train] = inner
    return role


def proportions(splits: pd.DataFrame, column: str) -> pd.DataFrame:
    """Class proportions within each value of a split column.

    Args:
        splits: a split manifest.
        column: ``"holdout"`` or ``"fold"``.

    Returns:
        DataFrame indexed by split value, one column per class, rows summing to 1.
    """
    return pd.crosstab(splits[column], splits["label"], normalize="index")
