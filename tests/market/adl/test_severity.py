"""Severity controllers: full, exponential backoff, mirror descent and MDIC."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.adl.severity import (
    IC_WINDOW,
    MDIC,
    SEVERITIES,
    ExponentialBackoff,
    FullSeverity,
    MirrorDescent,
    WaveOutcome,
    WaveState,
    elasticity,
    get_severity,
)
from market.errors import InputError


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def run(ctrl, waves, outcomes):
    """Thetas played over a wave sequence, checking purity at every call."""
    state = ctrl.init_state()
    thetas = []
    for wave, outcome in zip(waves, outcomes):
        frozen = copy.deepcopy(state)
        th = ctrl.theta(state, wave)
        assert state == frozen
        new = ctrl.update(state, wave, outcome)
        assert state == frozen, "update mutated its state argument"
        assert new is not state
        thetas.append(th)
        state = new
    return thetas, state


def run_feedback(ctrl, waves, frac_of):
    """Like :func:`run`, the outcome's largest haircut fraction a function of the theta played."""
    state = ctrl.init_state()
    thetas, states = [], []
    for wave in waves:
        frozen = copy.deepcopy(state)
        th = ctrl.theta(state, wave)
        state_new = ctrl.update(state, wave, WaveOutcome(max_haircut_frac=frac_of(th)))
        assert state == frozen, "update mutated its state argument"
        thetas.append(th)
        states.append(state_new)
        state = state_new
    return thetas, states


def paper_loss_dollars(theta, d, m, lam, mu, nu_p):
    """Chitra's f_t in dollars, typed from the paper (arXiv 2512.01112 v2, App.)."""
    return -lam * theta * d + mu * max(m - theta * d, 0.0) + nu_p * max(theta * d - d, 0.0) ** 2


# ------------------------------------------------------------------ full and backoff
def test_full_is_one():
    ctrl = get_severity("full")
    assert isinstance(ctrl, FullSeverity)
    waves = [WaveState(i, d, u) for i, (d, u) in enumerate([(10, 5), (0, 0), (3, 100)])]
    thetas, state = run(ctrl, waves, [WaveOutcome()] * 3)
    assert thetas == [1.0, 1.0, 1.0]
    assert state == {}
    assert ctrl.budget({}, WaveState(0, 12.5, 1.0)) == 12.5


def test_backoff_hand_sequence():
    ctrl = ExponentialBackoff(theta0=1.0, alpha=0.5, floor=0.2, reset_after=10)
    idx = [0, 1, 2, 3, 14, 26, 27]
    # waves 0-3: one crisis; 14: 10 calm steps (4..13) is not > 10, same crisis;
    # 26: 11 calm steps (15..25) > 10, a new crisis; 27 continues it
    waves = [WaveState(i, 100.0, 50.0) for i in idx]
    thetas, state = run(ctrl, waves, [WaveOutcome()] * len(waves))
    assert thetas == [1.0, 0.5, 0.25, 0.2, 0.2, 1.0, 0.5]
    assert state == {"k": 2, "last_index": 27}
    no_floor = ExponentialBackoff(theta0=0.8, alpha=0.5)
    thetas, _ = run(no_floor, waves[:4], [WaveOutcome()] * 4)
    assert thetas == [0.8, 0.4, 0.2, 0.1]


def test_backoff_zero_deficit_is_not_a_wave():
    ctrl = ExponentialBackoff()
    s1 = ctrl.update(ctrl.init_state(), WaveState(0, 10.0, 10.0), WaveOutcome())
    s2 = ctrl.update(s1, WaveState(1, 0.0, 10.0), WaveOutcome())
    assert s2 == s1 and s2 is not s1
    assert ctrl.theta(s2, WaveState(2, 10.0, 10.0)) == 0.5


# ------------------------------------------------------------------ mirror descent: surrogate
def test_paper_surrogate_and_gradient_by_hand():
    # D = 100, U = 1000, M = 40: M / D = 0.4; lam 1, mu 2, unit-free nu 3 (paper nu = 0.03)
    ctrl = MirrorDescent(lam=1.0, mu=2.0, nu=3.0)
    wave = WaveState(0, 100.0, 1000.0, max_capacity=40.0)
    assert ctrl.surrogate_value(0.3, wave) == pytest.approx(-0.3 + 2 * 0.1)  # short of M
    assert ctrl.surrogate_value(0.6, wave) == pytest.approx(-0.6)  # past M, below D
    assert ctrl.surrogate_value(1.5, wave) == pytest.approx(-1.5 + 3 * 0.25)  # past D
    assert ctrl.gradient(0.3, wave) == pytest.approx(-3.0)
    assert ctrl.gradient(0.4, wave) == pytest.approx(-1.0)  # kink: right derivative
    assert ctrl.gradient(0.6, wave) == pytest.approx(-1.0)
    assert ctrl.gradient(1.5, wave) == pytest.approx(-1.0 + 2 * 3 * 0.5)
    # dollars: -30 + 2 * 10 = -10 and -150 + 0.03 * 50**2 = -75
    assert 100 * ctrl.surrogate_value(0.3, wave) == pytest.approx(-10.0)
    assert 100 * ctrl.surrogate_value(1.5, wave) == pytest.approx(-75.0)
    assert ctrl.surrogate_value(0.5, WaveState(1, 0.0, 10.0)) == 0.0
    assert ctrl.gradient(0.5, WaveState(1, 0.0, 10.0)) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.floats(1e-5, 1e12),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1e3),
    st.floats(0.0, 3.0),
    st.floats(0.0, 10.0),
    st.floats(0.0, 10.0),
    st.floats(0.0, 10.0),
)
def test_paper_surrogate_is_the_dollar_loss_per_dollar_of_deficit(
    d, m_share, u_mult, th, la, mu, nu
):
    # the unit-free loss times D is the paper's f_t with nu_paper = nu / D, at every magnitude
    u = d * u_mult
    m = u * m_share
    wave = WaveState(0, d, u, max_capacity=m)
    ctrl = MirrorDescent(lam=la, mu=mu, nu=nu)
    want = paper_loss_dollars(th, d, m, la, mu, nu / d)
    assert d * ctrl.surrogate_value(th, wave) == pytest.approx(want, rel=1e-9, abs=1e-9 * d)
    # the subgradient is the slope of the loss away from its kinks
    h = 1e-7
    if abs(th - m / d) > 1e-5 and abs(th - 1.0) > 1e-5 and th > h:
        slope = (ctrl.surrogate_value(th + h, wave) - ctrl.surrogate_value(th - h, wave)) / (2 * h)
        assert ctrl.gradient(th, wave) == pytest.approx(slope, rel=1e-4, abs=1e-4)


def test_capacity_surrogate_kept_as_named_option():
    ctrl = MirrorDescent(lam=1.0, mu=2.0, nu=3.0, target_fraction=0.8, surrogate="capacity")
    wave = WaveState(0, 100.0, 40.0, max_capacity=10.0)  # U / D = 0.4; M plays no part
    # theta 0.6: -0.6 + 2 * 0.2 + 3 * 0.2**2 = -0.08
    assert ctrl.surrogate_value(0.6, wave) == pytest.approx(-0.08)
    assert ctrl.gradient(0.6, wave) == pytest.approx(-1.0 - 2.0 + 6.0 * 0.2)
    assert ctrl.gradient(0.9, wave) == pytest.approx(-1.0 + 6.0 * 0.5)
    # the capacity cap keeps the quadratic term inactive at the played theta
    quiet = MirrorDescent(eta=2.0, lam=0.0, mu=0.0, nu=5.0, theta0=0.9, R=math.inf)
    quiet.set_params(surrogate="capacity")
    wave = WaveState(0, 100.0, 30.0)
    th = quiet.theta(quiet.init_state(), wave)
    assert th == pytest.approx(0.3)
    assert quiet.gradient(th, wave) == 0.0


# ------------------------------------------------------------------ mirror descent: cap
def test_paper_price_of_anarchy_cap_by_hand():
    wave = WaveState(0, 100.0, 1000.0, max_capacity=40.0)
    assert MirrorDescent(R=1.0).cap(wave) == pytest.approx(0.2)  # 1/2 * 40/100
    assert MirrorDescent(R=3.0).cap(wave) == pytest.approx(0.3)  # 3/4 * 40/100
    assert MirrorDescent(R=math.inf).cap(wave) == 1.0  # the paper: uncapped
    assert MirrorDescent(R=1.0).cap(WaveState(0, 10.0, 100.0, max_capacity=40.0)) == 1.0
    assert MirrorDescent(R=1.0).cap(WaveState(0, 0.0, 100.0)) == 1.0
    # M unknown: the total capacity stands in for it (an upper bound: a looser cap)
    assert MirrorDescent(R=1.0).cap(WaveState(0, 100.0, 50.0)) == pytest.approx(0.25)
    ctrl = MirrorDescent(R=1.0, theta0=1.0)
    assert ctrl.theta(ctrl.init_state(), wave) == pytest.approx(0.2)
    # capacity form: total capacity, and feasibility U / D when R = inf
    cap_form = {"surrogate": "capacity"}
    assert MirrorDescent(R=1.0, **cap_form).cap(wave) == 1.0  # 1/2 * 1000/100
    assert MirrorDescent(R=1.0, **cap_form).cap(WaveState(0, 100.0, 50.0)) == pytest.approx(0.25)
    assert MirrorDescent(R=math.inf, **cap_form).cap(WaveState(0, 100.0, 50.0)) == 0.5


def test_paper_cap_bounds_raised_by_R_times_what_the_largest_winner_keeps():
    # the reading of R: theta D <= R (M - theta D) for every wave under the cap
    rng = np.random.default_rng(13)
    for r in (0.25, 1.0, 4.0):
        ctrl = MirrorDescent(R=r)
        for _ in range(200):
            d = float(10 ** rng.uniform(-5, 10))
            u = float(10 ** rng.uniform(-5, 10))
            m = u * float(rng.uniform(0, 1))
            raised = ctrl.theta(ctrl.init_state(), WaveState(0, d, u, max_capacity=m)) * d
            assert raised <= r * (m - raised) * (1 + 1e-9) + 1e-12


# ------------------------------------------------------------------ mirror descent: steps
def test_euclidean_steps_by_hand_and_regret():
    # D = 100, M = 50 (M / D = 0.5), R = inf; lam 1, mu 2: gradient -3 below 0.5, -1 above
    ctrl = MirrorDescent(eta=0.2, lam=1.0, mu=2.0, nu=0.0, R=math.inf, theta0=0.1)
    assert ctrl.geometry == "euclidean"
    wave = WaveState(0, 100.0, 1000.0, max_capacity=50.0)
    thetas, state = run(ctrl, [wave] * 5, [WaveOutcome()] * 5)
    want = [0.1, 0.7, 0.7 + 0.2 / math.sqrt(2), 0.7 + 0.2 / math.sqrt(2) + 0.2 / math.sqrt(3)]
    assert thetas[:4] == pytest.approx(want)  # 0.1 + 0.2 * 3 = 0.7, then + eta_t * 1
    assert thetas[4] == 1.0  # 0.95689 + 0.2 / 2 clipped at 1
    assert state["t"] == 5 and state["theta"] == 1.0
    # regret against the best fixed theta (1: each loss is -1 there) over the first four
    losses = [ctrl.surrogate_value(th, wave) for th in thetas[:4]]
    assert losses[0] == pytest.approx(-0.1 + 2 * 0.4)
    regret = sum(losses) - 4 * ctrl.surrogate_value(1.0, wave)
    assert regret == pytest.approx(0.7 - 0.7 - 0.8414214 - 0.9568914 + 4.0, abs=1e-6)
    # the OMD bound (paper App. "Regret Analysis"): 1/(2 eta) sqrt(T) + eta G^2 sqrt(T)
    assert regret <= (1 / (2 * 0.2) + 0.2 * 3.0**2) * 2.0


def test_regret_is_within_the_projected_gradient_bound_over_random_waves():
    # random deficits, capacities and largest winners over ten decades; caps vary per wave
    rng = np.random.default_rng(7)
    for r, eta in ((math.inf, 0.3), (2.0, 0.05), (0.5, 1.0)):
        ctrl = MirrorDescent(eta=eta, lam=1.0, mu=1.5, nu=2.0, R=r, theta0=0.0)
        n = 400
        d = 10 ** rng.uniform(-3, 7, n)
        u = d * 10 ** rng.uniform(-1, 2, n)
        m = u * rng.uniform(0.01, 1.0, n)
        waves = [WaveState(i, float(d[i]), float(u[i]), max_capacity=float(m[i])) for i in range(n)]
        thetas, _ = run(ctrl, waves, [WaveOutcome()] * n)
        caps = [ctrl.cap(w) for w in waves]
        assert all(th <= c for th, c in zip(thetas, caps))
        losses = [ctrl.surrogate_value(th, w) for th, w in zip(thetas, waves)]
        bound = (1 / (2 * eta) + eta * (1.0 + 1.5) ** 2) * math.sqrt(n)  # G = lam + mu
        # static regret (paper App. "Regret Analysis"): against the best theta feasible in
        # every wave; the loss is piecewise linear, so that theta is a kink (M_t / D_t) or an
        # end of [0, min cap]
        top = min(caps)
        cands = [0.0, top, *[min(float(x), top) for x in m / d]]
        best = min(sum(ctrl.surrogate_value(c, w) for w in waves) for c in cands)
        assert sum(losses) - best <= bound
        # on [0, 1] the loss falls with theta, so each wave's best is its cap; each step
        # starts from the played (capped) theta, so a finite R makes the controller lag a
        # rising cap, and with R = inf it plays 1 once it has climbed there
        per_wave = [x - ctrl.surrogate_value(c, w) for x, c, w in zip(losses, caps, waves)]
        assert min(per_wave) >= 0.0
        rising = [i for i in range(1, n) if caps[i] > caps[i - 1] + eta / math.sqrt(i) * 2.5]
        assert all(thetas[i] < caps[i] for i in rising)
        if math.isinf(r):
            climbed = thetas.index(1.0)
            # each step climbs at least eta_t * lam = 0.3 / sqrt(t): the sum passes 1 at t = 6
            assert 0 < climbed <= 6
            assert thetas[climbed:] == [1.0] * (n - climbed)
            assert sum(per_wave) <= 2.5 * climbed


def test_logit_geometry_steps_by_hand():
    # D = 100, U = 1000 (cap 1); lam = 1, mu = 0: f/D = -theta, gradient -1
    ctrl = MirrorDescent(eta=0.5, lam=1.0, mu=0.0, nu=1.0, theta0=0.5, geometry="logit")
    wave = WaveState(0, 100.0, 1000.0)
    s0 = ctrl.init_state()
    assert ctrl.theta(s0, wave) == 0.5
    s1 = ctrl.update(s0, wave, WaveOutcome())
    th1 = ctrl.theta(s1, wave)
    assert th1 == pytest.approx(sigmoid(0.5))  # logit(0.5) + 0.5 / sqrt(1)
    assert ctrl.surrogate_value(th1, wave) < ctrl.surrogate_value(0.5, wave)
    s2 = ctrl.update(s1, wave, WaveOutcome())
    assert ctrl.theta(s2, wave) == pytest.approx(sigmoid(0.5 + 0.5 / math.sqrt(2)))
    assert s2["t"] == 2


def test_paper_cap_binds_and_each_step_starts_from_the_played_theta():
    # with a finite R the played theta is below M / D, so the gradient is -(lam + mu)
    ctrl = MirrorDescent(eta=0.1, lam=1.0, mu=2.0, R=1.0, theta0=0.05)
    wave = WaveState(0, 100.0, 1000.0, max_capacity=40.0)  # cap 0.2
    thetas, state = run(ctrl, [wave] * 3, [WaveOutcome()] * 3)
    assert thetas == pytest.approx([0.05, 0.2, 0.2])  # iterate 0.35 capped at 0.2
    # the third step starts from the played 0.2, not from the iterate 0.2 + 0.3 / sqrt(2)
    assert state["theta"] == pytest.approx(0.2 + 0.3 / math.sqrt(3))
    wide = WaveState(1, 100.0, 1000.0, max_capacity=200.0)  # cap 1
    assert ctrl.theta(state, wide) == pytest.approx(state["theta"])


def test_lagged_forecast_budgets_on_the_last_wave_deficit():
    # lam = mu = 0: the iterate stays at theta0 = 0.5
    ctrl = MirrorDescent(lam=0.0, mu=0.0, R=math.inf, theta0=0.5, forecast="lagged")
    s = ctrl.init_state()
    w1 = WaveState(0, 100.0, 1000.0)
    assert ctrl.theta(s, w1) == 0.5  # first wave: D_hat = D
    s = ctrl.update(s, w1, WaveOutcome())
    assert s["last_deficit"] == 100.0 and s["theta"] == 0.5
    assert ctrl.theta(s, WaveState(1, 200.0, 1000.0)) == pytest.approx(0.25)  # 0.5 * 100 / 200
    assert ctrl.theta(s, WaveState(1, 50.0, 1000.0)) == 1.0  # 0.5 * 100 / 50, cut at D
    assert ctrl.budget(s, WaveState(1, 400.0, 1000.0)) == pytest.approx(50.0)  # theta D_hat
    s_calm = ctrl.update(s, WaveState(2, 0.0, 1000.0), WaveOutcome())
    assert s_calm == s  # a zero-deficit step is not a wave
    s = ctrl.update(s, WaveState(3, 40.0, 1000.0), WaveOutcome())
    assert ctrl.theta(s, WaveState(4, 80.0, 1000.0)) == pytest.approx(0.25)
    # the current forecast ignores the last wave
    now = MirrorDescent(lam=0.0, mu=0.0, R=math.inf, theta0=0.5)
    assert now.theta(s, WaveState(4, 80.0, 1000.0)) == 0.5


# ------------------------------------------------------------------ properties
waves_st = st.lists(
    st.tuples(
        st.floats(0.0, 1e12),
        st.floats(0.0, 1e12),
        st.floats(0.0, 1.0),
        st.floats(0.0, 2.0),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(
    waves_st,
    st.sampled_from(["mirror_descent", "mdic", "backoff", "full"]),
    st.floats(0.01, 5.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 5.0),
    st.sampled_from([0.5, 1.0, math.inf]),
    st.sampled_from(["paper", "capacity"]),
    st.sampled_from(["euclidean", "logit"]),
    st.booleans(),
)
def test_controllers_stay_in_unit_interval_and_are_pure(
    seq, name, eta, theta0, nu, r, surrogate, geometry, with_m
):
    md = {"eta": eta, "theta0": theta0, "nu": nu, "R": r}
    md |= {"surrogate": surrogate, "geometry": geometry}
    params = {"backoff": {"theta0": theta0}, "full": {}}.get(name, md)
    ctrl = get_severity(name, **params)
    waves = [
        WaveState(i, d, u, max_capacity=u * ms if with_m else None)
        for i, (d, u, ms, _) in enumerate(seq)
    ]
    outcomes = [WaveOutcome(0.0, 0.0, f) for *_, f in seq]
    thetas, state = run(ctrl, waves, outcomes)
    assert all(0.0 <= th <= 1.0 for th in thetas)
    if name in ("mirror_descent", "mdic"):
        for th, w in zip(thetas, waves):
            assert th <= ctrl.cap(w)
            if w.deficit > 0 and math.isfinite(r):
                assert th <= w.capacity / w.deficit + 1e-12  # finite R: feasible by the cap
        assert 0.0 <= state["theta"] <= 1.0


# ------------------------------------------------------------------ MDIC
def test_elasticity_by_hand():
    # frac proportional to the share: slope 1; flat at 1: slope 0; spread 4 in both
    assert elasticity([[0.1, 0.2], [0.05, 0.1], [0.025, 0.05]], 2.0) == pytest.approx((1.0, 4.0))
    assert elasticity([[0.1, 1.0], [0.05, 1.0], [0.025, 1.0]], 2.0) == pytest.approx((0.0, 4.0))
    # saturated at the two larger shares, proportional below: dx = (L, 0, -L),
    # dy = (L/3, L/3, -2L/3) with L = ln 2, so the slope is L^2 / (2 L^2)
    assert elasticity([[0.4, 1.0], [0.2, 1.0], [0.1, 0.5]], 2.0)[0] == pytest.approx(0.5)
    assert elasticity([[0.1, 1.0], [0.05, 1.0]], 2.0) == (None, pytest.approx(2.0))  # two pairs
    assert elasticity([[0.1, 1.0], [0.08, 1.0], [0.06, 1.0]], 2.0)[0] is None  # spread 1.67
    assert elasticity([], 2.0) == (None, 1.0)


def _queue_waves(n):
    return [WaveState(i, 100.0, 1000.0, max_capacity=400.0) for i in range(n)]


def test_mdic_detects_a_queue_and_keeps_theta_away_from_zero():
    # queue-like outcomes: the largest haircut fraction is 1 whatever theta is
    common = {"beta": 0.2, "R": math.inf}
    waves = _queue_waves(40)
    thetas, states = run_feedback(MDIC(**common), waves, lambda th: 1.0)
    # by hand (Euclidean, eta 0.5, gamma 1, g = -(lam + mu) = -2 below M/D = 4):
    # lam_ic = 0.8, 0.8 + 0.8/sqrt(2), + 0.8/sqrt(3), + 0.8/2 = 2.22757 > 2, theta falls
    lam4 = 0.8 * (1 + 1 / math.sqrt(2) + 1 / math.sqrt(3) + 0.5)
    assert states[3]["lam_ic"] == pytest.approx(lam4)
    th5 = 1.0 - 0.5 / 2 * (lam4 - 2.0)
    assert thetas[:5] == pytest.approx([1.0, 1.0, 1.0, 1.0, th5])
    broken_at = next(i for i, s in enumerate(states) if s["ic_broken"])
    assert broken_at == 6  # the third pair (share 0.1 * theta) spans a factor >= 2
    assert not any(s["ic_broken"] for s in states[:broken_at])
    assert all(s["ic_broken"] for s in states[broken_at:])
    ev = states[-1]["ic_evidence"]
    assert ev["elasticity"] == 0.0 and ev["spread"] >= 2.0
    assert all(frac == 1.0 for _, frac in ev["points"])
    assert states[-1]["ic_elasticity"] == 0.0
    # the dual variable is frozen and theta goes back to what the surrogate asks for
    assert {s["lam_ic"] for s in states[broken_at:]} == {states[broken_at - 1]["lam_ic"]}
    assert min(thetas) > 0.4 and thetas[-1] == 1.0
    assert len(states[-1]["ic_points"]) == IC_WINDOW
    # without the check (an elasticity floor of 0 never trips on a flat fraction) the
    # broken sensitivity drives theta to 0: the failure this guards against
    blind, blind_states = run_feedback(MDIC(min_elasticity=0.0, **common), waves, lambda th: 1.0)
    assert blind[-1] == 0.0 and not blind_states[-1]["ic_broken"]
    assert blind_states[-1]["lam_ic"] > states[-1]["lam_ic"]


def test_mdic_with_pro_rata_outcomes_enforces_the_constraint_without_a_flag():
    # pro-rata-like: frac = 0.8 theta (share = 0.1 theta, so the elasticity is exactly 1)
    waves = _queue_waves(40)
    ctrl = MDIC(beta=0.2, R=math.inf)
    thetas, states = run_feedback(ctrl, waves, lambda th: 0.8 * th)
    assert not any(s["ic_broken"] for s in states)
    assert states[-1]["ic_elasticity"] == pytest.approx(1.0)
    first_ok = next(i for i, th in enumerate(thetas) if 0.8 * th <= 0.2)
    assert 0 < first_ok < 20
    assert all(b <= a for a, b in itertools.pairwise(thetas[7 : first_ok + 1]))
    assert states[first_ok - 1]["lam_ic"] > 0
    # exactly the trajectory of the unchecked controller: the check does not interfere
    blind, _ = run_feedback(
        MDIC(beta=0.2, R=math.inf, min_elasticity=0.0), waves, lambda th: 0.8 * th
    )
    assert thetas == blind


def test_mdic_reads_budget_share_skips_uninformative_pairs_and_can_recover():
    ctrl = MDIC(beta=0.2, R=math.inf)
    wave = WaveState(0, 100.0, 50.0, max_capacity=10.0)
    s = ctrl.init_state()
    # share >= 1 (all capacity taken) and frac = 0 carry no evidence
    s = ctrl.update(s, wave, WaveOutcome(max_haircut_frac=1.0, budget_share=1.0))
    s = ctrl.update(s, wave, WaveOutcome(max_haircut_frac=0.0, budget_share=0.3))
    assert s["ic_points"] == []
    # a queue-like stretch given through budget_share
    for share in (0.4, 0.2, 0.1):
        s = ctrl.update(s, wave, WaveOutcome(max_haircut_frac=1.0, budget_share=share))
    assert s["ic_broken"] and s["ic_points"] == [[0.4, 1.0], [0.2, 1.0], [0.1, 1.0]]
    assert s["ic_evidence"]["index"] == 0 and s["ic_evidence"]["spread"] == pytest.approx(4.0)
    # pairs that do not span min_spread leave the judgement standing
    s = ctrl.update(s, wave, WaveOutcome(max_haircut_frac=0.3, budget_share=0.3))
    assert s["ic_broken"]
    # once the window holds proportional evidence only, the flag clears
    for k in range(IC_WINDOW):
        share = 0.05 * (1 + k % 4)
        s = ctrl.update(s, wave, WaveOutcome(max_haircut_frac=share, budget_share=share))
    assert not s["ic_broken"] and s["ic_elasticity"] == pytest.approx(1.0)


def test_mdic_lowers_theta_after_a_violation():
    wave = WaveState(0, 100.0, 1000.0)
    common = {"eta": 0.5, "lam": 1.0, "mu": 0.0, "theta0": 0.5, "geometry": "logit"}
    md = MirrorDescent(**common)
    mdic = MDIC(gamma=1.0, beta=0.1, **common)
    bad = WaveOutcome(raised=50.0, residual=50.0, max_haircut_frac=0.6)
    s_md = md.update(md.init_state(), wave, bad)
    s_ic = mdic.update(mdic.init_state(), wave, bad)
    # lam_ic = 1 * (0.6 - 0.1) = 0.5; sensitivity 0.6 / 0.5 = 1.2; gradient -1 + 0.6 = -0.4
    assert s_ic["lam_ic"] == pytest.approx(0.5)
    assert mdic.theta(s_ic, wave) == pytest.approx(sigmoid(0.5 * 0.4))
    assert mdic.theta(s_ic, wave) < md.theta(s_md, wave)
    # a large violation pushes theta below what was played: lam_ic = 2 * 0.9 = 1.8,
    # gradient -1 + 1.8 * 2 = 2.6, z = -0.5 * 2.6
    strict = MDIC(gamma=2.0, beta=0.1, **common)
    s = strict.update(strict.init_state(), wave, WaveOutcome(max_haircut_frac=1.0))
    assert strict.theta(s, wave) == pytest.approx(sigmoid(-1.3))
    assert strict.theta(s, wave) < 0.5
    # the multiplier decays once the constraint holds again: 1.8 + 2/sqrt(2) * (0 - 0.1)
    s2 = strict.update(s, wave, WaveOutcome(max_haircut_frac=0.0))
    assert s2["lam_ic"] == pytest.approx(1.8 - 0.2 / math.sqrt(2))


def test_mdic_without_violation_moves_like_mirror_descent():
    wave = WaveState(3, 80.0, 60.0, max_capacity=30.0)
    for geometry in ("euclidean", "logit"):
        md = MirrorDescent(eta=0.7, theta0=0.3, R=4.0, geometry=geometry)
        mdic = MDIC(eta=0.7, theta0=0.3, R=4.0, beta=0.5, geometry=geometry)
        ok = WaveOutcome(max_haircut_frac=0.2)
        s_md, s_ic = md.init_state(), mdic.init_state()
        for _ in range(4):
            s_md, s_ic = md.update(s_md, wave, ok), mdic.update(s_ic, wave, ok)
            assert mdic.theta(s_ic, wave) == pytest.approx(md.theta(s_md, wave))
            assert s_ic["lam_ic"] == 0.0


# ------------------------------------------------------------------ parameters
NON_DEFAULT = {
    "full": {},
    "backoff": {"theta0": 0.7, "alpha": 0.3, "floor": 0.1, "reset_after": 4},
    "mirror_descent": {
        "eta": 0.2,
        "lam": 0.5,
        "mu": 2.0,
        "nu": 3.0,
        "R": math.inf,
        "theta0": 0.4,
        "target_fraction": 0.9,
        "surrogate": "capacity",
        "forecast": "lagged",
        "geometry": "logit",
    },
    "mdic": {
        "eta": 0.2,
        "gamma": 0.3,
        "beta": 0.1,
        "R": 2.0,
        "surrogate": "capacity",
        "forecast": "lagged",
        "geometry": "logit",
        "min_elasticity": 0.3,
        "min_spread": 3.0,
    },
}


@pytest.mark.parametrize("name", list(SEVERITIES))
def test_params_round_trip(name):
    ctrl = get_severity(name, **NON_DEFAULT[name])
    params = ctrl.get_params()
    assert params == {**type(ctrl)().get_params(), **NON_DEFAULT[name]}
    twin = ctrl.clone()
    assert type(twin) is type(ctrl) and twin is not ctrl and twin.get_params() == params
    fresh = get_severity(name).set_params(**NON_DEFAULT[name])
    assert fresh.get_params() == params
    assert eval(repr(ctrl), {"inf": math.inf, type(ctrl).__name__: type(ctrl)}).get_params() == (
        params
    )
    # the clone behaves identically on the same waves
    waves = [WaveState(i, 100.0 * (i + 1), 500.0, max_capacity=80.0) for i in range(5)]
    outs = [WaveOutcome(max_haircut_frac=0.3 * (i % 3)) for i in range(5)]
    assert run(ctrl, waves, outs) == run(twin, waves, outs)


def test_registry_and_bad_parameters():
    assert set(SEVERITIES) == {"full", "backoff", "mirror_descent", "mdic"}
    with pytest.raises(InputError) as err:
        get_severity("nope")
    assert str(err.value) == (
        "severity: must be one of full, backoff, mirror_descent, mdic (got 'nope')"
    )
    bad = [
        (
            lambda: get_severity("backoff", speed=2),
            r"^backoff\.speed: must be one of theta0, alpha",
        ),
        (
            lambda: ExponentialBackoff(alpha=1.5),
            r"^backoff\.alpha: must be a finite number in \[0, 1\]",
        ),
        (lambda: ExponentialBackoff(reset_after=-1), r"^backoff\.reset_after"),
        (lambda: MirrorDescent(eta=0.0), r"^mirror_descent\.eta: must be a finite number > 0"),
        (lambda: MirrorDescent(R=0.0), r"^mirror_descent\.R: must be a number > 0 \(inf allowed\)"),
        (lambda: MirrorDescent(lam=-1.0), r"^mirror_descent\.lam"),
        (
            lambda: MirrorDescent(surrogate="quadratic"),
            r"^mirror_descent\.surrogate: must be one of paper, capacity \(got 'quadratic'\)$",
        ),
        (
            lambda: MirrorDescent(forecast=None),
            r"^mirror_descent\.forecast: must be one of current",
        ),
        (lambda: MirrorDescent(geometry="kl"), r"^mirror_descent\.geometry: must be one of euclid"),
        (lambda: MDIC(beta=-1.0), r"^mdic\.beta"),
        (lambda: MDIC(min_elasticity=1.5), r"^mdic\.min_elasticity: must be a finite number in"),
        (lambda: MDIC(min_spread=1.0), r"^mdic\.min_spread: must be a finite number > 1"),
        (lambda: MDIC(surrogate="x"), r"^mdic\.surrogate: must be one of paper, capacity"),
        (lambda: WaveState(0, -1.0, 0.0), r"^wave\.deficit"),
        (
            lambda: WaveState(0, 1.0, 10.0, max_capacity=11.0),
            r"^wave\.max_capacity: must be a finite number in \[0, 10\] \(got 11.0\)$",
        ),
        (lambda: WaveState(0, 1.0, 10.0, max_capacity=math.nan), r"^wave\.max_capacity"),
        (lambda: WaveOutcome(max_haircut_frac=float("nan")), r"^outcome\.max_haircut_frac"),
        (lambda: WaveOutcome(budget_share=1.5), r"^outcome\.budget_share: must be a finite"),
    ]
    for make, pattern in bad:
        with pytest.raises(InputError, match=pattern) as err:
            make()
        assert "\n" not in str(err.value)
    ctrl = MirrorDescent(eta=0.3)
    with pytest.raises(InputError, match=r"^mirror_descent\.theta0"):
        ctrl.set_params(eta=0.9, theta0=2.0)
    with pytest.raises(InputError, match=r"^mirror_descent\.geometry"):
        ctrl.set_params(eta=0.9, geometry="kl")
    assert ctrl.eta == 0.3 and ctrl.geometry == "euclidean"  # nothing changed
    assert ctrl.set_params(eta=0.9).get_params()["eta"] == 0.9
    with pytest.raises(InputError, match=r"^mdic\.speed: must be one of eta, gamma"):
        MDIC().set_params(speed=1)
    assert "R=1.0" in repr(MDIC()) and "surrogate='paper'" in repr(MDIC())
