"""lmmlib.datasets: shapes, cleaning rules, checksums and error messages.

The real files come from LMMLIB_DATA_MIRROR or the data cache (``make data``
fills it); no test here touches the network: every download is replaced by a
stub that raises or copies a local file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
import pytest

from lmmlib import datasets
from lmmlib.errors import DatasetError, LmmlibError

NAMES = ["pig", "nepal", "pulp", "soybean", "soybean_disks"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, *args: object, **kwargs: object) -> str:
        raise ConnectionError(f"network disabled in tests: {url}")

    monkeypatch.setattr(pooch, "retrieve", refuse)


@pytest.fixture
def real_files() -> dict[str, Path]:
    """The verified local files of the four CSV datasets."""
    return {name: datasets.fetch(name) for name in datasets.REGISTRY}


def _isolate(monkeypatch: pytest.MonkeyPatch, mirror: Path | None, cache: Path) -> None:
    if mirror is None:
        monkeypatch.delenv("LMMLIB_DATA_MIRROR", raising=False)
    else:
        monkeypatch.setenv("LMMLIB_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("LMMLIB_DATA_DIR", str(cache))


def test_available() -> None:
    assert datasets.available() == NAMES


def test_unknown_name() -> None:
    with pytest.raises(DatasetError, match="sleepstudy"):
        datasets.load("sleepstudy")


def test_pig() -> None:
    pig = datasets.load("pig")
    assert list(pig.columns) == ["id", "weeks", "weight"]
    assert pig.shape == (432, 3)
    assert pig["id"].nunique() == 48
    assert (pig.groupby("id").size() == 9).all()
    assert pig["weight"].dtype == np.float64
    assert pig.iloc[0].tolist() == [1, 1, 24.0]


def test_nepal_cleaning() -> None:
    raw = datasets.load("nepal", raw=True)
    assert raw.shape == (1000, 18)
    assert raw["arm"].isin([99.9, 88.8]).sum() == 118
    nepal = datasets.load("nepal")
    assert nepal.shape == (882, 18)
    assert nepal["id"].nunique() == 197
    assert not nepal["arm"].isin([99.9, 88.8]).any()
    assert nepal["arm"].max() < 30
    assert not nepal["wt"].isin([99.9, 88.8]).any()
    assert not nepal["ht"].isin([999.9, 888.8]).any()
    assert nepal["wt"].isna().sum() == 5 and nepal["ht"].isna().sum() == 5
    assert list(nepal.index) == list(range(882))
    assert list(nepal.columns) == list(raw.columns)


def test_pulp() -> None:
    pulp = datasets.load("pulp")
    assert pulp.shape == (20, 2)
    assert list(pulp["operator"].cat.categories) == ["a", "b", "c", "d"]
    assert (pulp["operator"].value_counts() == 5).all()
    assert pulp["bright"].dtype == np.float64
    assert pulp["bright"].mean() == pytest.approx(60.40)  # the course's mean (rounding only)


def test_soybean() -> None:
    soy = datasets.load("soybean")
    assert soy.shape == (2321, 11)
    assert isinstance(soy["ID"].dtype, pd.CategoricalDtype)
    assert soy["ID"].cat.categories[0] == "aRC"
    assert len(soy["ID"].cat.categories) == 41
    assert list(soy["ID"].cat.categories[1:]) == sorted(soy["ID"].cat.categories[1:])
    assert pd.api.types.is_datetime64_any_dtype(soy["Date"])
    assert soy["plot_number_year"].map(type).eq(str).all()
    assert soy["plot_number_year"].nunique() == 406


def test_soybean_disks() -> None:
    raw = datasets.load("soybean_disks", raw=True)
    assert raw["ID"].nunique() > 41  # "NAM 2" and "NAM2" before cleaning
    disks = datasets.load("soybean_disks")
    assert disks.shape == (7323, 22)
    ids = disks["ID"]
    assert ids.nunique() == 41 and len(ids.cat.categories) == 41
    assert ids.cat.categories[0] == "RC"
    assert not any(" " in label for label in ids.cat.categories)
    assert pd.api.types.is_integer_dtype(disks["days"])
    assert disks["days"].min() == 0
    assert disks.loc[disks["days"] == 0, "Date"].iloc[0] == pd.Timestamp("2021-06-24")
    assert disks["Date"].nunique() == 16
    assert pd.api.types.is_integer_dtype(disks["plot_number"])
    assert pd.api.types.is_integer_dtype(disks["disk"])
    assert disks["disk"].nunique() == 520


def test_load_returns_fresh_frames() -> None:
    first = datasets.load("pig")
    first.loc[0, "weight"] = -1.0
    assert datasets.load("pig").loc[0, "weight"] == 24.0


def test_corrupted_mirror_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_files: dict[str, Path]
) -> None:
    copy = tmp_path / "nepal.csv"
    data = bytearray(real_files["nepal"].read_bytes())
    data[100] = ord("7") if data[100] != ord("7") else ord("8")
    copy.write_bytes(bytes(data))
    _isolate(monkeypatch, mirror=tmp_path, cache=tmp_path)
    with pytest.raises(DatasetError) as info:
        datasets.load("nepal")
    message = str(info.value)
    assert "nepal.csv" in message
    assert str(copy) in message
    assert datasets.REGISTRY["nepal"].sha256 in message
    assert "LMMLIB_DATA_MIRROR" in message
    assert isinstance(info.value, LmmlibError)


def test_corrupted_cache_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_files: dict[str, Path]
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "soybean.csv").write_bytes(real_files["soybean"].read_bytes()[:-10])
    _isolate(monkeypatch, mirror=None, cache=cache)
    with pytest.raises(DatasetError, match="soybean.csv") as info:
        datasets.fetch("soybean")
    assert "make data" in str(info.value)
    assert str(cache / "soybean.csv") in str(info.value)


def test_missing_file_download_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _isolate(monkeypatch, mirror=mirror, cache=tmp_path / "cache")
    with pytest.raises(DatasetError) as info:
        datasets.load("soybean_disks")
    message = str(info.value)
    assert "soybean_disk_raw.csv" in message
    assert str(mirror) in message
    assert datasets.REGISTRY["soybean_disks"].url in message
    assert "LMMLIB_DATA_MIRROR" in message
    assert isinstance(info.value.__cause__, ConnectionError)


def test_missing_file_without_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _isolate(monkeypatch, mirror=None, cache=tmp_path)
    with pytest.raises(DatasetError, match="pig_weights.csv") as info:
        datasets.fetch("pig")
    assert "LMMLIB_DATA_MIRROR" in str(info.value)
    assert datasets.REGISTRY["pig"].url in str(info.value)


def test_download_goes_through_pooch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_files: dict[str, Path]
) -> None:
    calls = []

    def fake_retrieve(url: str, known_hash: str, path: Path, fname: str, **kw: object) -> str:
        calls.append((url, known_hash, Path(path), fname))
        target = Path(path) / fname
        shutil.copyfile(real_files["nepal"], target)
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    _isolate(monkeypatch, mirror=tmp_path / "empty", cache=tmp_path / "cache")
    path = datasets.fetch("nepal")
    rf = datasets.REGISTRY["nepal"]
    assert calls == [(rf.url, f"sha256:{rf.sha256}", tmp_path / "cache", "nepal.csv")]
    assert path == tmp_path / "cache" / "nepal.csv"
    # the second call finds the cached file and does not download again
    assert datasets.fetch("nepal") == path and len(calls) == 1


def test_published_pig_file_with_row_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The public pig.csv (R's write.csv: row names, CRLF) is accepted and read alike."""
    pig = datasets.load("pig")
    lines = ['"","id","weeks","weight"']
    for i, row in enumerate(pig.itertuples(index=False), start=1):
        weight = f"{row.weight:g}"
        lines.append(f'"{i}",{row.id},{row.weeks},{weight}')
    published = tmp_path / "pig.csv"
    published.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    _isolate(monkeypatch, mirror=tmp_path, cache=tmp_path)
    assert datasets.fetch("pig") == published
    pd.testing.assert_frame_equal(datasets.load("pig"), pig)
    assert list(datasets.load("pig", raw=True).columns) == ["id", "weeks", "weight"]


def test_export(tmp_path: Path) -> None:
    written = datasets.export(tmp_path / "out")
    assert [p.name for p in written] == [f"{n}.csv" for n in NAMES]
    soy = pd.read_csv(tmp_path / "out" / "soybean_disks.csv")
    assert soy.shape == (7323, 22)
    assert soy["Date"].iloc[0] == "2021-06-24"
    assert set(soy["ID"]) == set(datasets.load("soybean_disks")["ID"].cat.categories)
    assert ",NA," in (tmp_path / "out" / "nepal.csv").read_text()
    nepal = pd.read_csv(tmp_path / "out" / "nepal.csv")
    assert nepal.shape == (882, 18) and nepal["arm"].max() < 30
    assert nepal["wt"].isna().sum() == 5
    pulp = pd.read_csv(tmp_path / "out" / "pulp.csv")
    assert sorted(pulp["operator"].unique()) == ["a", "b", "c", "d"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert datasets.main(["list"]) == 0
    assert capsys.readouterr().out.split() == NAMES
    assert datasets.main(["fetch", "pig", "pulp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["pig", "pulp"]
    assert lines[1].endswith("pulp.csv.bz2")


def test_cli_error_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _isolate(monkeypatch, mirror=None, cache=tmp_path)
    with pytest.raises(SystemExit) as info:
        datasets.main(["fetch", "nepal"])
    assert info.value.code == 1
