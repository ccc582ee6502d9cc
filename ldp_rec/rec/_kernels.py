"""Compiled kernels for counter-based shared randomness (numba).

Candidate ``i`` of the stream with key ``k`` is generated from its own 64-bit state
``s_0 = mix64(k ^ mix64(i + 1))`` by SplitMix64 steps (Steele, Lea & Flood 2014), so it is a pure
function of ``(k, i)``: random access costs O(width) and no other candidate is touched.
Normals use the ziggurat method (Marsaglia & Tsang 2000) with 128 layers and frozen tables
(:mod:`._ziggurat_tables`). Each 64-bit output feeds two normals, one per 32-bit half: 7 bits pick
the layer, 1 bit the sign and 24 bits the uniform of the fast path (the float32 resolution of the
candidates; 98.8% of draws end there), while the wedge and tail tests draw further 53-bit uniforms
(so only the fast path's abscissa is on a 2^-24 grid, relative to the layer width). Uniforms are
``(w >> 11 + 1/2) · 2^-53`` in the open interval (0, 1).

Determinism contract: the integer part is exact everywhere; the float part uses IEEE float64
arithmetic without fast-math (no reassociation), so encoder and decoder agree bit for bit when
they run this module with the same numba/LLVM version on the same platform.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._ziggurat_tables import ZIG_F, ZIG_R, ZIG_RATIO, ZIG_X

_X = np.array(ZIG_X, dtype=np.float64)
_F = np.array(ZIG_F, dtype=np.float64)
_RATIO = np.array(ZIG_RATIO, dtype=np.float64)
_R = float(ZIG_R)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0
_TWO_M24 = 1.0 / 16777216.0
_M32 = np.uint64(0xFFFFFFFF)


@nb.njit(inline="always", cache=True)
def mix64(z):
    """SplitMix64 finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always", cache=True)
def _next(s):
    s = s + _GOLDEN
    return s, mix64(s)


@nb.njit(inline="always", cache=True)
def candidate_state(key, index):
    return mix64(key ^ mix64(np.uint64(index) + np.uint64(1)))


@nb.njit(inline="always", cache=True)
def _uniform53(w):
    return ((w >> np.uint64(11)) + 0.5) * _TWO_M53


@nb.njit(inline="always", cache=True)
def _split32(h, X):
    """A 32-bit word h as the ziggurat's fast-path draw: (layer i, sign ±1, 24-bit uniform u, x = u·X[i])."""
    i = np.int64(h & np.uint64(127))
    sign = 1.0 - 2.0 * np.float64(np.int64((h >> np.uint64(7)) & np.uint64(1)))
    u = np.float64(np.int64(h >> np.uint64(8))) * _TWO_M24
    return i, sign, u, u * X[i]


@nb.njit(inline="always", cache=True)
def _zhalf(s, h, X, F, RATIO, r):
    """One normal from a 32-bit word h (:func:`_split32`); the rare slow paths (wedge test, base-layer
    tail, a draw rejected in the wedge) take further 64-bit words from state s."""
    while True:
        i, sign, u, x = _split32(h, X)
        if u < RATIO[i]:
            return s, sign * x
        if i == 0:  # base layer beyond r: Marsaglia's exact tail sampler
            while True:
                s, a = _next(s)
                s, b = _next(s)
                xx = -math.log(_uniform53(a)) / r
                yy = -math.log(_uniform53(b))
                if yy + yy >= xx * xx:
                    break
            return s, sign * (r + xx)
        s, a = _next(s)
        y = F[i] + _uniform53(a) * (F[i + 1] - F[i])
        if y < math.exp(-0.5 * x * x):
            return s, sign * x
        s, w = _next(s)  # rejected in the wedge: a fresh 32-bit draw
        h = w & _M32


@nb.njit(inline="never", cache=True)
def _znorm_pair_slow(s, w, X, F, RATIO, r):
    """Both halves of w through the full ziggurat (taken when either half misses the fast path)."""
    s, z0 = _zhalf(s, w & _M32, X, F, RATIO, r)
    s, z1 = _zhalf(s, w >> np.uint64(32), X, F, RATIO, r)
    return s, z0, z1


@nb.njit(inline="always", cache=True)
def _znorm_pair(s, X, F, RATIO, r):
    """Two normals from one 64-bit SplitMix64 output (its low and high 32-bit halves): the fast path
    of both halves inline, the rest (2.4% of pairs) in :func:`_znorm_pair_slow`, same values."""
    s, w = _next(s)
    i0, sg0, u0, x0 = _split32(w & _M32, X)
    i1, sg1, u1, x1 = _split32(w >> np.uint64(32), X)
    if (u0 < RATIO[i0]) & (u1 < RATIO[i1]):
        return s, sg0 * x0, sg1 * x1
    return _znorm_pair_slow(s, w, X, F, RATIO, r)


@nb.njit(cache=True)
def _fill_one_normal(key, index, out):
    s = candidate_state(key, index)
    width = out.shape[0]
    for j in range(0, width - 1, 2):
        s, z0, z1 = _znorm_pair(s, _X, _F, _RATIO, _R)
        out[j] = z0
        out[j + 1] = z1
    if width % 2:  # odd width: the last pair's second normal is discarded
        s, z0, z1 = _znorm_pair(s, _X, _F, _RATIO, _R)
        out[width - 1] = z0


@nb.njit(cache=True)
def _fill_one_uniform(key, index, out):
    s = candidate_state(key, index)
    for j in range(out.shape[0]):
        s, w = _next(s)
        out[j] = _uniform53(w)


@nb.njit(parallel=True, cache=True)
def fill_normal(keys, start, out):
    """out[c, m, :] = normals of candidate ``start + m`` of stream ``keys[c]``."""
    n, count = out.shape[0], out.shape[1]
    for t in nb.prange(n * count):
        c = t // count
        m = t - c * count
        _fill_one_normal(keys[c], start + m, out[c, m])


@nb.njit(parallel=True, cache=True)
def fill_uniform(keys, start, out):
    n, count = out.shape[0], out.shape[1]
    for t in nb.prange(n * count):
        c = t // count
        m = t - c * count
        _fill_one_uniform(keys[c], start + m, out[c, m])


@nb.njit(parallel=True, cache=True)
def gather_normal(keys, indices, out):
    """out[c, :] = normals of candidate ``indices[c]`` of stream ``keys[c]``."""
    for c in nb.prange(out.shape[0]):
        _fill_one_normal(keys[c], indices[c], out[c])


@nb.njit(parallel=True, cache=True)
def gather_uniform(keys, indices, out):
    for c in nb.prange(out.shape[0]):
        _fill_one_uniform(keys[c], indices[c], out[c])


@nb.njit(parallel=True, cache=True)
def project_normal(keys, start, xs, dots, sqnorms):
    """Fused generation and projection, never storing candidates.

    dots[c, m] = <g, xs[c]> and sqnorms[c, m] = ||g||^2 for g = normals of candidate start + m
    of stream keys[c]. Accumulates in float64 over float32-rounded normals, exactly as a decoder
    that materialises the float32 candidate would see it.
    """
    n, count = dots.shape
    width = xs.shape[1]
    for t in nb.prange(n * count):
        c = t // count
        m = t - c * count
        s = candidate_state(keys[c], start + m)
        a0 = a1 = 0.0
        q0 = q1 = 0.0
        for j in range(0, width - 1, 2):  # the same pairs as _fill_one_normal; two accumulators each
            s, z0, z1 = _znorm_pair(s, _X, _F, _RATIO, _R)
            g0 = np.float64(np.float32(z0))
            g1 = np.float64(np.float32(z1))
            a0 += g0 * xs[c, j]
            a1 += g1 * xs[c, j + 1]
            q0 += g0 * g0
            q1 += g1 * g1
        if width % 2:
            s, z0, z1 = _znorm_pair(s, _X, _F, _RATIO, _R)
            g0 = np.float64(np.float32(z0))
            a0 += g0 * xs[c, width - 1]
            q0 += g0 * g0
        dots[c, m] = a0 + a1
        sqnorms[c, m] = q0 + q1


@nb.njit(cache=True)
def gather_normal_serial(keys, indices, out):
    """Serial :func:`gather_normal` for a few clients (no thread start-up cost)."""
    for c in range(out.shape[0]):
        _fill_one_normal(keys[c], indices[c], out[c])


@nb.njit(cache=True)
def gather_uniform_serial(keys, indices, out):
    for c in range(out.shape[0]):
        _fill_one_uniform(keys[c], indices[c], out[c])
