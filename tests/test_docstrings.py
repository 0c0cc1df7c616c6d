"""Every example in lmmlib's docstrings runs and prints what it shows.

The examples use the course data (through ``LMMLIB_DATA_MIRROR`` like the rest of
the suite); printed numbers are rounded to digits that hold on any BLAS kernel.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pandas as pd
import pytest

import lmmlib

MODULES = sorted(m.name for m in pkgutil.walk_packages(lmmlib.__path__, "lmmlib.")
                 if not m.name.endswith("__main__"))


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, name, globs={"lmmlib": lmmlib, "np": np, "pd": pd})
            if t.examples and t.name.startswith(name)]


WITH_EXAMPLES = [m for m in MODULES if _examples(m)]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        test.globs.update(vars(importlib.import_module(name)))
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_examples_are_found():
    # the examples of the fitting functions and the textbook helpers are among them
    assert {"lmmlib.models.fit", "lmmlib.course.aov", "lmmlib.inference.anova"} <= set(
        WITH_EXAMPLES)
