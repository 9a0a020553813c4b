"""pyproject.toml is the one list of dependencies; environment.yml must name the same."""

import re
import tomllib

from lungct_utils.config import ROOT

REQUIRED = {"jupyterlab", "tensorflow", "scikit-learn", "seaborn", "pandas", "papermill", "nbval"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0].lower()


def _pyproject() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        specs += extra
    return {_name(s) for s in specs}


def _environment_yml() -> set[str]:
    names = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s{6}- ([A-Za-z0-9_.\-]+)", line)
        if m and not line.strip().startswith("- -e"):
            names.add(_name(m.group(1)))
    return names


def test_environment_yml_matches_pyproject():
    assert _environment_yml() == _pyproject()


def test_required_packages_are_listed():
    assert REQUIRED <= _pyproject()


def test_versions_are_ranges_not_bare_names():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in meta["dependencies"]:
        assert re.search(r"[<>=]", spec), spec
