"""``import lmmlib`` loads only the exceptions; the API is imported on first use."""

from __future__ import annotations

import subprocess
import sys

import lmmlib

HEAVY = ("pandas", "scipy", "formulaic", "numpy")


def test_import_loads_no_numerical_library():
    code = ("import sys, lmmlib; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def test_every_public_name_resolves_and_is_listed():
    for name in lmmlib.__all__:
        assert getattr(lmmlib, name) is not None
    assert set(lmmlib.__all__) <= set(dir(lmmlib))
    # the first use imports the defining module; the name is then a plain attribute
    assert lmmlib.lmer.__module__ == "lmmlib.models.fit"
    assert "lmer" in vars(lmmlib)
