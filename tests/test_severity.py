"""Severity controllers: full, exponential backoff, mirror descent and MDIC."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.adl.severity import (
    MDIC,
    SEVERITIES,
    ExponentialBackoff,
    FullSeverity,
    MirrorDescent,
    WaveOutcome,
    WaveState,
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


def test_mirror_descent_hand_steps_toward_lower_cost():
    # D = 100, U = 1000 (cap 1); lam = 1, mu = 0: f/D = -theta, gradient -1
    ctrl = MirrorDescent(eta=0.5, lam=1.0, mu=0.0, nu=1.0, theta0=0.5)
    wave = WaveState(0, 100.0, 1000.0)
    s0 = ctrl.init_state()
    assert ctrl.theta(s0, wave) == 0.5
    s1 = ctrl.update(s0, wave, WaveOutcome())
    th1 = ctrl.theta(s1, wave)
    assert th1 == pytest.approx(sigmoid(0.5))  # logit(0.5) + 0.5 / sqrt(1)
    assert ctrl.surrogate(th1, wave) < ctrl.surrogate(0.5, wave)
    s2 = ctrl.update(s1, wave, WaveOutcome())
    assert ctrl.theta(s2, wave) == pytest.approx(sigmoid(0.5 + 0.5 / math.sqrt(2)))
    assert s2["t"] == 2


def test_mirror_descent_surrogate_and_gradient_by_hand():
    ctrl = MirrorDescent(lam=1.0, mu=2.0, nu=3.0, target_fraction=0.8)
    wave = WaveState(0, 100.0, 40.0)  # u = 0.4
    # theta 0.6: -0.6 + 2 * 0.2 + 3 * 0.2**2 = -0.08
    assert ctrl.surrogate(0.6, wave) == pytest.approx(-0.08)
    assert ctrl.gradient(0.6, wave) == pytest.approx(-1.0 - 2.0 + 6.0 * 0.2)
    assert ctrl.gradient(0.9, wave) == pytest.approx(-1.0 + 6.0 * 0.5)


def test_mirror_descent_price_of_anarchy_cap():
    ctrl = MirrorDescent(R=1.0, theta0=1.0)
    wave = WaveState(0, 100.0, 50.0)  # cap = 1/2 * 50/100
    assert ctrl.cap(wave) == pytest.approx(0.25)
    assert ctrl.theta(ctrl.init_state(), wave) == pytest.approx(0.25)
    assert MirrorDescent().cap(wave) == pytest.approx(0.5)  # R = inf: feasibility U / D
    assert MirrorDescent(R=3.0).cap(WaveState(0, 10.0, 100.0)) == 1.0


def test_mirror_descent_cap_keeps_overshoot_term_inactive():
    # with the cap theta <= U/D the quadratic penalty is never active at the played theta
    ctrl = MirrorDescent(eta=2.0, lam=0.0, mu=0.0, nu=5.0, theta0=0.9)
    wave = WaveState(0, 100.0, 30.0)
    th = ctrl.theta(ctrl.init_state(), wave)
    assert th == pytest.approx(0.3)
    assert ctrl.gradient(th, wave) == 0.0


waves_st = st.lists(
    st.tuples(
        st.floats(0.0, 1e7),
        st.floats(0.0, 1e7),
        st.floats(0.0, 2.0),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    waves_st,
    st.sampled_from(["mirror_descent", "mdic", "backoff", "full"]),
    st.floats(0.01, 5.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 5.0),
)
def test_controllers_stay_in_unit_interval_and_are_pure(seq, name, eta, theta0, nu):
    params = {"backoff": {"theta0": theta0}, "full": {}}.get(
        name, {"eta": eta, "theta0": theta0, "nu": nu}
    )
    ctrl = get_severity(name, **params)
    waves = [WaveState(i, d, u) for i, (d, u, _) in enumerate(seq)]
    outcomes = [WaveOutcome(0.0, 0.0, f) for _, _, f in seq]
    thetas, _ = run(ctrl, waves, outcomes)
    assert all(0.0 <= th <= 1.0 for th in thetas)
    for th, w in zip(thetas, waves):
        if name in ("mirror_descent", "mdic") and w.deficit > 0:
            assert th <= w.capacity / w.deficit + 1e-12


def test_mdic_lowers_theta_after_a_violation():
    wave = WaveState(0, 100.0, 1000.0)
    common = {"eta": 0.5, "lam": 1.0, "mu": 0.0, "theta0": 0.5}
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
    wave = WaveState(3, 80.0, 60.0)
    md = MirrorDescent(eta=0.7, theta0=0.3, R=4.0)
    mdic = MDIC(eta=0.7, theta0=0.3, R=4.0, beta=0.5)
    ok = WaveOutcome(max_haircut_frac=0.2)
    s_md, s_ic = md.init_state(), mdic.init_state()
    for _ in range(4):
        s_md, s_ic = md.update(s_md, wave, ok), mdic.update(s_ic, wave, ok)
        assert mdic.theta(s_ic, wave) == pytest.approx(md.theta(s_md, wave))
        assert s_ic["lam_ic"] == 0.0


def test_registry_params_and_validation():
    assert set(SEVERITIES) == {"full", "backoff", "mirror_descent", "mdic"}
    with pytest.raises(InputError) as err:
        get_severity("nope")
    assert str(err.value) == (
        "severity: must be one of full, backoff, mirror_descent, mdic (got 'nope')"
    )
    with pytest.raises(InputError, match=r"^backoff\.speed: must be one of theta0, alpha"):
        get_severity("backoff", speed=2)
    with pytest.raises(InputError, match=r"^backoff\.alpha: must be a finite number in \[0, 1\]"):
        ExponentialBackoff(alpha=1.5)
    with pytest.raises(InputError, match=r"^backoff\.reset_after"):
        ExponentialBackoff(reset_after=-1)
    with pytest.raises(InputError, match=r"^mirror_descent\.eta"):
        MirrorDescent(eta=0.0)
    with pytest.raises(InputError, match=r"^mdic\.beta"):
        MDIC(beta=-1.0)
    with pytest.raises(InputError, match=r"^wave\.deficit"):
        WaveState(0, -1.0, 0.0)
    with pytest.raises(InputError, match=r"^outcome\.max_haircut_frac"):
        WaveOutcome(max_haircut_frac=float("nan"))
    ctrl = MirrorDescent(eta=0.3)
    with pytest.raises(InputError, match=r"^mirror_descent\.theta0"):
        ctrl.set_params(eta=0.9, theta0=2.0)
    assert ctrl.eta == 0.3  # nothing changed
    assert ctrl.set_params(eta=0.9).get_params()["eta"] == 0.9
    assert ctrl.clone().get_params() == ctrl.get_params()
    assert "R=inf" in repr(MDIC())
