"""Expected sums of the top order statistics of i.i.d. samples (RRSC and subset selection).

For N i.i.d. draws X_1 … X_N with inverse survival function ``isf`` (``P[X ≥ isf(s)] = s``), a draw
with survival probability s is among the k largest iff at most k−1 of the other N−1 exceed it, so

    E[Σ_{i ≤ k} g(X_(i))] = N ∫_0^1 g(isf(s)) · P[Bin(N−1, s) ≤ k−1] ds,

with X_(1) ≥ X_(2) ≥ … (David & Nagaraja 2003, "Order Statistics", Sec. 3.1: the i-th largest has
survival probability ~ Beta(i, N−i+1), and Σ_{i≤k} Beta(i, N−i+1) densities = N·P[Bin(N−1, s) ≤ k−1]).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import integrate, special, stats

from .._validation import check_positive_int


@lru_cache(maxsize=64)
def expected_top_sums(M: int) -> np.ndarray:
    """``T[k−1] = E[sum of the k largest of M i.i.d. N(0,1)]`` for k = 1..M (T[M−1] = 0).

    The module formula in x-space, ``T_k = M ∫ x φ(x) P[Bin(M−1, Φ̄(x)) ≤ k−1] dx``, integrated for all
    k at once with adaptive ``quad_vec`` to ~1e-12 (cost grows with M: meant for M ≲ 10^3)."""
    M = check_positive_int(M, "M", minimum=2)
    ks = np.arange(M)

    def f(x):
        return M * x * stats.norm.pdf(x) * stats.binom.cdf(ks, M - 1, stats.norm.sf(x))

    val, _ = integrate.quad_vec(f, -12.0, 12.0, epsabs=1e-13, epsrel=1e-12, limit=2000)
    val[-1] = 0.0
    return val


def top_sum(N: int, k: int, isf, *, power: int = 1) -> float:
    """``E[Σ_{i ≤ k} X_(i)^power]`` for N i.i.d. draws with inverse survival function ``isf`` (vectorised
    callable on (0, 1)); one k, by adaptive quadrature in s split around s* = k/N where the binomial
    weight drops from 1 to 0 (relative accuracy ~1e-10)."""
    N = check_positive_int(N, "N")
    k = check_positive_int(k, "k")
    if k > N:
        raise ValueError(f"k = {k} exceeds N = {N}")

    def f(s):
        return N * isf(s) ** power * special.bdtr(k - 1, N - 1, s)

    s0 = k / N
    w = math.sqrt(s0 * (1 - s0) / N) + 1.0 / N
    cuts = sorted({0.0, max(0.0, s0 - 12 * w), s0, min(1.0, s0 + 12 * w), 1.0})
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:]):
        if b > a:
            val, _ = integrate.quad(lambda s: float(f(s)), a, b, epsabs=0.0, epsrel=1e-11, limit=400)
            total += val
    return total
