"""Known-answer vectors that pin the stable formats: seed derivation, candidate streams, payload bytes.

The vectors live in ``tests/data/known_answers_v1.json`` and are compared *exactly*:

* :func:`ldp_rec.rec.randomness.derive_key` for fixed coordinates in several domains;
* the first normals (float32) and uniforms (float64) of fixed streams, read with
  :func:`~ldp_rec.rec.randomness.block` from index 0 and far into the stream, and with
  :func:`~ldp_rec.rec.randomness.gather` at scattered indices;
* the bytes of the payloads of a few codecs for a fixed (mechanism, codec, ε, dim, bits, run seed,
  round, clients, input, rng seed), and the estimates the server decodes from those stored bytes.

A change that breaks one of these breaks every stored payload and every decode across versions
(a v1 client talking to a newer server, or a saved transcript re-decoded): it must bump the wire
format version (:data:`ldp_rec.codec.wire.FORMAT_VERSION`) or the stream/KDF label
(``ldp-rec/seed/v1`` in :mod:`ldp_rec.rec.randomness`), keep a decoder for the old version, and add a
new vector file beside this one rather than regenerate it in place.

Scope: the client's *private* coins come from ``numpy.random.default_rng(rng)``, so the encode
vectors also pin NumPy's Generator algorithms; the decode vectors (stored bytes -> estimate) depend
only on ldp-rec's shared streams and arithmetic. Decoded estimates are compared to 1e-12 relative,
not bit for bit, because they pass through BLAS reductions whose last bit may differ between
machines; a change of stream or format moves them by O(1). PPR payloads are not pinned while
its index layout is being reworked (issue 14).

Regenerate by hand only, and only together with a version bump::

    .venv/bin/python tests/test_known_answers.py --regenerate

Cohort frames (wire version 2, :meth:`~ldp_rec.codec.core.Codec.encode_cohort`) are pinned in their own
file, ``tests/data/known_answers_v2.json``: the cohort frame of every payload case for the same input and
coins, and the estimates decoded from it (which equal the v1 estimates: one encoder, two framings). It
was added beside the v1 file (``--write-v2``, 2026-12-02, when the cohort format was introduced) and is
never regenerated in place either.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ldp_rec.codec import wire
from ldp_rec.codec.registry import make_codec
from ldp_rec.rec import randomness as R

VECTORS = Path(__file__).parent / "data" / "known_answers_v1.json"
VECTORS_V2 = Path(__file__).parent / "data" / "known_answers_v2.json"

# (run_seed, round, client, chunk, domain): ordinary, extreme and negative coordinates, several domains
KEY_INPUTS = [
    (0, 0, 0, 0, "candidates"),
    (1, 2, 3, 4, "candidates"),
    (7, 3, 42, 0, "rotation"),
    (7, 3, 42, 0, "native:sqkr"),
    (2**63 - 1, -(2**63), -1, 255, "candidates"),
    (20240601, 499, 1436, 7, "payload/0123456789abcdef"),
    (5, 6, 7, 8, ""),
    (5, 6, 7, 8, "ü-domain"),
]

# (kind, width, start, count) read from the streams of derive_keys(11, 5, [0, 1, 2])
STREAM_BLOCKS = [("normal", 5, 0, 4), ("normal", 3, 2**40, 2), ("uniform", 5, 0, 4), ("uniform", 3, 2**40, 2)]
STREAM_GATHER = [("normal", 6, [0, 9, 123_456_789]), ("uniform", 6, [0, 9, 123_456_789])]

# (mechanism, codec, bits): one or two of each family of stable codec; no PPR (module doc)
PAYLOAD_CASES = [
    ("privunitg", "modified-mrc", None),
    ("privunitg", "subset", None),
    ("privunitg", "orc", 6),
    ("privunit2", "mrc", None),
    ("sqkr", "native", 2),
    ("laplace", "none", None),
]
EPSILON, DIM, RUN_SEED, ROUND, CLIENTS, RNG_SEED = 2.0, 16, 7, 3, [0, 5, 42], 11


def _input() -> list[list[float]]:
    """Fixed unit-norm inputs, written into the vector file (so they do not depend on NumPy's streams)."""
    X = np.random.default_rng(2024).standard_normal((len(CLIENTS), DIM))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).tolist()


def _codec(case: dict):
    return make_codec(case["mechanism"], case["codec"], epsilon=case["epsilon"], dim=case["dim"], bits=case["bits"])


def _stream_keys() -> np.ndarray:
    return R.derive_keys(11, 5, [0, 1, 2])


def _case_vectors(inputs, *, cohort: bool) -> list[dict]:
    """Each payload case encoded by this build for ``inputs`` (per-user payloads, or one cohort frame) and the
    estimates decoded from it."""
    out = []
    for mech, codec, bits in PAYLOAD_CASES:
        case = {"mechanism": mech, "codec": codec, "epsilon": EPSILON, "dim": DIM, "bits": bits,
                "run_seed": RUN_SEED, "round": ROUND, "clients": CLIENTS, "rng": RNG_SEED}
        cod = _codec(case)
        coords = dict(run_seed=RUN_SEED, round=ROUND, clients=CLIENTS)
        enc = (cod.encode_cohort if cohort else cod.encode)(np.array(inputs), rng=RNG_SEED, **coords)
        res = (cod.decode_cohort if cohort else cod.decode)(enc, **coords)
        assert res.ok.all(), res.errors
        data = {"frame": enc.hex()} if cohort else {"payloads": [p.hex() for p in enc]}
        out.append({**case, "fingerprint": cod.fingerprint, **data, "estimates": res.estimates.tolist()})
    return out


def compute_vectors(inputs: list[list[float]] | None = None) -> dict:
    """Everything the vector file holds, computed by this build (the generator)."""
    keys = [
        {"run_seed": a, "round": b, "client": c, "chunk": d, "domain": dom,
         "key": str(int(R.derive_key(a, b, c, d, domain=dom)))}
        for a, b, c, d, dom in KEY_INPUTS
    ]
    sk = _stream_keys()
    blocks = [
        {"kind": kind, "width": w, "start": s, "count": n,
         "values": R.block(sk, s, n, w, kind).astype(np.float64).tolist()}
        for kind, w, s, n in STREAM_BLOCKS
    ]
    gathers = [
        {"kind": kind, "width": w, "indices": idx, "values": R.gather(sk, idx, w, kind).astype(np.float64).tolist()}
        for kind, w, idx in STREAM_GATHER
    ]
    X = _input() if inputs is None else inputs
    payloads = _case_vectors(X, cohort=False)
    return {
        "about": "ldp-rec known-answer vectors; see tests/test_known_answers.py. Never regenerate in place.",
        "wire_format_version": wire.FORMAT_VERSION,
        "stream_keys": {"run_seed": 11, "round": 5, "clients": [0, 1, 2]},
        "derive_key": keys,
        "blocks": blocks,
        "gathers": gathers,
        "input": X,
        "payloads": payloads,
    }


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(VECTORS.read_text())


def test_wire_version(stored):
    assert stored["wire_format_version"] == wire.FORMAT_VERSION


def test_derive_key(stored):
    assert len(stored["derive_key"]) == len(KEY_INPUTS)
    for v in stored["derive_key"]:
        got = R.derive_key(v["run_seed"], v["round"], v["client"], v["chunk"], domain=v["domain"])
        assert int(got) == int(v["key"]), v
    # the vectorised form agrees with the scalar one, per user and over a (users × chunks) matrix
    sk = stored["stream_keys"]
    np.testing.assert_array_equal(
        R.derive_keys(sk["run_seed"], sk["round"], sk["clients"]),
        [R.derive_key(sk["run_seed"], sk["round"], c) for c in sk["clients"]])
    for v in stored["derive_key"]:
        got = R.derive_keys(v["run_seed"], v["round"], [v["client"], 0], [v["chunk"], 1], domain=v["domain"])
        assert got.shape == (2, 2) and int(got[0, 0]) == int(v["key"]), v
        assert int(got[1, 1]) == int(R.derive_key(v["run_seed"], v["round"], 0, 1, domain=v["domain"]))
    from ldp_rec.errors import ParameterError

    for bad in ([1.5], [True], [2**63], np.array(["a"])):
        with pytest.raises(ParameterError):
            R.derive_keys(1, 2, bad)


def test_stream_blocks(stored):
    keys = _stream_keys()
    for v in stored["blocks"]:
        got = R.block(keys, v["start"], v["count"], v["width"], v["kind"])
        assert got.dtype == (np.float32 if v["kind"] == "normal" else np.float64)
        np.testing.assert_array_equal(got, np.array(v["values"], dtype=got.dtype), err_msg=str(v["kind"]))


def test_stream_gathers(stored):
    keys = _stream_keys()
    for v in stored["gathers"]:
        got = R.gather(keys, v["indices"], v["width"], v["kind"])
        np.testing.assert_array_equal(got, np.array(v["values"], dtype=got.dtype), err_msg=str(v["kind"]))


def _case_id(v: dict) -> str:
    return f"{v['mechanism']}+{v['codec']}"


def test_payload_cases_cover_the_list(stored):
    assert [(v["mechanism"], v["codec"], v["bits"]) for v in stored["payloads"]] == PAYLOAD_CASES


def _encoded_hex(v: dict, inputs, *, cohort: bool):
    """This build's encoding of a stored case: the per-user payloads' hex list, or the cohort frame's hex."""
    cod = _codec(v)
    assert cod.fingerprint == v["fingerprint"], _case_id(v)
    enc = cod.encode_cohort if cohort else cod.encode
    out = enc(np.array(inputs), run_seed=v["run_seed"], round=v["round"], clients=v["clients"], rng=v["rng"])
    return out.hex() if cohort else [p.hex() for p in out]


@pytest.mark.parametrize("i", range(len(PAYLOAD_CASES)), ids=[f"{m}+{c}" for m, c, _ in PAYLOAD_CASES])
def test_payload_bytes(stored, i):
    """The encoder writes the stored bytes for the stored input and coins."""
    v = stored["payloads"][i]
    assert _encoded_hex(v, stored["input"], cohort=False) == v["payloads"], _case_id(v)


@pytest.mark.parametrize("i", range(len(PAYLOAD_CASES)), ids=[f"{m}+{c}" for m, c, _ in PAYLOAD_CASES])
def test_stored_payloads_decode(stored, i):
    """A server of this build decodes the stored bytes to the stored estimates."""
    v = stored["payloads"][i]
    res = _codec(v).decode([bytes.fromhex(p) for p in v["payloads"]], run_seed=v["run_seed"], round=v["round"],
                           clients=v["clients"])
    assert res.ok.all(), res.errors
    np.testing.assert_allclose(res.estimates, np.array(v["estimates"]), rtol=1e-12, atol=1e-12, err_msg=_case_id(v))


def compute_cohort_vectors(inputs: list[list[float]]) -> dict:
    """The cohort frames (wire version 2) of every payload case for ``inputs`` (the v1 file's input)."""
    frames = _case_vectors(inputs, cohort=True)
    return {"about": "ldp-rec cohort-frame (wire v2) known answers; see tests/test_known_answers.py. Never regenerate "
                     "in place.", "wire_format_version": wire.COHORT_VERSION, "input": inputs, "frames": frames}


@pytest.fixture(scope="module")
def stored_v2() -> dict:
    return json.loads(VECTORS_V2.read_text())


def test_cohort_version_and_input(stored, stored_v2):
    assert stored_v2["wire_format_version"] == wire.COHORT_VERSION
    assert stored_v2["input"] == stored["input"]
    assert [(v["mechanism"], v["codec"], v["bits"]) for v in stored_v2["frames"]] == PAYLOAD_CASES


@pytest.mark.parametrize("i", range(len(PAYLOAD_CASES)), ids=[f"{m}+{c}" for m, c, _ in PAYLOAD_CASES])
def test_cohort_frame_bytes(stored_v2, i):
    """The cohort encoder writes the stored frame for the stored input and coins."""
    v = stored_v2["frames"][i]
    assert _encoded_hex(v, stored_v2["input"], cohort=True) == v["frame"], _case_id(v)


@pytest.mark.parametrize("i", range(len(PAYLOAD_CASES)), ids=[f"{m}+{c}" for m, c, _ in PAYLOAD_CASES])
def test_stored_cohort_frames_decode(stored, stored_v2, i):
    """The stored frame decodes to the stored estimates, which are the v1 payloads' estimates."""
    v = stored_v2["frames"][i]
    res = _codec(v).decode_cohort(bytes.fromhex(v["frame"]), run_seed=v["run_seed"], round=v["round"],
                                  clients=v["clients"])
    assert res.ok.all(), res.errors
    np.testing.assert_allclose(res.estimates, np.array(v["estimates"]), rtol=1e-12, atol=1e-12, err_msg=_case_id(v))
    np.testing.assert_allclose(res.estimates, np.array(stored["payloads"][i]["estimates"]), rtol=1e-12, atol=1e-12)


def write_v2() -> None:
    """Write the cohort-frame file beside the v1 file (once, when the cohort format was introduced)."""
    if VECTORS_V2.exists():
        sys.exit(f"{VECTORS_V2} exists: never regenerate in place")
    VECTORS_V2.write_text(json.dumps(compute_cohort_vectors(json.loads(VECTORS.read_text())["input"]), indent=1) + "\n")
    print(f"wrote {VECTORS_V2}")


def regenerate() -> None:
    """Rewrite the vector file from this build. Run by hand, with a version bump (module doc)."""
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps(compute_vectors(), indent=1) + "\n")
    print(f"wrote {VECTORS}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-v2"]:
        write_v2()
    elif sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_known_answers.py --regenerate   (only together with a version bump)")
    else:
        regenerate()
