"""Composition over rounds and the accountants (references.md §5)."""

import itertools
import math

import numpy as np
import pytest
from opacus.accountants import RDPAccountant as OpacusRDP

from ldp_rec.errors import IncompatibleError, ParameterError
from ldp_rec.privacy.accountant import (
    BasicAccountant, PLDAccountant, RDPAccountant, create_accountant, plan_epsilon,
)
from ldp_rec.privacy.composition import (
    FALLBACK_INTERVAL, advanced_composition, basic_composition, exact_interval, exact_pure_composition,
    pld_pure_composition, pure_rdp, rdp_gaussian_composition,
)
from ldp_rec.privacy.events import (
    ApproxEvent, ComposedEvent, GaussianEvent, NonPrivateEvent, NotEstablishedEvent, PureEvent,
    UnboundedEvent, to_dp_event,
)

# (ε per round, T) -> (basic, advanced, PLD) at δ = 1e-5, references.md §5
REFERENCE = [((0.5, 100), (50, 56.4, 31.2)), ((1.0, 100), (100, 220, 79.8)), ((1.0, 1000), (1000, 1870, 578))]


@pytest.mark.parametrize("point, expected", REFERENCE)
def test_reference_points(point, expected):
    eps, t = point
    basic, adv, pld = expected
    assert basic_composition(epsilons=[eps] * t)[0] == pytest.approx(basic, rel=1e-12)
    assert advanced_composition(epsilon=eps, steps=t, delta_prime=1e-5) == pytest.approx(adv, rel=3e-3)
    got = pld_pure_composition(epsilon=eps, steps=t, delta=1e-5)
    assert got == pytest.approx(pld, rel=3e-3)
    # the PLD route equals the closed-form optimum (KOV 2015) to discretisation accuracy
    assert got == pytest.approx(exact_pure_composition(epsilon=eps, steps=t, delta=1e-5), rel=1e-7)
    for method, ref in zip(("basic", "advanced", "pld"), expected):
        assert plan_epsilon(PureEvent(eps), t, 1e-5, method).epsilon == pytest.approx(ref, rel=3e-3)


def _brute_force_epsilon(epsilons, delta):
    """Optimal ε' for heterogeneous pure rounds by enumerating the 2^T outcomes of the composed
    randomised-response pair: δ(ε') = E_P[(1 − e^{ε' − L})_+], solved by bisection."""
    eps = np.asarray(epsilons)
    p = 1 / (1 + np.exp(-eps))
    outcomes = np.array(list(itertools.product([0, 1], repeat=eps.size)))
    logp = np.sum(np.where(outcomes == 1, np.log(p), np.log1p(-p)), axis=1)
    loss = np.sum(np.where(outcomes == 1, eps, -eps), axis=1)

    def hockey(e):
        return np.sum(np.exp(logp) * np.clip(1 - np.exp(e - loss), 0, None))

    lo, hi = 0.0, float(eps.sum())
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if hockey(mid) > delta else (lo, mid)
    return hi


def test_heterogeneous_pld_matches_brute_force():
    eps = [0.3, 0.7, 0.7, 1.13, 0.3, 2.0, 0.45, 0.9, 1.3, 0.3, 0.6, 0.25]
    exact = _brute_force_epsilon(eps, 1e-3)
    got = pld_pure_composition(epsilon=eps, delta=1e-3)
    assert exact <= got + 1e-9  # pessimistic PLD is an upper bound
    assert got - exact <= len(eps) * 1e-4 + 1e-6  # ... loose by at most Σ interval
    # repeating the list twice equals steps=2
    assert pld_pure_composition(epsilon=eps * 2, delta=1e-3) == pytest.approx(
        pld_pure_composition(epsilon=eps, steps=2, delta=1e-3), rel=1e-9)
    # homogeneous brute force agrees with the closed form
    assert _brute_force_epsilon([0.8] * 12, 1e-3) == pytest.approx(
        exact_pure_composition(epsilon=0.8, steps=12, delta=1e-3), abs=1e-9)


def test_monotonicity():
    eps_t = [pld_pure_composition(epsilon=0.5, steps=t, delta=1e-5) for t in (10, 50, 100, 200)]
    assert np.all(np.diff(eps_t) > 0)
    eps_d = [exact_pure_composition(epsilon=1.0, steps=100, delta=d) for d in (1e-8, 1e-6, 1e-4, 1e-2)]
    assert np.all(np.diff(eps_d) < 0)
    eps_e = [exact_pure_composition(epsilon=e, steps=50, delta=1e-5) for e in (0.1, 0.2, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(eps_e) > 0)
    rdp = [rdp_gaussian_composition(noise_multiplier=s, steps=100, delta=1e-5) for s in (0.8, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(rdp) < 0)
    # the tight bound never exceeds basic, and advanced is looser than PLD
    for e, t in [(0.1, 10), (0.5, 100), (2.0, 20)]:
        tight = exact_pure_composition(epsilon=e, steps=t, delta=1e-5)
        assert tight <= e * t + 1e-9
        assert tight < advanced_composition(epsilon=e, steps=t, delta_prime=1e-5)


def test_single_round_and_large_delta():
    # one round: the upper set {B = 1} gives ε' = ln((p − δ)/(1 − p)), just below ε
    p = 1 / (1 + math.exp(-1.3))
    assert exact_pure_composition(epsilon=1.3, steps=1, delta=1e-9) == pytest.approx(
        math.log((p - 1e-9) / (1 - p)), abs=1e-13)
    assert pld_pure_composition(epsilon=1.3, steps=1, delta=1e-9) == pytest.approx(1.3, abs=1e-6)
    assert exact_pure_composition(epsilon=1.0, steps=3, delta=1.0) == 0.0


def test_rdp_gaussian_matches_opacus_and_closed_form():
    acc = OpacusRDP()
    for _ in range(100):
        acc.step(noise_multiplier=1.1, sample_rate=0.01)
    ours = rdp_gaussian_composition(noise_multiplier=1.1, steps=100, delta=1e-5, sample_rate=0.01,
                                    orders=OpacusRDP.DEFAULT_ALPHAS)
    assert ours == pytest.approx(acc.get_epsilon(1e-5), rel=1e-12)
    # q = 1: RDP is Tα/(2σ²); ε = min_α RDP − (ln δ + ln α)/(α−1) + ln((α−1)/α) (Balle et al. 2020)
    a = np.linspace(1.001, 200, 400_000)
    closed = np.min(100 * a / 2 - (np.log(1e-5) + np.log(a)) / (a - 1) + np.log((a - 1) / a))
    assert rdp_gaussian_composition(noise_multiplier=1.0, steps=100, delta=1e-5) == pytest.approx(closed, rel=2e-3)
    r = RDPAccountant()
    r.step(GaussianEvent(1.0), count=100)
    assert r.get_epsilon(1e-5) == pytest.approx(rdp_gaussian_composition(noise_multiplier=1.0, steps=100, delta=1e-5))
    # PLD of the Gaussian is tighter than RDP, and not by much
    p = PLDAccountant()
    p.step(GaussianEvent(1.0), count=100)
    assert 0.85 * r.get_epsilon(1e-5) < p.get_epsilon(1e-5) < r.get_epsilon(1e-5)


def test_pure_rdp_is_the_rr_divergence():
    eps = 0.9
    p = 1 / (1 + math.exp(-eps))
    for a in (1.5, 2.0, 10.0):
        ref = math.log(p**a * (1 - p) ** (1 - a) + (1 - p) ** a * p ** (1 - a)) / (a - 1)
        assert pure_rdp(eps, [a])[0] == pytest.approx(ref, rel=1e-12)
    assert pure_rdp(eps, [1e6])[0] == pytest.approx(eps, rel=1e-5)  # D_∞ = ε
    r = RDPAccountant()
    r.step(PureEvent(1.0), count=100)
    tight = exact_pure_composition(epsilon=1.0, steps=100, delta=1e-5)
    assert tight < r.get_epsilon(1e-5) < 1.1 * tight


def test_accountants_compose_events():
    b = BasicAccountant()
    b.step(PureEvent(0.5), count=3)
    b.step(PureEvent(0.5))
    b.step(ApproxEvent(1.0, 1e-6), count=2)
    assert b.history == [(PureEvent(0.5), 4), (ApproxEvent(1.0, 1e-6), 2)] and len(b) == 6
    assert b.get_epsilon(1e-5) == pytest.approx(4.0)
    spent = b.get_privacy_spent(1e-6)
    assert spent.epsilon == math.inf and "delta" in spent.reason
    # a composed event (two chunks) counts as both, inside the PLD too
    chunks = ComposedEvent((PureEvent(0.5), PureEvent(0.5)))
    p = PLDAccountant()
    p.step(chunks, count=50)
    assert p.get_epsilon(1e-5) == pytest.approx(31.17286, rel=1e-6)
    b2 = BasicAccountant()
    b2.step(chunks, count=50)
    assert b2.get_epsilon(1e-5) == pytest.approx(50.0)
    # mixing pure and Gaussian releases in one PLD
    mix = PLDAccountant()
    mix.step(PureEvent(0.5), count=10)
    mix.step(GaussianEvent(2.0), count=10)
    only = PLDAccountant()
    only.step(PureEvent(0.5), count=10)
    assert only.get_epsilon(1e-5) < mix.get_epsilon(1e-5)
    assert create_accountant("pld").get_epsilon(1e-5) == 0.0


@pytest.mark.parametrize("event", [UnboundedEvent("index reveals rejections"),
                                   NotEstablishedEvent("GPRS"), NonPrivateEvent()], ids=repr)
def test_no_guarantee_events_give_inf_with_reason(event):
    for acc in (BasicAccountant(), PLDAccountant(), RDPAccountant()):
        assert acc.supports(event)
        acc.step(PureEvent(1.0), count=5)
        acc.step(ComposedEvent((PureEvent(0.2), event)))
        spent = acc.get_privacy_spent(1e-5)
        assert spent.epsilon == math.inf and type(event).__name__ in spent.reason
    spent = plan_epsilon(event, 10, 1e-5, "pld")
    assert spent.epsilon == math.inf and spent.reason and spent.method == "pld"
    with pytest.raises(ParameterError, match="exceeds"):
        plan_epsilon(event, 10, 1e-5, "best", max_epsilon=1e9)


def test_unsupported_events_raise():
    assert not BasicAccountant().supports(GaussianEvent(1.0))
    with pytest.raises(IncompatibleError, match="GaussianEvent"):
        BasicAccountant().step(ComposedEvent((PureEvent(1.0), GaussianEvent(1.0))))
    with pytest.raises(IncompatibleError, match="ApproxEvent"):
        RDPAccountant().step(ApproxEvent(1.0, 1e-6))
    with pytest.raises(IncompatibleError):
        plan_epsilon(GaussianEvent(1.0), 10, 1e-5, "advanced")
    with pytest.raises(IncompatibleError):
        plan_epsilon(ComposedEvent((PureEvent(1.0), PureEvent(0.5))), 10, 1e-5, "advanced")
    with pytest.raises(ParameterError):
        create_accountant("moments")
    with pytest.raises(ParameterError):
        plan_epsilon(PureEvent(1.0), 10, 1e-5, "moments")
    with pytest.raises(ParameterError):
        advanced_composition(epsilon=1.0, steps=0, delta_prime=1e-5)
    with pytest.raises(ParameterError):
        pld_pure_composition(epsilon=1.0, delta=1e-5)  # scalar ε needs steps
    with pytest.raises(ParameterError):
        basic_composition(epsilons=[1.0, -1.0])


def test_plan_epsilon_refuses_over_budget():
    ok = plan_epsilon(PureEvent(1.0), 100, 1e-5, "best", max_epsilon=80.0)
    assert ok.method == "pld" and ok.epsilon == pytest.approx(79.84, rel=1e-3)
    with pytest.raises(ParameterError, match="exceeds max_epsilon"):
        plan_epsilon(PureEvent(1.0), 100, 1e-5, "basic", max_epsilon=80.0)
    adv = plan_epsilon(ApproxEvent(0.5, 1e-8), 100, 1e-5, "advanced")
    assert adv.epsilon == pytest.approx(advanced_composition(epsilon=0.5, steps=100, delta_prime=1e-5 - 1e-6))
    assert plan_epsilon(GaussianEvent(1.0), 100, 1e-5, "best").method == "pld"


# --- dp-accounting's repeat count, and the incremental PLD accountant (issue 14, items 4 and 5) ---


def test_rounds_compose_although_dp_accounting_drops_the_rr_count():
    """dp-accounting 0.6.0's PLDAccountant composes a randomised-response event once whatever its
    count: 50 rounds at ε = 4 report 4.0. Ours composes every release: ≈ 200, the exact optimum."""
    from dp_accounting import dp_event
    from dp_accounting.pld.pld_privacy_accountant import NeighborRel
    from dp_accounting.pld.pld_privacy_accountant import PLDAccountant as UpstreamPLD

    exact = exact_pure_composition(epsilon=4.0, steps=50, delta=1e-5)
    assert exact == pytest.approx(200.0, rel=1e-6)
    per_round = PLDAccountant()
    for _ in range(50):
        per_round.step(PureEvent(4.0))
    assert per_round.get_epsilon(1e-5) == pytest.approx(exact, rel=1e-9)
    counted = PLDAccountant()
    counted.step(PureEvent(4.0), count=50)
    assert counted.get_epsilon(1e-5) == pytest.approx(exact, rel=1e-9)
    assert plan_epsilon(PureEvent(4.0), 50, 1e-5, "pld").epsilon == pytest.approx(exact, rel=1e-9)
    chunks = PLDAccountant()  # two releases per round, 25 rounds
    chunks.step(ComposedEvent((PureEvent(4.0), PureEvent(4.0))), count=25)
    assert chunks.get_epsilon(1e-5) == pytest.approx(exact, rel=1e-9)

    rr = to_dp_event(PureEvent(4.0))
    assert isinstance(rr, dp_event.RandomizedResponseDpEvent) and rr.num_buckets == 2
    upstream = UpstreamPLD(NeighborRel.REPLACE_ONE, value_discretization_interval=1e-3)
    upstream.compose(dp_event.SelfComposedDpEvent(rr, 50))
    assert upstream.get_epsilon(1e-5) == pytest.approx(4.0, abs=1e-3), (
        "dp-accounting now honours the count of randomised-response events: revisit to_dp_event's caution")
    # the mapped event, composed once per round through dp-accounting, agrees with ours
    once_each = UpstreamPLD(NeighborRel.REPLACE_ONE, value_discretization_interval=4.0 / 4000)
    for _ in range(50):
        once_each.compose(rr)
    assert once_each.get_epsilon(1e-5) == pytest.approx(exact, rel=1e-6)


INCREMENTAL_EVENTS = [
    PureEvent(1.0),
    PureEvent(1.1053),
    ComposedEvent((PureEvent(0.5), PureEvent(0.5))),
    ComposedEvent((PureEvent(0.3), PureEvent(0.7))),
]


@pytest.mark.parametrize("event", INCREMENTAL_EVENTS, ids=repr)
def test_incremental_pld_equals_from_scratch(event):
    """200 rounds recorded one by one give the ε of composing that many rounds from scratch (to
    1e-9 relative; checked after rounds 1-10 and every 20th), on a grid that does not shrink."""
    acc = PLDAccountant()
    checks = set(range(1, 11)) | set(range(20, 201, 20))
    for r in range(1, 201):
        acc.step(event)
        if r not in checks:
            continue
        scratch = PLDAccountant()
        scratch.step(event, count=r)
        assert acc.get_epsilon(1e-5) == pytest.approx(scratch.get_epsilon(1e-5), rel=1e-9, abs=1e-12), r
    assert acc.grid == exact_interval(e.epsilon for e in leaves_of(event))


def leaves_of(event):
    return event.events if isinstance(event, ComposedEvent) else (event,)


def test_incremental_pld_off_the_grid_and_across_grid_changes():
    """ε off any coarse grid (1e-4, pessimistic), Gaussian releases, and a change of grid midway
    (which rebuilds the running PLD once) still equal a from-scratch composition."""
    events = [PureEvent(1.0)] * 5 + [PureEvent(0.5)] * 5
    events += [ComposedEvent((PureEvent(math.pi / 10), PureEvent(0.7)))] * 3
    events += [GaussianEvent(3.0)] * 2 + [ApproxEvent(0.5, 1e-7)] * 2
    grids = [1.0] * 5 + [0.5] * 5 + [FALLBACK_INTERVAL] * 7
    acc = PLDAccountant()
    for r, (event, grid) in enumerate(zip(events, grids), start=1):
        acc.step(event)
        assert acc.grid == pytest.approx(grid, rel=1e-12)
        scratch = PLDAccountant()
        scratch.step(ComposedEvent(tuple(events[:r])))  # every release so far, composed in one go
        assert acc.get_epsilon(1e-5) == pytest.approx(scratch.get_epsilon(1e-5), rel=1e-9), r
    # a fixed grid is kept throughout
    fixed = PLDAccountant(value_discretization_interval=1e-3)
    fixed.step(PureEvent(1.0), count=3)
    fixed.step(PureEvent(0.5))
    assert fixed.grid == 1e-3
    with pytest.raises(ParameterError):
        PLDAccountant(value_discretization_interval=0.0)


@pytest.mark.parametrize("point, expected", REFERENCE)
def test_incremental_reference_points(point, expected):
    """references.md §5, recorded round by round: PLD ε at δ = 1e-5 within 1%."""
    eps, t = point
    acc = PLDAccountant()
    for _ in range(t):
        acc.step(PureEvent(eps))
    assert acc.get_epsilon(1e-5) == pytest.approx(expected[2], rel=1e-2)
    assert acc.get_epsilon(1e-5) == pytest.approx(exact_pure_composition(epsilon=eps, steps=t, delta=1e-5), rel=1e-9)


def test_exact_interval():
    assert exact_interval([1.0]) == 1.0 and exact_interval([4.4213, 4.4213]) == 4.4213
    assert exact_interval([0.3, 0.7]) == pytest.approx(0.1, rel=1e-15)
    assert exact_interval([0.5, 0.5, 1.0]) == 0.5
    assert exact_interval([math.pi / 10, 0.7]) is None  # no fraction with a small denominator
    assert exact_interval([1e-9, 1.0]) is None  # a grid of 1e9 points: too fine
    assert exact_interval([]) is None
    # heterogeneous ε on an exact grid: the brute-force optimum, not an upper bound
    eps = [0.3, 0.7, 0.7, 0.3, 0.5, 0.2, 0.9, 0.4]
    assert pld_pure_composition(epsilon=eps, delta=1e-3) == pytest.approx(_brute_force_epsilon(eps, 1e-3), abs=1e-9)


def test_to_dp_event():
    from dp_accounting import dp_event

    rr = to_dp_event(PureEvent(1.0))
    p_keep = 1 - rr.noise_parameter / 2  # P(report the true bit) = e^ε / (1 + e^ε)
    assert math.log(p_keep / (1 - p_keep)) == pytest.approx(1.0, rel=1e-12)
    assert to_dp_event(GaussianEvent(2.0)) == dp_event.GaussianDpEvent(2.0)
    comp = to_dp_event(ComposedEvent((PureEvent(1.0), GaussianEvent(2.0))))
    assert isinstance(comp, dp_event.ComposedDpEvent) and len(comp.events) == 2
    for ev in (NonPrivateEvent(), UnboundedEvent("x"), NotEstablishedEvent("y")):
        assert isinstance(to_dp_event(ev), dp_event.NonPrivateDpEvent)
    with pytest.raises(IncompatibleError):
        to_dp_event(ApproxEvent(1.0, 1e-6))
