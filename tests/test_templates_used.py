"""Each template's passages against the code that fills them, read from the source.

A module fills its template only through its ``_say(key, **values)``; a key is a literal, a
conditional between literals, or a module-level dict's values. So the test knows every
passage the code can ask for: none missing, none dead, and each filled with its fields.
"""

import ast

import pytest

from lungct_utils import config, prose

PACKAGE = config.ROOT / "lungct_utils"
#: Module (path in the package) -> the template file it fills.
USERS = {
    "sentences.py": "sentences",
    "deploy/model_card.py": "model_card",
    "studies/deployment.py": "deployment",
}


def _module_dicts(tree: ast.Module) -> dict[str, ast.Dict]:
    """Module-level ``NAME = {...}`` assignments."""
    found = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets if isinstance(value, ast.Dict) else []:
            if isinstance(target, ast.Name):
                found[target.id] = value
    return found


def _keys(node: ast.expr, dicts: dict[str, ast.Dict]) -> set[str]:
    """Every passage key a key expression can take."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _keys(node.body, dicts) | _keys(node.orelse, dicts)
    if isinstance(node, ast.Name) and node.id in dicts:
        return set().union(*(_keys(v, dicts) for v in dicts[node.id].values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "get" and len(node.args) == 2:  # DICT.get(x, "default")
            return _keys(node.func.value, dicts) | _keys(node.args[1], dicts)
    raise AssertionError(f"line {node.lineno}: a key the test cannot read: {ast.unparse(node)}")


def _says(path):
    """``(line, possible keys, keyword names or None for **values)`` of each ``_say`` call."""
    tree = ast.parse(path.read_text())
    dicts = _module_dicts(tree)
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_say":
            names = [k.arg for k in node.keywords]
            keywords = None if None in names else set(names)
            calls.append((node.lineno, _keys(node.args[0], dicts), keywords))
    return tree, calls


def _fields(name: str, key: str) -> set[str]:
    return {f.split(".")[0].split("[")[0] for f in prose.fields(name, key)}


@pytest.mark.parametrize(("module", "name"), USERS.items())
def test_the_module_fills_its_template_only_through_say(module, name):
    tree, _ = _says(PACKAGE / module)
    fills = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "fill"
    ]
    assert len(fills) == 1, f"{module}: {len(fills)} prose.fill calls"
    say = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "_say")
    assert fills[0] in list(ast.walk(say)) and fills[0].args[0].value == name


@pytest.mark.parametrize(("module", "name"), USERS.items())
def test_every_passage_is_used_and_every_key_exists(module, name):
    _, calls = _says(PACKAGE / module)
    used = set().union(*(keys for _, keys, _ in calls))
    passages = set(prose.passages(name))
    assert not used - passages, f"{module} asks {name}.md for {sorted(used - passages)}"
    assert not passages - used, f"{name}.md passages no code uses: {sorted(passages - used)}"


@pytest.mark.parametrize(("module", "name"), USERS.items())
def test_each_passage_gets_its_fields_and_nothing_else(module, name):
    for line, keys, keywords in _says(PACKAGE / module)[1]:
        if keywords is None:
            continue
        wanted = {k: _fields(name, k) for k in keys}
        for key, fields in wanted.items():
            assert fields <= keywords, f"{module}:{line}: {key!r} needs {sorted(fields)}"
        unused = keywords - set().union(*wanted.values())
        assert not unused, f"{module}:{line}: {sorted(unused)} fill no passage of {sorted(keys)}"
