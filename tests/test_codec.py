"""Codec layer: round trips through bytes, unbiasedness with finite N, transcript events, bad payloads."""

import numpy as np
import pytest

from ldp_rec.codec import wire
from ldp_rec.codec.core import FloatCodec
from ldp_rec.codec.registry import make_codec
from ldp_rec.errors import DecodeError, IncompatibleError, InputError, ParameterError
from ldp_rec.mechanisms.privunitg import PrivUnitG
from ldp_rec.privacy.events import ComposedEvent, PureEvent, event_epsilon
from ldp_rec.rec import mrc


def _unit(d, seed=0):
    x = np.random.default_rng(seed).standard_normal(d)
    return x / np.linalg.norm(x)


@pytest.mark.parametrize("codec", ["none", "mrc", "modified-mrc", "pfr", "ppr", "rs-fallback"])
def test_round_trip_and_determinism(codec):
    cod = make_codec("privunitg", codec, epsilon=2.0, dim=16, bits=6 if "mrc" in codec else None)
    X = np.tile(_unit(16), (40, 1))
    payloads = cod.encode(X, run_seed=3, round=1, clients=np.arange(40), rng=0)
    assert all(isinstance(p, bytes) for p in payloads)
    a = cod.decode(payloads, run_seed=3, round=1, clients=np.arange(40))
    b = cod.decode([bytes(p) for p in payloads], run_seed=3, round=1, clients=np.arange(40))
    assert a.ok.all() and a.n_failed == 0
    np.testing.assert_array_equal(a.estimates, b.estimates)
    if codec != "none":
        assert max(cod.payload_bits(p) for p in payloads) < 64


def test_decode_equals_candidate_unbiased():
    """The server's estimate is unbias(candidate K) with the effective cap probability."""
    cod = make_codec("privunitg", "mrc", epsilon=2.0, dim=8, bits=4)
    X = np.tile(_unit(8), (5, 1))
    payloads = cod.encode(X, run_seed=1, round=2, clients=np.arange(5), rng=1)
    est = cod.decode(payloads, run_seed=1, round=2, clients=np.arange(5)).estimates
    from ldp_rec.codec.core import binding_keys
    from ldp_rec.rec import randomness

    keys = randomness.derive_keys(1, 2, np.arange(5), 0)
    idx = [cod.index_code.decode_many(wire.unpack(p, binding=int(b)).body, 1)[0] - 1
           for p, b in zip(payloads, binding_keys(1, 2, np.arange(5), cod.fingerprint))]
    z = randomness.gather(keys, idx, 8).astype(np.float64)
    mech = cod._mechs[0]
    np.testing.assert_allclose(est, mech.unbias(z, p_eff=cod._unbias_kw[0]["p_eff"]))


@pytest.mark.parametrize("codec,bits", [("mrc", 3), ("modified-mrc", 4), ("mrc", 8)])
def test_finite_n_unbiasedness(codec, bits):
    """z-test of the mean estimate; with N = 2^bits small, p̂ ≠ p so unbiasing with p would fail."""
    d, n, eps = 4, 40000, 2.0
    x = _unit(d, 5)
    cod = make_codec("privunitg", codec, epsilon=eps, dim=d, bits=bits)
    X = np.tile(x, (n, 1))
    res = cod.decode(cod.encode(X, run_seed=7, round=0, clients=np.arange(n), rng=11), run_seed=7, round=0,
                     clients=np.arange(n))
    est = res.estimates
    se = est.std(axis=0, ddof=1) / np.sqrt(n)
    z = (est.mean(axis=0) - x) / se
    assert np.all(np.abs(z) < 4.5), z
    mech = cod._mechs[0]
    p_hat = cod._unbias_kw[0]["p_eff"]
    # the bias that p instead of p̂ would leave is many standard errors: the test has power
    naive_bias = (mech.m(p_hat) / mech.m() - 1) * x
    if codec == "mrc" and bits == 3:
        assert np.max(np.abs(naive_bias) / se) > 8


def test_transcript_events():
    assert make_codec("privunitg", "modified-mrc", epsilon=3.0, dim=8, bits=8).transcript_event() == PureEvent(3.0)
    assert make_codec("privunitg", "mrc", epsilon=3.0, dim=8, bits=8).transcript_event() == PureEvent(6.0)
    assert make_codec("privunitg", "none", epsilon=3.0, dim=8).transcript_event() == PureEvent(3.0)
    ev = make_codec("privunitg", "modified-mrc", epsilon=4.0, dim=8, bits=6, repetitions=2).transcript_event()
    assert isinstance(ev, ComposedEvent) and event_epsilon(ev) == pytest.approx(4.0)
    assert event_epsilon(make_codec("privunitg", "rs-fallback", epsilon=1.0, dim=8).transcript_event()) == np.inf


def test_chunked_repetitions_and_blocks_unbiased():
    d, n = 6, 30000
    x = _unit(d, 2) * 0.8
    for kw in ({"repetitions": 2}, {"blocks": 2}):
        cod = make_codec("privunitg", "modified-mrc", epsilon=4.0, dim=d, bits=6, **kw)
        res = cod.decode(cod.encode(np.tile(x, (n, 1)), run_seed=1, round=0, clients=np.arange(n), rng=2),
                         run_seed=1, round=0, clients=np.arange(n))
        se = res.estimates.std(axis=0, ddof=1) / np.sqrt(n)
        assert np.all(np.abs(res.estimates.mean(0) - x) < 4.5 * se)
        assert all(cod.payload_bits(p) == 12 for p in cod.encode(x[None], run_seed=1, round=0, clients=[0]))


def test_bad_payloads_fail_only_their_row():
    cod = make_codec("privunitg", "modified-mrc", epsilon=2.0, dim=8, bits=6)
    X = np.tile(_unit(8), (6, 1))
    ids = np.arange(6)
    good = cod.encode(X, run_seed=1, round=5, clients=ids, rng=0)
    other_round = cod.encode(X, run_seed=1, round=4, clients=ids, rng=0)
    bad = list(good)
    bad[0] = good[0][:-1]  # truncated
    flipped = bytearray(good[1])
    flipped[3] ^= 0x01
    bad[1] = bytes(flipped)  # corrupted
    bad[2] = good[2] + b"\x00"  # over-long
    bad[3] = bytes([9]) + good[3][1:]  # unknown format version
    bad[4] = other_round[4]  # replay of an earlier round
    res = cod.decode(bad, run_seed=1, round=5, clients=ids)
    assert list(res.ok) == [False] * 5 + [True]
    assert "truncated" in res.errors[0] and "version" in res.errors[3] and "replayed" in res.errors[4]
    ref = cod.decode(good, run_seed=1, round=5, clients=ids)
    np.testing.assert_array_equal(res.estimates[5], ref.estimates[5])
    assert np.all(res.estimates[:5] == 0)
    # a payload decoded as another client (wrong seed) is rejected too
    assert not cod.decode(good[:1], run_seed=1, round=5, clients=[9]).ok[0]
    # a payload of another codec is refused
    fl = FloatCodec(None, 8)
    p = fl.encode(X[:1], run_seed=1, round=5, clients=[0])
    r = cod.decode(p, run_seed=1, round=5, clients=[0])
    assert not r.ok[0] and "codec id" in r.errors[0]
    with pytest.raises(DecodeError):
        wire.unpack(b"\x01", binding=0)


def test_bad_inputs_raise():
    cod = make_codec("privunitg", "mrc", epsilon=2.0, dim=8, bits=6)
    with pytest.raises(InputError):
        cod.encode(np.full((2, 8), np.nan), run_seed=0, round=0, clients=[0, 1])
    with pytest.raises(InputError):
        cod.encode(np.ones((2, 7)), run_seed=0, round=0, clients=[0, 1])
    with pytest.raises(ParameterError):
        cod.encode(np.ones((2, 8)), run_seed=0, round=0, clients=[0, 0])
    with pytest.raises(ParameterError):
        make_codec("privunitg", "mrc", epsilon=0.0, dim=8)
    with pytest.raises(ParameterError):
        make_codec("privunitg", "zip", epsilon=1.0, dim=8)
    with pytest.raises(IncompatibleError, match="unbounded"):
        make_codec("gaussian", "mrc", epsilon=1.0, dim=8)
    with pytest.raises(IncompatibleError, match="native"):
        make_codec("sqkr", "mrc", epsilon=1.0, dim=8)


def test_effective_cap_probability_matches_mrc_function():
    mech = PrivUnitG(epsilon=2.0, dim=8)
    cod = make_codec(mech, "mrc", bits=5)
    q, p = mech.cap_mass, mech.p
    assert cod._unbias_kw[0]["p_eff"] == pytest.approx(mrc.effective_cap_probability(32, q, p / q, (1 - p) / (1 - q)))
    assert cod._unbias_kw[0]["p_eff"] < p  # finite N pulls the cap probability towards q


from ldp_rec.codec.registry import default_bits  # noqa: E402


@pytest.mark.parametrize("codec", ["mrc", "modified-mrc", "orc"])
def test_default_bits_consistent_between_simulator_and_index_code(codec):
    """Regression: band tuning raises the mechanism's own ε; the default bits must follow the transcript ε."""
    cod = make_codec("privunitg", codec, epsilon=4.0, dim=8)
    X = np.tile(_unit(8), (50, 1))
    p = cod.encode(X, run_seed=0, round=0, clients=np.arange(50), rng=0)
    assert cod.decode(p, run_seed=0, round=0, clients=np.arange(50)).ok.all()
    if codec != "orc":
        assert {cod.payload_bits(q) for q in p} == {default_bits(4.0)} == {10}  # ⌈4·log2 e⌉ + 4


def test_one_default_index_length_for_every_entry_point():
    """The FL runner and the codec registry (DME, audit, benchmarks) share one rule."""
    from ldp_rec.fl.config import FLConfig
    from ldp_rec.fl.federation import default_bits as fl_bits

    for eps in (0.5, 1.0, 4.0, 7.3):
        assert fl_bits(FLConfig(epsilon=eps, codec="subset")) == default_bits(eps)
        assert make_codec("privunit2", "mrc", epsilon=eps, dim=8).index_code.bits == default_bits(eps)
    assert fl_bits(FLConfig(codec="ppr")) is None


@pytest.mark.parametrize("mech", ["sqkr", "rrsc"])
def test_native_codec_round_trip_and_unbiased(mech):
    d, n = 16, 20000
    cod = make_codec(mech, "native", epsilon=2.0, dim=d, bits=3)
    x = _unit(d, 9) * 0.7
    p = cod.encode(np.tile(x, (n, 1)), run_seed=2, round=1, clients=np.arange(n), rng=3)
    assert {cod.payload_bits(q) for q in p} == {cod.mechanism.message_bits}
    res = cod.decode(p, run_seed=2, round=1, clients=np.arange(n))
    assert res.ok.all()
    se = res.estimates.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(res.estimates.mean(0) - x) < 4.5 * se)
    assert cod.transcript_event() == PureEvent(2.0)


# ---------------------------------------------------------------------------------------------------
# Cohort frames (wire version 2)

from ldp_rec.codec.registry import CODECS  # noqa: E402


def _cohort_case(codec, n=24, d=8):
    mech = "rrsc" if codec == "native" else "privunitg"
    cod = make_codec(mech, codec, epsilon=2.0, dim=d, bits=3 if codec in ("native", "mrc", "modified-mrc", "orc", "subset")
                     else None)
    X = np.random.default_rng(4).standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ids = np.arange(1000, 1000 + n)
    return cod, X, ids


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_cohort_frame_equals_per_user_frames(codec):
    """One encoder, two framings: the cohort frame decodes to the per-user frames' estimates, reports each
    user's body bits, and is smaller than the per-user frames together."""
    cod, X, ids = _cohort_case(codec)
    v1 = cod.encode(X, run_seed=2, round=7, clients=ids, rng=3)
    v2 = cod.encode_cohort(X, run_seed=2, round=7, clients=ids, rng=3)
    assert wire.frame_version(v2) == wire.COHORT_VERSION and wire.frame_version(v1[0]) == wire.FORMAT_VERSION
    a = cod.decode(v1, run_seed=2, round=7, clients=ids)
    b = cod.decode_cohort(v2, run_seed=2, round=7, clients=ids)
    assert a.ok.all() and b.ok.all()
    np.testing.assert_array_equal(a.estimates, b.estimates)
    np.testing.assert_array_equal(b.bits, [cod.payload_bits(p) for p in v1])
    assert len(v2) < sum(len(p) for p in v1)


@pytest.mark.parametrize("codec", ["modified-mrc", "ppr", "none", "native"])
def test_cohort_frame_isolates_a_corrupt_user(codec):
    """A flipped body bit or user-tag bit fails that user's row only; the others decode unchanged."""
    cod, X, ids = _cohort_case(codec)
    frame = cod.encode_cohort(X, run_seed=2, round=7, clients=ids, rng=3)
    ref = cod.decode_cohort(frame, run_seed=2, round=7, clients=ids)
    n = ids.size
    tags_at = len(frame) - (int(ref.bits.sum()) + 7) // 8 - 2 * n
    starts = np.concatenate([[0], np.cumsum(ref.bits)[:-1]])
    for user, where in ((5, "body"), (11, "tag"), (0, "body"), (n - 1, "body")):
        bad = bytearray(frame)
        if where == "tag":
            bad[tags_at + 2 * user] ^= 0x10
        else:
            bit = int(starts[user]) + int(ref.bits[user]) // 2
            bad[tags_at + 2 * n + bit // 8] ^= 0x80 >> (bit % 8)
        res = cod.decode_cohort(bytes(bad), run_seed=2, round=7, clients=ids)
        others = np.arange(n) != user
        assert not res.ok[user] and "tag" in res.errors[user]
        assert res.ok[others].all()
        np.testing.assert_array_equal(res.estimates[others], ref.estimates[others])
        assert not res.estimates[user].any()


def test_cohort_frame_structure_defects_fail_the_frame():
    cod, X, ids = _cohort_case("orc")  # variable lengths: the lengths section is present
    frame = cod.encode_cohort(X, run_seed=2, round=7, clients=ids, rng=3)
    cases = {
        "header": bytes([2, frame[1], frame[2] ^ 1]) + frame[3:],
        "lengths": frame[:6] + bytes([frame[6] ^ 0x40]) + frame[7:],
        "truncated": frame[:-1],
        "extended": frame + b"\x00",
        "version": bytes([1]) + frame[1:],
    }
    for name, bad in cases.items():
        res = cod.decode_cohort(bad, run_seed=2, round=7, clients=ids)
        assert not res.ok.any(), name
        assert all(isinstance(e, str) and e for e in res.errors), name
    for kw in ({"round": 8, "clients": ids}, {"round": 7, "clients": ids[::-1]}, {"round": 7, "clients": ids + 1}):
        assert not cod.decode_cohort(frame, run_seed=2, **kw).ok.any()
    with pytest.raises(ParameterError):  # one id per user of the frame is the caller's duty
        cod.decode_cohort(frame, run_seed=2, round=7, clients=np.zeros(ids.size, dtype=int))
    assert not cod.decode_cohort(frame, run_seed=2, round=7, clients=ids[:-1]).ok.any()


@pytest.mark.parametrize("version", [1, 2])
def test_forged_64mib_payload_is_refused_before_allocating(version):
    """Issue 14 item 5: a 64 MiB payload claiming a huge body is refused by the size checks, with memory
    O(expected size) (measured with tracemalloc: under 2 MiB, against 1,088 MiB before)."""
    import tracemalloc

    cod = make_codec("privunitg", "modified-mrc", epsilon=2.0, dim=16, bits=6)
    big = 64 << 20
    if version == 1:
        forged = bytes([1, cod.codec_id, 1]) + wire._leb128(8 * (big - 16)) + bytes(big - 16) + b"\x00\x00"
    else:
        forged = bytes([2, cod.codec_id, 1, 1, 0, 40]) + bytes(big)
    tracemalloc.start()
    try:
        if version == 1:
            res = cod.decode([forged], run_seed=1, round=1, clients=[0])
        else:
            res = cod.decode_cohort(forged, run_seed=1, round=1, clients=[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not res.ok[0] and ("over-long" in res.errors[0] or "maximum" in res.errors[0])
    assert peak < 2 << 20
