"""The arithmetic of the cross-product pass: one partition's sums, and their merging.

A partition's rows (:class:`lmmlib.engine.partrows.PartitionRows`: the columns
of [X y], each grouping factor's codes and covariates) give

* [X y]'[X y] and the R factor of [X y], both from one walk over chunks of
  rows that stay in the CPU's cache (:func:`gram_and_r`, a tall-skinny QR);
  the leading block of that R is the R factor of X (for the rank check) and
  its last column gives the partition's own least-squares fit b_k and
  ‖y − X b_k‖² (:func:`local_fit`);
* per-level sums of products of Z's columns with Z's and with [X y]
  (:func:`level_sums`): one ``np.bincount`` each, kept as the arrays bincount
  made (fresh memory is the dearest thing in this pass, so nothing of the
  levels' size is copied), a product with an all-ones column being that
  column's own sums, or the level counts;
* for crossed factors, the sparse coupling Z₀'Z_R and Z_R'Z_R.

:func:`combine_products` adds partitions' sums (an associative reduction,
adding in place into the sums it made itself), and :func:`assemble_levels`
turns the per-level arrays into the (levels, q, q) and (levels·q, p + 1)
arrays of the PLS.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp

from .crossprod import z_matrix
from .design import RANK_TOL
from .partrows import PartitionRows
from .reterms import Block

__all__ = ["QR_CHUNK", "assemble_levels", "combine_products", "gram_and_r", "level_sums",
           "local_fit", "products"]

#: Rows per chunk of [X y] (a chunk of a few columns stays in the CPU's cache).
QR_CHUNK = 32768


def _matrix(columns: tuple[np.ndarray | None, ...], n: int) -> np.ndarray:
    return np.column_stack([np.ones(n) if c is None else c for c in columns]) if columns \
        else np.zeros((n, 0))


def gram_and_r(columns: tuple[np.ndarray | None, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    """A'A and the R factor of the Householder QR of A = [columns] (``None``: ones).

    The rows are taken in chunks of :data:`QR_CHUNK` into one buffer: each
    chunk adds its A'A and is factorised by LAPACK's ``geqrf``, and the
    stacked R factors are factorised again (a tall-skinny QR), which is as
    accurate as one Householder QR of A (rows' signs aside).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x, y = rng.normal(size=100_000), rng.normal(size=100_000)
    >>> G, R = gram_and_r((None, x, y), 100_000)
    >>> A = np.column_stack([np.ones(100_000), x, y])
    >>> bool(np.allclose(G, A.T @ A)), bool(np.allclose(R.T @ R, A.T @ A))
    (True, True)
    """
    m = len(columns)
    if n <= QR_CHUNK or m == 0:
        A = _matrix(columns, n)
        return A.T @ A, np.linalg.qr(A, mode="r")
    buf = np.empty((QR_CHUNK, m), order="F")
    geqrf = scipy.linalg.lapack.get_lapack_funcs("geqrf", (buf,))
    gram = np.zeros((m, m))
    heads = []
    for start in range(0, n, QR_CHUNK):
        rows = min(QR_CHUNK, n - start)
        chunk = buf[:rows]
        for j, c in enumerate(columns):
            chunk[:, j] = 1.0 if c is None else c[start : start + rows]
        gram += chunk.T @ chunk
        if rows < m:
            heads.append(chunk.copy())
        else:
            heads.append(np.triu(geqrf(chunk, overwrite_a=True)[0][:m]))
    return gram, np.linalg.qr(np.vstack(heads), mode="r")


def local_fit(rows: PartitionRows, R: np.ndarray,
              XtX: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """A partition's least-squares fit of y on X: b_k, ‖y − X b_k‖² and the R factor of X.

    ``R`` is the R factor of [X y]: its leading block is X's, and b_k and
    the residual sum of squares follow from its last column; a partition in
    which X is (nearly) rank deficient is solved by ``lstsq`` instead.
    """
    n, p = rows.n, len(rows.columns) - 1
    y = rows.columns[-1]
    if p == 0:
        return np.zeros(0), float(y @ y), np.zeros((0, 0))
    Rx = R[: min(n, p), :p]
    norms = np.sqrt(np.maximum(np.diag(XtX), 0.0))
    if n > p and np.all(np.abs(np.diag(Rx)) > RANK_TOL * norms):
        b = scipy.linalg.solve_triangular(Rx, R[:p, p], check_finite=False)
        return b, float(R[p, p] ** 2), Rx
    X = _matrix(rows.columns[:-1], n)
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ b
    return b, float(r @ r), Rx


def level_sums(block: Block, z_unit: tuple[bool, ...], columns: tuple[np.ndarray | None, ...],
               gram: bool = True) -> tuple[list | None, list]:
    """Per-level sums of one block: Σ z_a z_c (a ≤ c) and Σ z_a w_j for the columns w.

    Returns two lists of arrays over the block's levels, in the order
    (0, 0), (0, 1), …, (1, 1), … and a·len(columns) + j; an all-ones
    product is the level counts (integers, one array shared by every such
    entry).

    Examples
    --------
    >>> codes = np.array([0, 1, 1, 0, 1])
    >>> b = Block("g", pd.Index(["a", "b"]), codes, np.ones((5, 1)), np.zeros((1, 1), int))
    >>> ZtZ, ZtXy = level_sums(b, (True,), (None, np.array([1.0, 2.0, 3.0, 4.0, 5.0])))
    >>> [v.tolist() for v in ZtZ], [v.tolist() for v in ZtXy]
    ([[2, 3]], [[2, 3], [5.0, 10.0]])
    """
    codes, Z, k = block.codes, block.Z, block.nlevels
    q = Z.shape[1]
    counts = []

    def summed(u: np.ndarray | None, v: np.ndarray | None) -> np.ndarray:
        if u is None and v is None:
            if not counts:
                counts.append(np.bincount(codes, minlength=k))
            return counts[0]
        w = v if u is None else u if v is None else u * v
        return np.bincount(codes, w, minlength=k)

    zcols = [None if z_unit[a] else Z[:, a] for a in range(q)]
    cross = [summed(zcols[a], w) for a in range(q) for w in columns]
    if not gram:
        return None, cross
    return [summed(zcols[a], zcols[c]) for a in range(q) for c in range(a, q)], cross


def assemble_levels(gram: list | None, cross: list, k: int, q: int,
                    m: int) -> tuple[np.ndarray | None, np.ndarray]:
    """The (k, q, q) and (k·q, m) arrays of :func:`level_sums`'s lists (summed or not).

    Examples
    --------
    >>> ZtZ, ZtXy = assemble_levels([np.array([2, 3])], [np.array([2, 3]), np.array([5., 10.])],
    ...                             2, 1, 2)
    >>> ZtZ.shape, ZtXy.tolist()
    ((2, 1, 1), [[2.0, 5.0], [3.0, 10.0]])
    """
    ZtZ = None
    if gram is not None:
        ZtZ = np.empty((k, q, q))
        pairs = iter(gram)
        for a in range(q):
            for c in range(a, q):
                ZtZ[:, a, c] = ZtZ[:, c, a] = next(pairs)
    ZtXy = np.empty((k, q, m))
    for i, v in enumerate(cross):
        ZtXy[:, i // m, i % m] = v
    return ZtZ, ZtXy.reshape(k * q, m)


def products(rows: PartitionRows) -> dict:
    """The cross-products of a partition's :class:`~lmmlib.engine.partrows.PartitionRows`."""
    columns, blocks, n = rows.columns, rows.blocks, rows.n
    p = len(columns) - 1
    y = columns[-1]
    XtXy, R = gram_and_r(columns, n)
    XtX = XtXy[:p, :p].copy()
    b_k, r2, Rx = local_fit(rows, R, XtX)
    ymean = float(y.mean())
    dev = y - ymean
    out = {"n": n, "XtXy": XtXy, "local": [(b_k, r2, XtX)], "R": Rx, "ymean": ymean,
           "yM2": float(dev @ dev)}
    out["ZtZ0"], out["Z0tXy"] = level_sums(blocks[0], rows.z_unit[0], columns)
    if len(blocks) > 1:
        out["ZRtXy"] = [level_sums(b, u, columns, gram=False)[1]
                        for b, u in zip(blocks[1:], rows.z_unit[1:], strict=True)]
        Z0 = z_matrix(blocks[0])
        ZR = sp.hstack([z_matrix(b) for b in blocks[1:]]).tocsr()
        out["M"] = (Z0.T @ ZR).tocsr()
        out["ZRtZR"] = (ZR.T @ ZR).tocsr()
    return out


def _added(a: object, b: object, own: bool) -> object:
    """a + b, in place into ``a`` when it was made by the reduction and the type allows."""
    if isinstance(a, list):
        return [_added(u, v, own) for u, v in zip(a, b, strict=True)]
    if own and isinstance(a, np.ndarray) and np.result_type(a, b) == a.dtype:
        a += b
        return a
    return a + b


def combine_products(*parts: dict | None) -> dict | None:
    """Sum partitions' cross-products (an associative reduction; ``None`` is empty)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    out = dict(parts[0])
    owned = set()  # sums made here, which may be added to in place
    for p in parts[1:]:
        n_a, n_b = out["n"], p["n"]
        delta = p["ymean"] - out["ymean"]
        out["yM2"] = out["yM2"] + p["yM2"] + delta**2 * n_a * n_b / (n_a + n_b)
        out["ymean"] = out["ymean"] + delta * n_b / (n_a + n_b)
        out["n"] = n_a + n_b
        out["local"] = out["local"] + p["local"]
        R = scipy.linalg.qr(np.vstack([out["R"], p["R"]]), mode="r", check_finite=False)[0]
        out["R"] = R[: R.shape[1]]
        for key in ("XtXy", "ZtZ0", "Z0tXy", "ZRtXy", "M", "ZRtZR"):
            if key in out:
                out[key] = _added(out[key], p[key], key in owned)
                owned.add(key)
    return out
