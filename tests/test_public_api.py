"""The package uses public Keras and TensorFlow APIs only: no private attributes, no raw ops.

The rule, read from each module's syntax tree: a name with one leading underscore (``_x``,
not ``__x__``) may follow only ``self``, ``cls``, a name the module imports from the package
itself (a module, class or function of ours), or a parameter annotated with one of the
package's classes. Anything else (``opt._momentums``, ``converter._flag``, also through
``getattr``/``hasattr``/``setattr``/``delattr`` with a literal name, or ``from x import _y``)
reaches into another library's internals. ``tf.raw_ops`` and imports from the internal
namespaces ``keras.src`` and ``tensorflow.python`` are flagged whatever the spelling.
"""

import ast
import functools
from pathlib import Path

import pytest

from lungct_utils import config

PACKAGE = config.ROOT / "lungct_utils"
INTERNAL_MODULES = ("keras.src", "tensorflow.python")
BY_NAME = ("getattr", "hasattr", "setattr", "delattr")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _internal(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in INTERNAL_MODULES)


def _own_imports(tree: ast.Module) -> set[str]:
    """Names a module binds by importing from the package (relative or ``lungct_utils``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (
            node.level > 0 or (node.module or "").split(".")[0] == "lungct_utils"
        ):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {
                alias.asname or alias.name.split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] == "lungct_utils"
            }
    return names


class _Scan(ast.NodeVisitor):
    """Collects ``(line, what)`` for every use of a private or internal API in one module."""

    def __init__(self, own_names: set[str], own_classes: frozenset[str]) -> None:
        self.own_classes = own_classes
        self.allowed = [{"self", "cls", *own_names}]  # receivers, innermost scope last
        self.found: list[tuple[int, str]] = []

    def _ours(self, receiver: ast.expr) -> bool:
        return isinstance(receiver, ast.Name) and receiver.id in self.allowed[-1]

    def _flag(self, node: ast.AST) -> None:
        self.found.append((node.lineno, ast.unparse(node)))

    def visit_FunctionDef(self, node) -> None:
        args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        typed = {
            a.arg
            for a in args
            if a.annotation is not None
            and ast.unparse(a.annotation).strip("'\"") in self.own_classes
        }
        self.allowed.append(self.allowed[-1] | typed)
        self.generic_visit(node)
        self.allowed.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "raw_ops" or (_private(node.attr) and not self._ours(node.value)):
            self._flag(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in BY_NAME
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not self._ours(node.args[0])
        ):
            self._flag(node)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        if any(_internal(a.name) or a.name.endswith(".raw_ops") for a in node.names):
            self._flag(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level > 0 or (node.module or "").split(".")[0] == "lungct_utils":
            return
        module = node.module or ""
        names = [a.name for a in node.names]
        if _internal(module) or module.endswith("raw_ops") or "raw_ops" in names:
            self._flag(node)
        elif any(_private(n) for n in names):
            self._flag(node)


def violations(source: str, own_classes: frozenset[str]) -> list[tuple[int, str]]:
    """Private or internal API uses in one module's source, as ``(line, code)``.

    Args:
        source: Python source.
        own_classes: class names the package defines (annotations that make a parameter ours).

    Returns:
        The uses found, by line.
    """
    tree = ast.parse(source)
    scan = _Scan(_own_imports(tree), own_classes)
    scan.visit(tree)
    return sorted(scan.found)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@functools.cache
def _own_classes() -> frozenset[str]:
    return frozenset(
        node.name
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    )


def test_the_rule_flags_private_optimizer_state_and_raw_ops():
    source = """
import tensorflow as tf
from keras.src.optimizers import adam
from tensorflow.python.ops import gen_training_ops
from keras import _tf_keras

def step(opt, var, grad):
    m = opt._momentums[opt._get_variable_index(var)]
    tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m, grad=grad)
    return getattr(opt, "_velocities")
"""
    found = [code for _, code in violations(source, frozenset())]
    assert "opt._momentums" in found
    assert "opt._get_variable_index" in found
    assert "tf.raw_ops" in found
    assert "getattr(opt, '_velocities')" in found
    assert len([c for c in found if c.startswith(("from", "import"))]) == 3  # the three imports


def test_the_rule_allows_our_own_private_names():
    source = """
from .. import train
from ..features import Cache

class Engine:
    def run(self, x):
        return self._interp(x), self.__class__, x.__len__()

def warm(engine: Engine, cache: "Cache"):
    if not hasattr(engine, "_grad"):
        engine._grad = train._schedule
    return cache._stamp, Cache._version
"""
    assert violations(source, frozenset({"Engine", "Cache"})) == []
    assert violations(source, frozenset()) == [  # the same parameters without our annotations
        (10, "hasattr(engine, '_grad')"),
        (11, "engine._grad"),
        (12, "cache._stamp"),
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_package_uses_public_apis_only(path):
    found = violations(path.read_text(), _own_classes())
    assert not found, "\n".join(f"{path.name}:{line}: {code}" for line, code in found)
