"""Reading the stored benchmark results (lmmlib.benchmarks); no benchmark is rerun."""

from __future__ import annotations

import pytest

from lmmlib.benchmarks import markdown_tables, stored_results
from lmmlib.errors import LmmlibError


def test_markdown_tables_keep_escaped_pipes():
    text = "intro\n\n| model | ms |\n|---|---:|\n| `(1\\|g)` | 4.4 |\n\nend\n"
    (table,) = markdown_tables(text)
    assert list(table.columns) == ["model", "ms"]
    assert table.iloc[0].tolist() == ["`(1|g)`", "4.4"]


def test_stored_results_are_complete():
    results = stored_results()
    assert {"insteval", "large", "slope", "scaling", "machine"} <= set(results.scale)
    assert "lmmlib" in results.small[0].columns and len(results.small[0]) == 3
    assert results.small_machine["python"].startswith("3.11")
    assert len(results.inference) == 2


def test_missing_results_say_what_to_do(tmp_path):
    with pytest.raises(LmmlibError, match="make bench"):
        stored_results(tmp_path)
