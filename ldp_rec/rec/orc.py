"""Ordered random coding (ORC) (Theis & Yosri, "Algorithms for the communication of samples",
ICML 2022, Sec. 3, "ordered random coding").

MRC written with the Gumbel-max trick selects ``K = argmax_k log r(Z_k) + G_k`` with i.i.d. Gumbel
``G_k``. ORC gives the candidates the *sorted* Gumbels instead, ``G̃_1 ≥ G̃_2 ≥ … ≥ G̃_N`` (the order
statistics of N i.i.d. Gumbels), so small indices are favoured and an entropy code of K saves bits.
We draw them with Rényi's representation of exponential order statistics:

    E_(k) = Σ_{m ≤ k} X_m / (N − m + 1),  X_m i.i.d. Exp(1),   G̃_k = −log E_(k),

from the encoder's private ``rng``, streamed over blocks. Because the candidates are i.i.d., giving
them the sorted Gumbels in index order is MRC on a uniformly permuted candidate list: the *output*
``Z_K`` has exactly MRC's distribution (averaged over the candidates).

Transcript privacy: **unbounded**. Given the candidates, ``P(K = k)`` is no longer ``π_k``; for
example with N = 2, ``P(K = 2) = (r_2 − r_1)_+/(r_1 + r_2)``, which is 0 for an input with
``r_2 ≤ r_1`` and positive for another: the privacy loss of (candidates, K) is infinite
(``tests/test_rec_index.py`` checks this). Only MRC's index, not ORC's, inherits the 2ε bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..privacy.events import TranscriptPrivacy
from .base import SelectionLaw, Target, encoded
from .mrc import FixedCandidates, _cap_ratios, block_size, check_indices, check_log_ratios, effective_cap_probability


def sorted_gumbels(n: int, start: int, count: int, N: int, carry: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Sorted Gumbels ``G̃_{start+1 … start+count}`` of N for n rows, continuing ``carry`` (the
    running exponential order statistic ``E_(start)``). Returns ``(G̃, new carry)``."""
    m = np.arange(start, start + count, dtype=np.float64)
    inc = rng.standard_exponential((n, count)) / (N - m)[None, :]
    e = carry[:, None] + np.cumsum(inc, axis=1)
    return -np.log(e), e[:, -1]


def orc_select(log_r, *, rng=None) -> np.ndarray:
    """ORC's index for each row of log ratios ``(n, N)`` (all candidates at once)."""
    rng = np.random.default_rng(rng)
    log_r = check_log_ratios(np.atleast_2d(log_r))
    n, N = log_r.shape
    g, _ = sorted_gumbels(n, 0, N, N, np.zeros(n), rng)
    return np.argmax(log_r + g, axis=1)


@dataclass(frozen=True)
class ORC(FixedCandidates):
    """Ordered random coding over ``N = 2^bits`` shared candidates (module doc)."""

    name: ClassVar[str] = "orc"
    exact: ClassVar[bool] = False
    needs_bounded_ratio: ClassVar[bool] = False
    transcript: ClassVar[TranscriptPrivacy] = TranscriptPrivacy(
        "unbounded", note="sorted Gumbels make P(K=k | candidates) zero for some inputs (N=2 example)"
    )

    heavy_rows: ClassVar[bool] = True

    def effective_cap_probability(self, mechanism) -> float:
        """ORC's output has exactly MRC's law (Theis & Yosri 2022), so MRC's p̂."""
        return effective_cap_probability(self.n_candidates, *_cap_ratios(mechanism))

    def selection_law(self, mechanism) -> SelectionLaw:
        """Only the support: an input whose ratio peaks at candidate 0 sends K = 0 surely."""
        return SelectionLaw("support", self.n_candidates)

    def encode(self, target: Target, *, rng=None):
        self.check_target(target)
        rng = np.random.default_rng(rng)
        n, N = target.n, self.n_candidates
        best = np.full(n, -np.inf)
        arg = np.zeros(n, dtype=np.int64)
        carry = np.zeros(n)
        bs = block_size(n, N)
        for start in range(0, N, bs):
            cnt = min(bs, N - start)
            g, carry = sorted_gumbels(n, start, cnt, N, carry, rng)
            s = check_log_ratios(target.log_ratio_block(start, cnt)) + g
            j = np.argmax(s, axis=1)
            v = s[np.arange(n), j]
            upd = v > best
            best = np.where(upd, v, best)
            arg = np.where(upd, start + j, arg)
        if np.any(~np.isfinite(best)):
            raise InputError("every candidate has a zero density ratio")
        return encoded(arg, np.full(n, N))


def index_bit_statistics(indices) -> dict:
    """Empirical statistics of indices K (0-based) for an entropy code:
    mean ``log2(K+1)`` and the mean Elias-gamma length ``2⌊log2(K+1)⌋ + 1`` of ``K+1``."""
    k = check_indices(indices, None).astype(np.float64) + 1
    lg = np.log2(k)
    return {
        "mean_log2_index": float(lg.mean()),
        "mean_elias_gamma_bits": float(np.mean(2 * np.floor(lg) + 1)),
        "median_index": float(np.median(k - 1)),
    }
