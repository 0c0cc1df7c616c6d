"""The course datasets: where they come from, how they are checked and cleaned.

The datasets of the book (see data/README.md for sources and licences):

``pig``
    Weekly weights of 48 pigs over 9 weeks (Diggle et al. 2002), 432 rows.
``nepal``
    Arm circumference of Nepalese children (West et al. 1997), five visits each.
``pulp``
    Brightness of paper pulp by shift operator (Sheldon 1960), 20 rows.
``soybean`` and ``soybean_disks``
    Photoprotection (AqE) of 41 soybean genotypes in 2021-2022: plot-date means
    and the leaf-disk level measurements.

The CSV files are not stored in the repository.  Each one is identified by its
public URL (pinned to a commit) and its sha256.  :func:`fetch` looks for a file

1. in the folder named by the environment variable ``LMMLIB_DATA_MIRROR``, if set;
2. otherwise in the cache folder (``LMMLIB_DATA_DIR``, by default the repository's
   ``data/`` folder), downloading it there with :mod:`pooch` when absent.

A file whose sha256 does not match raises :class:`~lmmlib.errors.DatasetError`.
``pulp`` ships inside the PyPI package ``faraway``.  Command line:
``python -m lmmlib.datasets fetch`` (fetch and verify) and ``... export DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import TqdmWarning

with warnings.catch_warnings():
    # pooch imports tqdm.auto, which warns in notebooks without ipywidgets; lmmlib
    # never shows pooch's download bar in a notebook, so the warning is noise
    warnings.simplefilter("ignore", TqdmWarning)
    import pooch

from lmmlib.errors import DatasetError

__all__ = ["RemoteFile", "REGISTRY", "available", "fetch", "load", "export", "main"]


@dataclass(frozen=True)
class RemoteFile:
    """A public data file, pinned by URL and checksum.

    ``fname`` and ``sha256`` describe the file exactly as published at ``url``.
    ``mirror_fname`` and ``mirror_sha256`` describe the copy kept in a mirror
    folder when it differs (``pig``: the mirror copy drops R's row names).
    """

    url: str
    fname: str
    sha256: str
    mirror_fname: str | None = None
    mirror_sha256: str | None = None

    def candidates(self) -> list[tuple[str, str]]:
        """Return the accepted ``(file name, sha256)`` pairs, mirror copy first."""
        pairs = [(self.fname, self.sha256)]
        if self.mirror_fname and self.mirror_sha256:
            pairs.insert(0, (self.mirror_fname, self.mirror_sha256))
        return pairs


_BRISK = "https://raw.githubusercontent.com/thebrisklab/Modern-Regression-Analysis/"
_BRISK += "745d33f05efc7fd93b9a90898bdbb9c2ad2360ce/Data/"
_SP24 = "https://raw.githubusercontent.com/illinois-stat528/stat528sp24/"
_SP24 += "9689bf3e3c27c867f1215491d1a58443a8505ca4/notes/8-linear-mixed-models/"
_SP25 = "https://raw.githubusercontent.com/illinois-stat528/stat528sp25/"
_SP25 += "478ad2c057e7431a634a2e446607dcc92070f35a/notes/8-linear-mixed-models/"

REGISTRY: dict[str, RemoteFile] = {
    "pig": RemoteFile(
        url=_BRISK + "pig.csv",
        fname="pig.csv",
        sha256="87ad2ada57be533361b6c81c95b2969c848324fc5c79df81b2bb8d4ce8bdcb97",
        mirror_fname="pig_weights.csv",
        mirror_sha256="10c66eed393f94e062937a1a5cc7acf7d2e4a21d4f12ba4b5087f384ea9424e3",
    ),
    "nepal": RemoteFile(
        url=_BRISK + "Nepal.csv",
        fname="nepal.csv",
        sha256="0fb3ecef20aec6d7f9297be122276ab85a0c5ca7cee67d992a51014cc5d8bd6a",
    ),
    "soybean": RemoteFile(
        url=_SP24 + "soybean.csv",
        fname="soybean.csv",
        sha256="eb6e56d0fd8b38394cd90f32f85a243cc6b6100b467040c4efba9cdc3eeaaf0d",
    ),
    "soybean_disks": RemoteFile(
        url=_SP25 + "CF_and_weather_data_2021_2022.csv",
        fname="soybean_disk_raw.csv",
        sha256="df5c422429528d33d495b965b48c5468758066380d122f8a2ae263ec067455a2",
    ),
}

#: sha256 of ``faraway/datasets/pulp/pulp.csv.bz2`` in the faraway 0.0.6 wheel.
PULP_SHA256 = "26d0e60bb3935de8e64c0fe26721684a46e4426e0d36eb296fba9ea4c9e8a43d"

_NAMES = ["pig", "nepal", "pulp", "soybean", "soybean_disks"]


def available() -> list[str]:
    """Return the names accepted by :func:`load` and :func:`fetch`.

    Returns
    -------
    list of str
        ``["pig", "nepal", "pulp", "soybean", "soybean_disks"]``.
    """
    return list(_NAMES)


def _check_name(name: str) -> None:
    if name not in _NAMES:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(_NAMES)}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str, fix: str) -> Path:
    actual = _sha256(path)
    if actual != expected:
        raise DatasetError(
            f"{path.name}: checksum mismatch for {path}\n"
            f"  expected sha256 {expected}\n"
            f"  actual   sha256 {actual}\n"
            f"The file is corrupted or a different version. {fix}"
        )
    return path


def _find(rf: RemoteFile, folder: Path, fix: str) -> Path | None:
    """Return the first accepted file present in ``folder``, verified, or None."""
    for fname, sha in rf.candidates():
        path = folder / fname
        if path.is_file():
            return _verify(path, sha, fix)
    return None


def _mirror_dir() -> Path | None:
    value = os.environ.get("LMMLIB_DATA_MIRROR", "").strip()
    return Path(value).expanduser() if value else None


def _cache_dir() -> Path:
    """Folder where downloaded files are kept.

    ``LMMLIB_DATA_DIR`` if set; else the repository's ``data/`` folder when lmmlib
    runs from a checkout and the folder is writable; else pooch's user cache.
    """
    value = os.environ.get("LMMLIB_DATA_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    repo_data = Path(__file__).resolve().parents[1] / "data"
    if (repo_data / "README.md").is_file() and os.access(repo_data, os.W_OK):
        return repo_data
    return Path(pooch.os_cache("lmmlib"))


def _pulp_file() -> Path:
    import faraway.datasets.pulp

    path = Path(faraway.datasets.pulp.__file__).parent / "pulp.csv.bz2"
    if not path.is_file():
        raise DatasetError(
            f"pulp.csv.bz2 not found at {path}; reinstall the faraway package "
            "(pip install --force-reinstall faraway==0.0.6)"
        )
    return _verify(path, PULP_SHA256, "Reinstall the faraway package (faraway==0.0.6).")


def fetch(name: str) -> Path:
    """Return the local path of a dataset's file, downloading it if needed.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    pathlib.Path
        A file whose sha256 has been checked.  For ``pulp`` this is the
        compressed CSV inside the installed ``faraway`` package.

    Raises
    ------
    DatasetError
        If the name is unknown, a file's checksum does not match, or the file is
        absent and cannot be downloaded.
    """
    _check_name(name)
    if name == "pulp":
        return _pulp_file()
    rf = REGISTRY[name]
    mirror = _mirror_dir()
    redo = f"Delete it and re-run `make data` to download it again from {rf.url}"
    if mirror is not None:
        fix = f"Fix the copy in LMMLIB_DATA_MIRROR ({mirror}), or unset LMMLIB_DATA_MIRROR."
        found = _find(rf, mirror, fix)
        if found is not None:
            return found
    cache = _cache_dir()
    found = _find(rf, cache, redo + ".")
    if found is not None:
        return found
    local_name = rf.mirror_fname or rf.fname
    try:
        cache.mkdir(parents=True, exist_ok=True)
        local = pooch.retrieve(
            rf.url, known_hash=f"sha256:{rf.sha256}", path=cache, fname=rf.fname, progressbar=False
        )
    except Exception as exc:
        where = f"the mirror folder {mirror} (LMMLIB_DATA_MIRROR) and " if mirror else ""
        raise DatasetError(
            f"{local_name}: dataset {name!r} is not available locally and could not "
            f"be downloaded.\n  searched: {where}the cache folder {cache}\n"
            f"  URL: {rf.url}\n  download error: {type(exc).__name__}: {exc}\n"
            f"Put {local_name} in a folder and set LMMLIB_DATA_MIRROR to it, "
            "or connect to the network and run `make data`."
        ) from exc
    return Path(local)


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV file, dropping an unnamed first column (R's row names)."""
    frame = pd.read_csv(path)
    first = str(frame.columns[0])
    if first == "" or first.startswith("Unnamed: 0"):
        frame = frame.drop(columns=frame.columns[0])
    return frame


def _genotypes(ids: pd.Series, reference: str) -> pd.Categorical:
    """Remove spaces from genotype labels; ``reference`` becomes the first level."""
    labels = ids.astype(str).str.replace(" ", "", regex=False)
    rest = sorted(set(labels) - {reference})
    return pd.Categorical(labels, categories=[reference, *rest])


def _clean(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if name == "pig":
        out = frame[["id", "weeks", "weight"]].astype(
            {"id": "int64", "weeks": "int64", "weight": "float64"}
        )
    elif name == "nepal":
        out = frame.loc[~frame["arm"].isin([99.9, 88.8])].reset_index(drop=True)
        out["wt"] = out["wt"].mask(out["wt"].isin([99.9, 88.8]))
        out["ht"] = out["ht"].mask(out["ht"].isin([999.9, 888.8]))
    elif name == "pulp":
        out = pd.DataFrame(
            {
                "bright": frame["bright"].astype("float64"),
                "operator": pd.Categorical(
                    frame["operator"].astype(str), categories=["a", "b", "c", "d"]
                ),
            }
        )
    elif name == "soybean":
        out = frame.copy()
        out["Date"] = pd.to_datetime(out["Date"], format="%Y-%m-%d")
        out["ID"] = _genotypes(out["ID"], "aRC")
        out["plot_number_year"] = out["plot_number_year"].astype(str)
    else:  # soybean_disks
        out = frame.copy()
        out["Date"] = pd.to_datetime(out["Date"], format="%m/%d/%y")
        out["ID"] = _genotypes(out["ID"], "RC")
        out["plot_number"] = out["plot_number"].astype("int64")
        out["disk"] = out["disk"].astype("int64")
        out["days"] = (out["Date"] - out["Date"].min()).dt.days.astype("int64")
    return out


def load(name: str, raw: bool = False) -> pd.DataFrame:
    """Load a course dataset as a DataFrame.

    Parameters
    ----------
    name : str
        ``"pig"``, ``"nepal"``, ``"pulp"``, ``"soybean"`` or ``"soybean_disks"``.
    raw : bool, default False
        If True, return the file as published (column types as pandas reads
        them), with no cleaning.  R's unnamed row-name column, present in the
        public ``pig.csv``, is always dropped.

    Returns
    -------
    pandas.DataFrame
        A new frame; cleaned as follows unless ``raw``:

        - ``pig``: columns ``id``, ``weeks`` (int) and ``weight`` (kg, float);
          432 rows, 48 pigs x 9 weeks.
        - ``nepal``: rows whose ``arm`` is a missing code (99.9 or 88.8) are
          dropped and the index reset, leaving 882 rows and 197 children;
          ``wt`` codes 99.9/88.8 and ``ht`` codes 999.9/888.8 become NaN (rows
          kept).  Other columns as in the file.
        - ``pulp``: ``bright`` (float) and ``operator`` (Categorical a-d).
        - ``soybean`` (plot-date means of AqE, 2321 rows): ``Date`` parsed to
          datetime; spaces removed from ``ID``, which becomes a Categorical
          whose first level is the reference genotype ``"aRC"`` (R's locale
          sort puts it first) followed by the rest sorted; ``plot_number_year``
          kept as a string.
        - ``soybean_disks`` (leaf-disk level, 7323 rows): ``Date`` parsed from
          m/d/yy; spaces removed from ``ID`` (``"NAM 2"`` and ``"NAM2"`` are one
          genotype, 41 in all), a Categorical with reference ``"RC"`` first;
          ``plot_number`` and ``disk`` int; a new int column ``days`` = days since
          the earliest ``Date`` in the file (2021-06-24).  The course's own
          ``days`` column is not public, so this definition is our choice.

    Raises
    ------
    DatasetError
        See :func:`fetch`.
    """
    path = fetch(name)
    if name == "pulp":
        import faraway.datasets.pulp

        frame = faraway.datasets.pulp.load()
    else:
        frame = _read_csv(path)
    return frame if raw else _clean(name, frame)


def export(directory: str | os.PathLike[str]) -> list[Path]:
    """Write every cleaned dataset as CSV, for the R reference script.

    Parameters
    ----------
    directory : str or path-like
        Created if needed.  Files written: ``pig.csv``, ``nepal.csv``,
        ``pulp.csv``, ``soybean.csv`` and ``soybean_disks.csv``.  Dates are ISO
        strings (YYYY-MM-DD), categoricals their labels, missing values ``NA``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in _NAMES:
        frame = load(name)
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False, na_rep="NA", date_format="%Y-%m-%d")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m lmmlib.datasets {fetch,export,list}``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        Exit status: 0 on success, 1 if a dataset could not be fetched.
    """
    parser = argparse.ArgumentParser(
        prog="python -m lmmlib.datasets", description="Fetch, verify and export the course data."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch and verify datasets (default: all)")
    p_fetch.add_argument("names", nargs="*", metavar="NAME", help=", ".join(_NAMES))
    p_export = sub.add_parser("export", help="write the cleaned datasets as CSV")
    p_export.add_argument("directory")
    sub.add_parser("list", help="print the dataset names")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for name in args.names or _NAMES:
                print(f"{name:14s} {fetch(name)}")
        elif args.command == "export":
            for path in export(args.directory):
                print(path)
        else:
            print("\n".join(_NAMES))
    except DatasetError as exc:
        parser.exit(1, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
