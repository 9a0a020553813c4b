"""The package's shape: layers by role, modules in flow order, imports at the top.

Four layers, each importing only from the layers before it (and, inside a layer, only
from modules before it):

1. **core** (``lungct_utils/*.py``): the research flow the notebooks walk, from the
   settings to the input check and the reports;
2. **deploy** (``lungct_utils/deploy/``): the shipped tool: a model on a new study,
   its explanation, its scoring on a labelled folder, its files and its card;
3. **studies** (``lungct_utils/studies/``): measurements of the tool and the pipeline:
   speed against plain Keras, fine-tuning, the deployed files' cost and accuracy;
4. **top** (``lungct_utils/*.py``): the notebook runner and the command line, which
   reach every layer.
"""

import ast
from pathlib import Path

import pytest

from lungct_utils import config

PACKAGE = config.ROOT / "lungct_utils"
#: The layers in order; each module may import only those before it in this listing.
LAYERS = {
    "core": [
        "config",
        "io_utils",
        "parts",
        "prose",
        "cache",
        "images",
        "data",
        "fetch",
        "augment",
        "shift",
        "audit",
        "cases",
        "groupings",
        "external",
        "splits",
        "features",
        "corpus",
        "input_check",
        "model",
        "train",
        "evaluate",
        "comparisons",
        "heads",
        "crossval",
        "goal",
        "transfer",
        "pipeline",
        "tables",
        "bracket",
        "external_summary",
        "plots",
        "sentences",
        "report",
        "drift",
    ],
    "deploy": ["gradcam", "predict", "validate", "export", "model_card"],
    "studies": ["benchmark", "finetune", "deployment"],
    "top": ["runner", "cli"],
}
#: Where each layer's modules live.
FOLDERS = {"core": PACKAGE, "deploy": PACKAGE / "deploy", "studies": PACKAGE / "studies"}
FOLDERS["top"] = PACKAGE


def _qualified(layer: str, module: str) -> str:
    return f"{layer}.{module}" if layer in ("deploy", "studies") else module


ORDER = [_qualified(layer, m) for layer, modules in LAYERS.items() for m in modules]


def _modules():
    files = sorted(PACKAGE.rglob("*.py"))
    return [f for f in files if f.stem not in ("__init__", "__main__")]


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _layer(name: str) -> str:
    return next(
        layer
        for layer, ms in LAYERS.items()
        if name in map(lambda m, layer=layer: _qualified(layer, m), ms)
    )


def _imports(path: Path) -> list[tuple[str, int]]:
    """Package modules a file imports (as package-relative names), with the line."""
    here = list(path.relative_to(PACKAGE).parent.parts)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = ".".join([*here[: len(here) - (node.level - 1)], *filter(None, [node.module])])
        for alias in node.names:  # a name may be a module of a folder: from .deploy import x
            inner = f"{base}.{alias.name}".lstrip(".")
            out.append((inner if inner in ORDER else base, node.lineno))
    return out


def test_every_module_is_placed_in_a_layer():
    assert sorted(_name(p) for p in _modules()) == sorted(ORDER)


def test_no_folder_outside_the_layers():
    folders = {p.parent for p in _modules()}
    assert folders <= set(FOLDERS.values()), folders


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_a_module_sits_in_its_layers_folder(path):
    assert path.parent == FOLDERS[_layer(_name(path))]


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_module_imports_a_later_one(path):
    me = ORDER.index(_name(path))
    for module, line in _imports(path):
        assert module in ORDER, f"{path.name}:{line} imports unknown {module}"
        assert ORDER.index(module) < me, f"{path.name}:{line} imports {module}, later in the flow"


def test_the_core_does_not_reach_up_to_the_tool():
    """The notebooks' research imports only the core: no core module names a later layer."""
    for path in _modules():
        if _layer(_name(path)) == "core":
            for module, line in _imports(path):
                assert _layer(module) == "core", f"{path.name}:{line} imports {module}"


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_imports_are_at_the_top_or_say_why_they_are_lazy(path):
    """An import inside a function needs a reason: the command line (``verify`` must not load
    TensorFlow), or a ``# lazy:`` comment just above it."""
    lines = path.read_text().splitlines()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    above = "\n".join(lines[max(0, inner.lineno - 4) : inner.lineno])
                    assert _name(path) == "cli" or "# lazy:" in above, (
                        f"{path.name}:{inner.lineno} imports inside a function without a reason"
                    )


def test_config_holds_no_dead_entries():
    source = "\n".join(p.read_text() for p in _modules() if p.stem != "config")
    source += "\n".join(p.read_text() for p in (config.ROOT / "tests").glob("*.py"))
    source += "\n".join(p.read_text() for p in config.NOTEBOOKS.glob("*.ipynb"))
    own = (PACKAGE / "config.py").read_text()
    tree = ast.parse(own)
    names = [
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name) and t.id.isupper()
    ]
    # used by another module, a test or a notebook, or by another entry of config itself
    unused = [n for n in names if n not in source and own.count(n) < 2]
    assert not unused, unused


def test_the_readme_layout_names_every_module_in_its_layer():
    """The README's layout section must follow the package: a new module is described."""
    text = (config.ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout") : text.index("## The protocols")]
    sections = layout.split("**2. The shipped tool**")
    core, rest = sections[0], sections[1]
    deploy, rest = rest.split("**3. The studies**")
    studies, top = rest.split("**4. The top**")
    where = {"core": core, "deploy": deploy, "studies": studies, "top": top}
    for layer, modules in LAYERS.items():
        missing = [m for m in modules if f"`{m}`" not in where[layer]]
        assert not missing, f"README layout, {layer}: {missing}"
