"""The package's shape: modules in flow order, imports at the top."""

import ast
from pathlib import Path

import pytest

from lungct_utils import config

PACKAGE = config.ROOT / "lungct_utils"
#: The flow a reader expects: each module may import only those before it.
FLOW = [
    "config",
    "io_utils",
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
    "model",
    "train",
    "evaluate",
    "comparisons",
    "probe",
    "beyond",
    "transfer",
    "pipeline",
    "tables",
    "bracket",
    "external_summary",
    "plots",
    "report",
    "drift",
]
#: What serves the usable model, after the flow, in its own order.
APP = [
    "corpus",
    "ood",
    "gradcam",
    "predict",
    "validate",
    "export",
    "deployment",
    "benchmark",
    "finetune",
    "model_card",
    "notebooks",
    "cli",
]
ORDER = FLOW + [f"app.{m}" for m in APP]


def _modules():
    files = sorted(PACKAGE.glob("*.py")) + sorted((PACKAGE / "app").glob("*.py"))
    return [f for f in files if f.stem not in ("__init__", "__main__")]


def _name(path: Path) -> str:
    return path.stem if path.parent == PACKAGE else f"app.{path.stem}"


def _imports(path: Path) -> list[tuple[str, int]]:
    """Package modules a file imports, with the line, from any depth of the syntax tree."""
    tree = ast.parse(path.read_text())
    inside_app = path.parent.name == "app"
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = "app." if inside_app and node.level == 1 else ""
        if node.module:
            out.append((base + node.module, node.lineno))
        else:  # from . import a, b
            out += [(base + alias.name, node.lineno) for alias in node.names]
    return out


def test_every_module_is_placed_in_the_flow():
    assert sorted(_name(p) for p in _modules()) == sorted(ORDER)


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_module_imports_a_later_one(path):
    me = ORDER.index(_name(path))
    for module, line in _imports(path):
        if module in ("app",):
            continue
        assert module in ORDER, f"{path.name}:{line} imports unknown {module}"
        assert ORDER.index(module) < me, f"{path.name}:{line} imports {module}, later in the flow"


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
                    assert _name(path) == "app.cli" or "# lazy:" in above, (
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
