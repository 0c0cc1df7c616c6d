"""Shared test helpers: the lme4 reference fixtures and the fits they describe.

Fixtures come from ``tests/reference/lme4_goldens.R`` (R lme4, see
``tests/reference/README.md``).  The course datasets are loaded with
``lmmlib.datasets`` from ``$LMMLIB_DATA_MIRROR`` (no network in tests).
"""

from __future__ import annotations

import json
import os
import warnings
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

import lmmlib
from lmmlib.datasets import load

FIXTURES = Path(__file__).parent / "reference" / "fixtures"

if "LMMLIB_DATA_MIRROR" not in os.environ:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if shared.is_dir():
        os.environ["LMMLIB_DATA_MIRROR"] = str(shared)


def fixture_names(kind: str | None = None) -> list[str]:
    """Names of the lme4 fixtures (optionally only ``"lmer"`` or ``"lm"`` ones)."""
    names = json.loads((FIXTURES / "index.json").read_text())["models"]
    return [n for n in names if kind is None or lme4_fixture(n)["kind"] == kind]


@cache
def reference(folder: str, name: str) -> dict:
    """One reference fixture of a folder of tests/reference/fixtures ("" for the lme4
    fits; "confint", "lmertest", "rlrsim", "anova", "glmer"); see its README."""
    return json.loads((FIXTURES / folder / f"{name}.json").read_text())


def reference_names(folder: str) -> list[str]:
    """Names of the fixtures of one reference folder."""
    return sorted(p.stem for p in (FIXTURES / folder).glob("*.json") if p.stem != "index")


def lme4_fixture(name: str) -> dict:
    """One lme4 lmer/lm fixture as a dict."""
    return reference("", name)


@cache
def course_data(name: str) -> pd.DataFrame:
    """A cleaned course dataset; Nepal gets ``ageC = age - 36`` as in the course."""
    df = load(name)
    if name == "nepal":
        df = df.assign(ageC=df["age"] - 36)
    return df


def fixture_data(fx: dict) -> pd.DataFrame:
    """The data a fixture was fitted to, with R's factor level order."""
    df = pd.DataFrame(fx["data"]) if fx["dataset"] == "inline" else course_data(fx["dataset"])
    df = df.copy()
    for col, levels in fx.get("factors", {}).items():
        df[col] = pd.Categorical(df[col].astype(str), categories=[str(v) for v in levels])
    return df


@cache
def fitted(name: str):
    """lmmlib's fit of the model a fixture describes (cached for the session)."""
    fx = lme4_fixture(name)
    data = fixture_data(fx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.SingularFitWarning)
        if fx["kind"] == "lm":
            return lmmlib.lm(fx["formula"], data)
        return lmmlib.lmer(fx["formula"], data, reml=fx["reml"])


@pytest.fixture(scope="session")
def pig() -> pd.DataFrame:
    """Pig weights (48 pigs x 9 weeks)."""
    return course_data("pig")


@pytest.fixture(scope="session")
def nepal() -> pd.DataFrame:
    """Nepalese children, cleaned as in the course, with ageC."""
    return course_data("nepal")


@pytest.fixture(scope="session")
def pulp() -> pd.DataFrame:
    """Paper pulp brightness by operator."""
    return course_data("pulp")
