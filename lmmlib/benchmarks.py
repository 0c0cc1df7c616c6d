"""Stored benchmark results, for reports such as the book's performance appendix.

``make bench`` writes its results into ``tests/benchmarks/`` of the repository:
``scale_results.json`` (large models) and two markdown reports,
``results.md`` (small course models) and ``inference_results.md`` (RLRT and
bootstrap).  This module reads them back; it never runs a benchmark.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import LmmlibError

__all__ = ["PEER_TOOLS", "StoredResults", "markdown_tables", "peer_table", "results_folder",
           "stored_results"]

PEER_TOOLS = ("lmmlib", "mixedlm", "mixedlm-rs", "lme-python", "interlace", "statsmodels")

_PIPE = "\u2223"  # stands in for an escaped "\|" while a table row is split


def results_folder() -> Path:
    """``$LMMLIB_BENCH_DIR`` or the repository's ``tests/benchmarks`` folder."""
    env = os.environ.get("LMMLIB_BENCH_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "tests" / "benchmarks"


def markdown_tables(text: str) -> list[pd.DataFrame]:
    """The pipe tables of a markdown report, as DataFrames of strings."""
    text = text.replace("\\|", _PIPE)
    tables = []
    for block in (b.strip() for b in text.split("\n\n")):
        if not block.startswith("|"):
            continue
        rows = [[c.strip().replace(_PIPE, "|") for c in line.strip().strip("|").split("|")]
                for line in block.splitlines() if not line.startswith("|---")]
        tables.append(pd.DataFrame(rows[1:], columns=rows[0]))
    return tables


def _machine(text: str) -> dict[str, str]:
    section = text.split("## Machine", 1)[1] if "## Machine" in text else ""
    return dict(line[2:].split(": ", 1) for line in section.splitlines()
                if line.startswith("- ") and ": " in line)


@dataclass(frozen=True)
class StoredResults:
    """The benchmark results of the last ``make bench``."""

    scale: dict
    small: list[pd.DataFrame]
    small_machine: dict[str, str]
    inference: list[pd.DataFrame]
    partitioned: dict | None = None  # bench_partitioned.py's result, if it was run
    peers: dict | None = None  # bench_peers.py's result, if it was run


def stored_results(folder: str | Path | None = None) -> StoredResults:
    """Read the stored benchmark results.

    Parameters
    ----------
    folder : path, optional
        Where the results are (default: :func:`results_folder`).

    Returns
    -------
    StoredResults

    Raises
    ------
    LmmlibError
        If a results file is missing (run ``make bench`` to create it).
    """
    folder = Path(folder) if folder is not None else results_folder()
    try:
        scale = json.loads((folder / "scale_results.json").read_text())
        small = (folder / "results.md").read_text()
        inference = (folder / "inference_results.md").read_text()
    except FileNotFoundError as exc:
        raise LmmlibError(f"benchmark results not found in {folder} ({exc.filename}): "
                          "run `make bench` to create them") from exc
    part = folder / "partitioned_results.json"
    partitioned = json.loads(part.read_text()) if part.exists() else None
    peers_file = folder / "peers_results.json"
    peers = json.loads(peers_file.read_text()) if peers_file.exists() else None
    return StoredResults(scale, markdown_tables(small), _machine(small),
                         markdown_tables(inference), partitioned, peers)


def _peer_cell(r: dict) -> str:
    if r.get("median") is None:
        return "–"
    seconds = r["median"]
    text = f"{1e3 * seconds:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    return text + (" ✗" if r.get("correct") is False else "")


def peer_table(peers: dict) -> pd.DataFrame:
    """The peer benchmark as a table: one row per model, median time per tool.

    ``✗`` marks a tool that stopped at a worse optimum, ``–`` one that could
    not fit the model; the last columns name the fastest correct peer and
    lmmlib's time over its time.

    Parameters
    ----------
    peers : dict
        ``StoredResults.peers`` (bench_peers.py's result).

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> run = {"models": {"pig": {"label": "pig", "lmmlib": {"median": 0.002},
    ...        "mixedlm": {"median": 0.004, "correct": True},
    ...        "fastest_peer": {"tool": "mixedlm", "ratio": 0.5}}}}
    >>> peer_table(run).loc["pig", ["lmmlib", "mixedlm", "lmmlib / fastest"]].tolist()
    ['2.0 ms', '4.0 ms', 0.5]
    """
    rows = {}
    for res in peers["models"].values():
        best = res.get("fastest_peer", {})
        rows[res["label"]] = {**{t: _peer_cell(res.get(t, {})) for t in PEER_TOOLS},
                              "fastest correct peer": best.get("tool", "–"),
                              "lmmlib / fastest": best.get("ratio", np.nan)}
    return pd.DataFrame(rows).T
