"""Beyond the paper: probes and a small MLP head, test-time augmentation, a benign prior,
nested selection.

* **Linear probe**: standardized pooled features, then class-weighted multinomial logistic
  regression (scikit-learn; every class carries the same total weight); its regularisation
  ``C`` is chosen on inner folds.
* **Case weighting** (:func:`case_weights`): every reconstructed case carries the same total
  weight within its class, so that cases with many slices do not dominate the fit; this
  trains for the per-patient decision (mean log-probability over a case's slices).
* **MLP head**: standardized features, PCA to :data:`MLP_COMPONENTS` dimensions (for its cost),
  one hidden ReLU layer of :data:`MLP_UNITS` units, class-balanced sample weights and an L2
  penalty ``alpha`` chosen on inner folds; and the **ensemble** of probe and MLP (the mean of
  their log-probabilities).
* **Test-time augmentation (TTA)**: a slice's prediction from its views (itself, its mirror,
  rotations by +-4 and +-8 degrees; :data:`lungct_utils.audit.VIEWS`): the mean of their
  log-probabilities, as the deployed model does. For a linear probe this equals the
  prediction from the views' mean feature.
* **Benign prior**: the decision rule multiplies the benign probability by a factor before
  the arg-max (a log-prior on its logit), tuned on inner folds.
* **Nested selection** (:func:`select`): inside one outer training set, grouped inner folds
  score every candidate (recipe, ``C`` or ``alpha``, prior); the best by inner macro-F1 is
  refitted on the whole outer training set and predicts the outer test fold. Nothing here
  ever sees the outer test labels (:func:`select` takes none; ``tests/test_heads.py`` plants
  a leak).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from .config import CLASSES
from .evaluate import confusion, confusion_metrics, mean_log_prob
from .splits import group_kfold

#: Regularisation strengths tried on inner folds (smaller is stronger).
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: L2 penalties (scikit-learn's ``alpha``) of the MLP head tried on inner folds (larger is
#: stronger).
ALPHA_GRID = (30.0, 100.0, 300.0, 1000.0)
#: Factors on the benign probability tried on inner folds (1 = the plain arg-max).
PRIOR_GRID = (1.0, 1.5, 2.0, 3.0)
INNER_FOLDS = 3
#: The MLP head: hidden units, PCA dimensions before it, L-BFGS iterations (a cap on its cost).
MLP_UNITS = 32
MLP_COMPONENTS = 128
MLP_ITER = 100
#: Heads a recipe can fit, and how its training slices are weighted.
HEADS = ("linear", "mlp", "ensemble")
WEIGHTINGS = ("slice", "case")
#: The inner-fold metrics :func:`inner_scores` reports.
SCORE_COLUMNS = ("macro_f1", "balanced_accuracy", "recall_benign")


@dataclass(frozen=True)
class Recipe:
    """A candidate of the nested selection.

    Attributes:
        name: how tables show it.
        tta: average the test predictions over the views.
        prior: tune the benign prior (else the plain arg-max).
        head: ``"linear"`` (the probe), ``"mlp"`` (:func:`fit_mlp_path`) or ``"ensemble"``
            (both, their log-probabilities averaged).
        weighting: ``"slice"`` (every class the same total weight, its slices alike) or
            ``"case"`` (and every case of a class the same total weight: :func:`case_weights`).
    """

    name: str
    tta: bool = False
    prior: bool = False
    head: str = "linear"
    weighting: str = "slice"

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(
                f"Recipe {self.name!r}: head must be one of {HEADS}, got {self.head!r}"
            )
        if self.weighting not in WEIGHTINGS:
            raise ValueError(
                f"Recipe {self.name!r}: weighting must be one of {WEIGHTINGS}, "
                f"got {self.weighting!r}"
            )

    @property
    def members(self) -> tuple[str, ...]:
        """The heads it fits: both for the ensemble, else its own."""
        return ("linear", "mlp") if self.head == "ensemble" else (self.head,)


#: The candidates, cheapest first.
RECIPES = (
    Recipe("linear probe"),
    Recipe("linear probe + TTA", tta=True),
    Recipe("linear probe + benign prior", prior=True),
    Recipe("linear probe + TTA + benign prior", tta=True, prior=True),
    Recipe("linear probe, case-weighted", weighting="case"),
    Recipe("linear probe, case-weighted + TTA + benign prior", True, True, weighting="case"),
    Recipe("MLP head", head="mlp"),
    Recipe("MLP head + TTA + benign prior", tta=True, prior=True, head="mlp"),
    Recipe("probe + MLP ensemble + TTA + benign prior", True, True, head="ensemble"),
)


#: Whether this context already runs under :func:`one_thread` (then nested calls are free).
_ONE_THREAD = contextvars.ContextVar("one_thread", default=False)


@contextlib.contextmanager
def one_thread():
    """BLAS and OpenMP limited to one thread, entered once however deeply it nests.

    One thread is about three times faster for these small fits, and the thread count is
    part of what fixes the numbers. Entering ``threadpool_limits`` costs about 5 ms, so
    :func:`select` enters it once and the fits and predictions inside it do not again.

    Yields:
        None.
    """
    if _ONE_THREAD.get():
        yield
        return
    token = _ONE_THREAD.set(True)
    try:
        with threadpool_limits(1):
            yield
    finally:
        _ONE_THREAD.reset(token)


def case_weights(y, groups) -> np.ndarray:
    """Sample weights that give every class, and every case within a class, the same total.

    A slice of a case with ``s`` slices, in a class of ``m`` cases, weighs ``n / (k m s)``
    (``n`` slices, ``k`` classes): each class sums to ``n / k``, as with class-balanced slice
    weights, and each of its cases to ``n / (k m)`` however many slices it has.

    Args:
        y: class indices.
        groups: the case of each row.

    Returns:
        ``(n,)`` weights summing to ``n``.
    """
    frame = pd.DataFrame({"case": np.asarray(groups), "y": np.asarray(y)})
    slices = frame.groupby(["y", "case"])["case"].transform("size").to_numpy()
    cases = frame.groupby("y")["case"].transform("nunique").to_numpy()
    return len(frame) / (frame["y"].nunique() * cases * slices)


def fit_path(x: np.ndarray, y: np.ndarray, cs, sample_weight=None) -> dict[float, Pipeline]:
    """Probes for several ``C`` on one training set, each fit warm-started from the last.

    Args:
        x: ``(n, d)`` features.
        y: class indices.
        cs: inverse regularisation strengths.
        sample_weight: weights of the rows (e.g. :func:`case_weights`), which then carry the
            class balance; None weighs every class alike (``class_weight="balanced"``).

    Returns:
        ``C`` -> a fitted pipeline: standardization, then (class-weighted) multinomial
        logistic regression.
    """
    bad = [c for c in cs if not c > 0]
    if bad:
        raise ValueError(f"fit_path: C must be > 0, got {bad[0]!r}")
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    balance = "balanced" if sample_weight is None else None
    lr = LogisticRegression(class_weight=balance, max_iter=5000, warm_start=True)
    out = {}
    with one_thread():
        for c in sorted(cs):  # weakest penalty last: each fit starts near its optimum
            lr.set_params(C=c).fit(z, y, sample_weight=sample_weight)
            out[c] = Pipeline(
                [("standardscaler", scaler), ("logisticregression", copy.deepcopy(lr))]
            )
    return out


def fit_mlp_path(x, y, alphas, sample_weight=None, seed: int = 0) -> dict[float, Pipeline]:
    """MLP heads for several L2 penalties on one training set (one shared preprocessing).

    Standardize, PCA to :data:`MLP_COMPONENTS` dimensions, then one hidden ReLU layer of
    :data:`MLP_UNITS` units and a softmax, fitted by L-BFGS for at most :data:`MLP_ITER`
    iterations from the seed's initial weights (no early stopping: no rows are held out).

    Args:
        x: ``(n, d)`` features.
        y: class indices.
        alphas: L2 penalties (scikit-learn's ``alpha``).
        sample_weight: weights of the rows; None weighs every class alike.
        seed: the initial weights' (and the PCA's) random state.

    Returns:
        ``alpha`` -> the fitted pipeline.
    """
    if sample_weight is None:
        sample_weight = compute_sample_weight("balanced", y)
    steps = [StandardScaler(), PCA(min(MLP_COMPONENTS, *np.shape(x)), random_state=seed)]
    with one_thread():
        pre = make_pipeline(*steps).fit(x)
        z = pre.transform(x)
        out = {}
        for alpha in alphas:
            if not alpha > 0:
                raise ValueError(f"fit_mlp_path: alpha must be > 0, got {alpha!r}")
            mlp = MLPClassifier(
                (MLP_UNITS,), solver="lbfgs", alpha=alpha, max_iter=MLP_ITER, random_state=seed
            )
            with warnings.catch_warnings():  # MLP_ITER caps the cost on purpose
                warnings.simplefilter("ignore", ConvergenceWarning)
                mlp.fit(z, y, sample_weight=sample_weight)
            out[alpha] = Pipeline([*pre.steps, ("mlpclassifier", mlp)])
    return out


def fit_heads(x, y, groups, head: str, weighting: str, grid, seed: int = 0) -> dict:
    """One head fitted for every value of its grid, its rows weighted as the recipe says.

    Args:
        x: ``(n, d)`` features.
        y: class indices.
        groups: the case of each row (read by case weighting).
        head: ``"linear"`` or ``"mlp"``.
        weighting: ``"slice"`` or ``"case"``.
        grid: ``C`` values of a linear probe, ``alpha`` values of an MLP.
        seed: the MLP's random state.

    Returns:
        grid value -> fitted pipeline.
    """
    weights = case_weights(y, groups) if weighting == "case" else None
    if head == "linear":
        return fit_path(x, y, grid, weights)
    if head == "mlp":
        return fit_mlp_path(x, y, grid, weights, seed)
    raise ValueError(f"fit_heads: head must be 'linear' or 'mlp', got {head!r}")


def with_prior(probs: np.ndarray, prior: float) -> np.ndarray:
    """Probabilities with the benign one multiplied by ``prior``, renormalized.

    Args:
        probs: ``(n, 3)``.
        prior: the factor (1 leaves them unchanged).

    Returns:
        ``(n, 3)`` rows summing to 1.
    """
    if not prior > 0:
        raise ValueError(f"with_prior: prior must be > 0, got {prior!r}")
    out = np.array(probs, dtype=np.float64)
    out[:, CLASSES.index("benign")] *= prior
    return out / out.sum(axis=1, keepdims=True)


def predict(model, x: np.ndarray, views: list[np.ndarray] | None = None) -> np.ndarray:
    """Probabilities of a fitted head, optionally averaged over views (TTA).

    A linear probe predicts from the views' mean feature (the same as the mean of its
    log-probabilities); an MLP averages its log-probabilities over the views; an ensemble
    (a list of heads) averages its members' log-probabilities (both by
    :func:`~lungct_utils.evaluate.mean_log_prob`, the patient decision's rule).

    Args:
        model: from :func:`fit_heads` (or :func:`fit_path`), or a list of them.
        x: ``(n, d)`` features.
        views: the same rows' features of each view, or None.

    Returns:
        ``(n, 3)`` probabilities.
    """
    if isinstance(model, list):
        return mean_log_prob([predict(m, x, views) for m in model])
    if views and not isinstance(model[-1], LogisticRegression):
        return mean_log_prob([predict(model, v) for v in (x, *views)])
    if views:
        x = np.mean([x, *views], axis=0)
    with one_thread():
        return model.predict_proba(x)


def inner_folds(y, groups, n_folds: int = INNER_FOLDS, seed: int = 0) -> list[tuple]:
    """Stratified folds of whole groups (cases) inside a training set.

    A fresh random assignment of the groups per seed (:func:`~lungct_utils.splits.group_kfold`).

    Args:
        y: class indices.
        groups: the case of each row.
        n_folds: folds.
        seed: random seed.

    Returns:
        ``(train positions, test positions)`` pairs.
    """
    fold = group_kfold(y, groups, n_folds, seed)
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds)]


def inner_oof(
    x, views, y, groups, seed: int = 0, recipes=RECIPES, cs=C_GRID, alphas=ALPHA_GRID
) -> dict:
    """Out-of-fold probabilities of every head the recipes fit, on grouped inner folds.

    Args:
        x: ``(n, d)`` features of one (outer) training set.
        views: their features of each view.
        y: class indices.
        groups: the case of each row.
        seed: inner-fold seed (and the MLP's random state).
        recipes: the candidates (only the heads and weightings they use are fitted).
        cs: regularisation strengths of the linear probe.
        alphas: L2 penalties of the MLP.

    Returns:
        ``(head, weighting, C, alpha, tta)`` -> ``(n, 3)`` probabilities (``C`` None for an
        MLP, ``alpha`` None for a probe, both set for an ensemble).
    """
    y, groups = np.asarray(y), np.asarray(groups)
    heads = sorted({(m, r.weighting) for r in recipes for m in r.members})
    oof = {}
    for train, test in inner_folds(y, groups, seed=seed):
        test_views = [v[test] for v in views]
        for head, w in heads:
            grid = cs if head == "linear" else alphas
            fitted_heads = fit_heads(x[train], y[train], groups[train], head, w, grid, seed)
            for value, model in fitted_heads.items():
                c, alpha = (value, None) if head == "linear" else (None, value)
                for tta in (False, True):
                    probs = predict(model, x[test], test_views if tta else None)
                    oof.setdefault((head, w, c, alpha, tta), np.zeros((len(y), len(CLASSES))))
                    oof[(head, w, c, alpha, tta)][test] = probs
    for w in sorted({r.weighting for r in recipes if r.head == "ensemble"}):
        for c, alpha, tta in ((c, a, t) for c in cs for a in alphas for t in (False, True)):
            members = [oof[("linear", w, c, None, tta)], oof[("mlp", w, None, alpha, tta)]]
            oof[("ensemble", w, c, alpha, tta)] = mean_log_prob(members)
    return oof


def inner_scores(oof: dict, y, priors=PRIOR_GRID) -> pd.DataFrame:
    """Inner-fold scores of every candidate setting, from out-of-fold predictions.

    Args:
        oof: from :func:`inner_oof`.
        y: the class indices it predicted.
        priors: benign prior factors.

    Returns:
        DataFrame ``head, weighting, C, alpha, tta, prior`` and :data:`SCORE_COLUMNS` (``C``
        NaN for an MLP, ``alpha`` NaN for a linear probe).
    """
    y = np.asarray(y)
    rows = []
    for (head, weighting, c, alpha, tta), probs in oof.items():
        for prior in priors:
            m = confusion_metrics(confusion(y, with_prior(probs, prior).argmax(axis=1)))
            setting = {"head": head, "weighting": weighting, "C": c, "alpha": alpha}
            scores = {k: float(m[k]) for k in SCORE_COLUMNS}
            rows.append(setting | {"tta": tta, "prior": prior} | scores)
    return pd.DataFrame(rows).astype({"C": float, "alpha": float})


def best_setting(scores: pd.DataFrame, recipe: Recipe) -> dict:
    """The recipe's best ``C`` or ``alpha`` (and prior, when it tunes one) by inner macro-F1.

    Args:
        scores: from :func:`inner_scores`.
        recipe: the candidate.

    Returns:
        ``{"head", "weighting", "C", "alpha", "tta", "prior", "inner_macro_f1"}`` (``C`` or
        ``alpha`` None when the head has none; ties: the stronger penalty, i.e. the smaller
        C and the larger alpha, then the smaller prior).
    """
    part = scores[
        (scores["head"] == recipe.head)
        & (scores["weighting"] == recipe.weighting)
        & (scores["tta"] == recipe.tta)
        & ((scores["prior"] == 1.0) | recipe.prior)
    ]
    if part.empty:
        raise ValueError(f"best_setting: no inner scores for recipe {recipe.name!r}")
    order = ["macro_f1", "C", "alpha", "prior"]
    row = part.sort_values(order, ascending=[False, True, False, True]).iloc[0]
    return {
        "head": recipe.head,
        "weighting": recipe.weighting,
        "C": None if pd.isna(row["C"]) else float(row["C"]),
        "alpha": None if pd.isna(row["alpha"]) else float(row["alpha"]),
        "tta": bool(row["tta"]),
        "prior": float(row["prior"]),
        "inner_macro_f1": float(row["macro_f1"]),
    }


def model_keys(setting: dict) -> list[tuple]:
    """The fitted heads a setting uses: ``(head, weighting, C or alpha)`` of each member.

    Args:
        setting: from :func:`best_setting`.

    Returns:
        One key for a probe or an MLP, two (probe, MLP) for an ensemble.
    """
    keys = []
    if setting["head"] in ("linear", "ensemble"):
        keys.append(("linear", setting["weighting"], setting["C"]))
    if setting["head"] in ("mlp", "ensemble"):
        keys.append(("mlp", setting["weighting"], setting["alpha"]))
    return keys


def select(x, views, y, groups, train, seed: int = 0, recipes=RECIPES, refit="all") -> dict:
    """Nested selection inside one outer training set; refit what will be scored on all of it.

    Args:
        x: ``(n, d)`` features of every row.
        views: their features of each view.
        y: class indices; only the ``train`` rows are read.
        groups: the case of each row; only the ``train`` rows are read.
        train: positions of the outer training rows (the outer test rows are never read).
        seed: inner-fold seed (and the MLP's random state).
        recipes: the candidates.
        refit: ``"all"`` refits the heads of every recipe (to score each on the outer test
            fold), ``"selected"`` only those of the selected recipe.

    Returns:
        ``{"settings": {recipe name: setting}, "models": {model key: fitted head},
        "selected": recipe name}``: the setting of each recipe chosen on inner folds, the
        refitted heads (keys: :func:`model_keys`; :func:`fitted` finds a recipe's), and the
        recipe with the best inner macro-F1.
    """
    if refit not in ("all", "selected"):
        raise ValueError(f"select: refit must be 'all' or 'selected', got {refit!r}")
    train = np.asarray(train)
    xs, vs = x[train], [v[train] for v in views]
    ys, gs = np.asarray(y)[train], np.asarray(groups)[train]
    with one_thread():
        scores = inner_scores(inner_oof(xs, vs, ys, gs, seed, recipes), ys)
        settings = {r.name: best_setting(scores, r) for r in recipes}
        rank = {r.name: (settings[r.name]["inner_macro_f1"], -i) for i, r in enumerate(recipes)}
        selected = max(rank, key=rank.get)
        refitted = settings.values() if refit == "all" else [settings[selected]]
        models = {}
        for key in sorted({k for s in refitted for k in model_keys(s)}, key=repr):
            head, weighting, value = key
            models[key] = fit_heads(xs, ys, gs, head, weighting, [value], seed)[value]
    return {"settings": settings, "models": models, "selected": selected}


def select_and_predict(
    x, views, y, groups, train, test, seed: int = 0, recipes=RECIPES, scored="all"
) -> dict:
    """One outer fold: :func:`select` on its training rows, then its test rows' probabilities.

    The answer holds no fitted model, so it is small enough to keep in the results cache.

    Args:
        x: ``(n, d)`` features of every row.
        views: their features of each view.
        y: class indices; only the ``train`` rows are read.
        groups: the case of each row; only the ``train`` rows are read.
        train: positions of the outer training rows.
        test: positions of the outer test rows (only their features are read).
        seed: inner-fold seed (and the MLP's random state).
        recipes: the candidates.
        scored: ``"all"`` predicts with every recipe, ``"selected"`` with the selected one
            only (and refits only its heads).

    Returns:
        ``{"settings", "selected", "probs": {recipe name: (len(test), 3)}}``.
    """
    selection = select(x, views, y, groups, train, seed, recipes, refit=scored)
    names = [r.name for r in recipes] if scored == "all" else [selection["selected"]]
    with one_thread():
        probs = {name: apply(selection, name, x, views, test) for name in names}
    return {"settings": selection["settings"], "selected": selection["selected"], "probs": probs}


def fitted(selection: dict, name: str):
    """The refitted head of one recipe of a selection.

    Args:
        selection: from :func:`select`.
        name: the recipe's name.

    Returns:
        A fitted pipeline, or for an ensemble the list of its members (what :func:`predict`
        and :func:`keras_head` take).
    """
    models = [selection["models"][k] for k in model_keys(selection["settings"][name])]
    return models if len(models) > 1 else models[0]


def apply(selection: dict, name: str, x, views, rows) -> np.ndarray:
    """Probabilities of one selected recipe on some rows (e.g. the outer test fold).

    Args:
        selection: from :func:`select`.
        name: the recipe's name.
        x: ``(n, d)`` features of every row.
        views: their features of each view.
        rows: positions to predict.

    Returns:
        ``(len(rows), 3)`` probabilities.
    """
    s = selection["settings"][name]
    probs = predict(
        fitted(selection, name), x[rows], [v[rows] for v in views] if s["tta"] else None
    )
    return with_prior(probs, s["prior"])


def _affine(pre: Pipeline, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` with ``pre.transform(x) == x @ a + b`` for an affine preprocessing."""
    b = pre.transform(np.zeros((1, d)))[0]
    return pre.transform(np.eye(d)) - b, b


def _member(model: Pipeline, inputs, name: str) -> tuple:
    """What a head's last layer reads, and its kernel and bias (preprocessing folded in)."""
    d, last = inputs.shape[-1], model[-1]
    a, b = _affine(model[:-1], d)
    if isinstance(last, LogisticRegression):
        return inputs, a @ last.coef_.T, b @ last.coef_.T + last.intercept_
    if not isinstance(last, MLPClassifier) or len(last.coefs_) != 2 or last.activation != "relu":
        raise ValueError(f"keras_head: needs a probe or a one-layer ReLU MLP, got {last!r}")
    layer = keras.layers.Dense(last.coefs_[0].shape[1], activation="relu", name=name)
    hidden = layer(inputs)
    w, bias = a @ last.coefs_[0], b @ last.coefs_[0] + last.intercepts_[0]
    layer.set_weights([w.astype(np.float32), bias.astype(np.float32)])
    return hidden, last.coefs_[1], last.intercepts_[1]


def keras_head(model, prior: float = 1.0, name: str = "linear_probe"):
    """A fitted head as a Keras model on the pooled features.

    A probe becomes one Dense(3, softmax) layer, an MLP Dense(h, relu) then Dense(3, softmax);
    an ensemble (a list of heads) joins what its members' last layers read and averages their
    logits in one Dense(3, softmax). The preprocessing (standardization, the MLP's PCA) is
    folded into the first layer and the benign prior into the last bias (a log-prior), so
    ``head(features)`` equals :func:`with_prior` of :func:`predict`.

    Args:
        model: from :func:`fit_heads` (or :func:`fit_path`), or a list of them (an ensemble).
        prior: the benign prior factor.
        name: the model's name.

    Returns:
        An uncompiled ``keras.Model`` on ``(n, d)`` features.
    """
    members = model if isinstance(model, list) else [model]
    inputs = keras.Input((members[0][0].n_features_in_,), name="features")
    parts = [_member(m, inputs, f"hidden_{j}") for j, m in enumerate(members)]
    joined = parts[0][0]
    if len(parts) > 1:
        joined = keras.layers.Concatenate(name="joined")([p[0] for p in parts])
    kernel = np.vstack([p[1] for p in parts]) / len(parts)
    bias = np.sum([p[2] for p in parts], axis=0) / len(parts)
    bias[CLASSES.index("benign")] += np.log(prior)
    layer = keras.layers.Dense(len(CLASSES), activation="softmax", name="predictions")
    head = keras.Model(inputs, layer(joined), name=name)
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return head
