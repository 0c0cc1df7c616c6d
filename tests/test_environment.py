"""pyproject.toml and environment.yml pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse_pins(requirements: list[str], source: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for req in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)\s*", req)
        assert match, f"{source}: {req!r} is not an exact pin (name==version)"
        name, version = _normalise(match.group(1)), match.group(2)
        assert pins.get(name, version) == version, f"{source}: {name} pinned twice differently"
        pins[name] = version
    return pins


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _environment() -> dict:
    with (ROOT / "environment.yml").open() as fh:
        return yaml.safe_load(fh)


def _pyproject_pins() -> dict[str, str]:
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs.extend(extra)
    return _parse_pins(reqs, "pyproject.toml")


def _environment_pins() -> dict[str, str]:
    deps = _environment()["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    return _parse_pins(pip_sections[0], "environment.yml")


def test_pins_agree() -> None:
    py, env = _pyproject_pins(), _environment_pins()
    only_py = sorted(set(py) - set(env))
    only_env = sorted(set(env) - set(py))
    assert not only_py, f"pinned in pyproject.toml but not in environment.yml: {only_py}"
    assert not only_env, f"pinned in environment.yml but not in pyproject.toml: {only_env}"
    differ = {n: (py[n], env[n]) for n in py if py[n] != env[n]}
    assert not differ, f"versions differ (pyproject, environment): {differ}"


def test_expected_extras_and_python() -> None:
    project = _pyproject()["project"]
    assert project["name"] == "lmmlib"
    assert project["requires-python"] == ">=3.11"
    assert set(project["optional-dependencies"]) == {"test", "book", "bench"}
    book = _parse_pins(project["optional-dependencies"]["book"], "pyproject.toml")
    assert book["jupyter-book"].startswith("1."), "the book needs Jupyter Book 1 (offline build)"
    env = _environment()
    assert env["name"] == "lmm-workbook"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda
    assert "pip" in conda


def test_parse_pins_normalises_names() -> None:
    pins = _parse_pins(["PyYAML==6.0.3", "jupyter_book==1.0.4.post1"], "test")
    assert pins == {"pyyaml": "6.0.3", "jupyter-book": "1.0.4.post1"}
