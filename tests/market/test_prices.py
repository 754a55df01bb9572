"""Tests for market.prices: GBM-with-jumps, scripted crash and replayed price paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.errors import InputError
from market.prices import (
    JUMP_LOG_CLIP,
    PricePath,
    crash_path,
    gbm_jump_path,
    replay_path,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------
# gbm_jump_path
# --------------------------------------------------------------------------------------------


def test_gbm_shape_dtype_start_and_positivity():
    p = gbm_jump_path([100.0, 20.0, 3.0], 50, rng(1), sigma=0.1, jump_rate=0.3)
    assert p.shape == (51, 3)
    assert p.dtype == np.float64
    assert np.array_equal(p[0], [100.0, 20.0, 3.0])
    assert np.all(np.isfinite(p)) and np.all(p > 0)


def test_gbm_scalar_s0_is_one_market():
    p = gbm_jump_path(5.0, 4, rng())
    assert p.shape == (5, 1)
    assert p[0, 0] == 5.0


def test_gbm_pure_drift_is_exponential():
    # sigma = 0 and no jumps: log price grows by mu*dt each step exactly.
    p = gbm_jump_path(100.0, 4, rng(), mu=0.01, sigma=0.0, dt=2.0, jump_rate=0.0)
    expected = 100.0 * np.exp(0.02 * np.arange(5))
    np.testing.assert_allclose(p[:, 0], expected, rtol=1e-13)


def test_gbm_diffusion_matches_hand_computation_from_same_draws():
    # Pins the draw order: the diffusion normals are the first draw of the generator.
    mu, sigma, dt = 0.05, 0.2, 0.25
    p = gbm_jump_path([10.0, 20.0], 3, rng(7), mu=mu, sigma=sigma, dt=dt, jump_rate=0.0)
    z = rng(7).standard_normal((3, 2))
    incr = (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * z
    expected = np.array([10.0, 20.0]) * np.exp(np.vstack([np.zeros(2), np.cumsum(incr, 0)]))
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_gbm_per_market_sigma():
    p = gbm_jump_path(1.0, 5, rng(3), sigma=[0.0, 0.1], jump_rate=0.0)
    assert p.shape == (6, 2)
    assert np.all(p[:, 0] == 1.0)  # zero vol, zero drift: flat
    assert not np.allclose(p[:, 1], 1.0)


def test_gbm_same_seed_same_path_different_seed_different():
    kw = {"sigma": 0.05, "jump_rate": 0.2, "corr": [[1.0, 0.5], [0.5, 1.0]]}
    a = gbm_jump_path([1.0, 2.0], 200, rng(42), **kw)
    b = gbm_jump_path([1.0, 2.0], 200, rng(42), **kw)
    c = gbm_jump_path([1.0, 2.0], 200, rng(43), **kw)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_gbm_jump_frequency_matches_rate():
    # No diffusion: a step's return is non-zero exactly when at least one jump arrived.
    rate, steps = 0.05, 20_000
    p = gbm_jump_path(1.0, steps, rng(11), sigma=0.0, jump_rate=rate, jump_scale=0.01)
    r = np.diff(np.log(p[:, 0]))
    jumped = int(np.count_nonzero(np.abs(r) > 1e-14))
    expected = steps * (1 - math.exp(-rate))  # 975.4
    sd = math.sqrt(steps * (1 - math.exp(-rate)) * math.exp(-rate))  # 30.4
    assert abs(jumped - expected) < 5 * sd


def test_gbm_jump_sizes_heavy_tailed_and_clipped():
    # Rate 1 jump per step, no diffusion: compare tail frequency of t(3) with near-normal.
    def tail_share(df: float) -> float:
        p = gbm_jump_path(
            1.0, 20_000, rng(5), sigma=0.0, jump_rate=0.2, jump_scale=0.01, jump_tail=df
        )
        r = np.diff(np.log(p[:, 0]))
        r = r[np.abs(r) > 1e-14]
        return float(np.mean(np.abs(r) > 0.04))  # beyond 4 scale units

    heavy, light = tail_share(3.0), tail_share(1e6)
    assert heavy > 0.01  # P(|t3| > 4) ~ 0.028 (single jumps dominate)
    assert light < 0.005  # P(|N| > 4) ~ 6e-5, plus rare double jumps
    # Cauchy-like tails with a huge scale: every jump is clipped, prices stay finite.
    p = gbm_jump_path(1.0, 500, rng(9), sigma=0.0, jump_rate=1.0, jump_scale=1e6, jump_tail=0.5)
    assert np.all(np.isfinite(p)) and np.all(p > 0)
    r = np.diff(np.log(p[:, 0]))
    assert np.max(np.abs(r)) <= 6 * JUMP_LOG_CLIP  # a step of a few clipped jumps at most


def test_gbm_extreme_drift_stays_finite_and_positive():
    up = gbm_jump_path(1.0, 100, rng(), mu=100.0, sigma=0.0, jump_rate=0.0)
    down = gbm_jump_path(1.0, 100, rng(), mu=-100.0, sigma=0.0, jump_rate=0.0)
    for p in (up, down):
        assert np.all(np.isfinite(p)) and np.all(p > 0)


def test_gbm_correlation_of_returns():
    corr = [[1.0, 0.8, -0.3], [0.8, 1.0, 0.0], [-0.3, 0.0, 1.0]]
    p = gbm_jump_path(1.0, 20_000, rng(2), sigma=0.01, jump_rate=0.0, corr=corr)
    assert p.shape == (20_001, 3)  # K taken from corr when s0 is a number
    c = np.corrcoef(np.diff(np.log(p), axis=0).T)
    np.testing.assert_allclose(c, corr, atol=0.03)


def test_gbm_singular_corr_gives_identical_diffusion():
    # All-ones correlation is PSD but not positive definite: handled, markets move together.
    p = gbm_jump_path([2.0, 2.0], 50, rng(4), sigma=0.05, jump_rate=0.0, corr=np.ones((2, 2)))
    np.testing.assert_allclose(p[:, 0], p[:, 1], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# crash_path
# --------------------------------------------------------------------------------------------


def test_crash_hand_numbers():
    p = crash_path(100.0, 6, drop=0.36, start=1, duration=2)
    # linear in log: halfway through the fall the price is 100 * sqrt(0.64) = 80
    np.testing.assert_allclose(p[:, 0], [100, 100, 80, 64, 64, 64, 64], rtol=1e-13)
    assert p[3, 0] == 100.0 * (1 - 0.36)  # exactly the bottom at start + duration
    assert p.shape == (7, 1)


def test_crash_bottom_exact_per_market_drop():
    s0 = np.array([100.0, 40.0])
    drop = np.array([0.3, 0.5])
    p = crash_path(s0, 10, drop=drop, start=2, duration=3)
    assert np.array_equal(p[5], s0 * (1 - drop))
    assert np.array_equal(p[:3], np.tile(s0, (3, 1)))
    assert np.array_equal(p[10], s0 * (1 - drop))
    # falling strictly during the window
    assert np.all(np.diff(p[2:6], axis=0) < 0)


def test_crash_rebound_hand_numbers():
    p = crash_path(100.0, 10, drop=0.3, start=2, duration=3, rebound=0.5)
    assert p[5, 0] == 100.0 * (1 - 0.3)
    # wins back half the $30 fall, in price, over the next 3 steps
    assert p[8, 0] == pytest.approx(85.0, rel=1e-14)
    assert np.all(p[8:, 0] == p[8, 0])
    # linear in log on the way up: geometric midpoint steps
    ratio = (85.0 / 70.0) ** (1 / 3)
    np.testing.assert_allclose(p[6:9, 0], 70.0 * ratio ** np.arange(1, 4), rtol=1e-13)
    full = crash_path(100.0, 4, drop=0.3, start=0, duration=2, rebound=1.0)
    np.testing.assert_allclose(
        full[:, 0], [100.0, 100 * math.sqrt(0.7), 70.0, 100 * math.sqrt(0.7), 100.0], rtol=1e-13
    )


def test_crash_correlation_one_gives_identical_drops():
    s0 = np.array([100.0, 3.0, 0.5])
    p = crash_path(s0, 5, drop=0.4, start=1, duration=2, correlation=1.0)
    rel = p / s0
    np.testing.assert_allclose(rel, np.tile(rel[:, :1], (1, 3)), rtol=1e-14)
    np.testing.assert_allclose(p[3], s0 * 0.6, rtol=1e-15)


def test_crash_partial_correlation_draws_uniform_from_rng():
    s0 = np.array([100.0, 50.0, 10.0, 1.0])
    p = crash_path(s0, 4, drop=0.5, start=0, duration=2, correlation=0.25, rng=rng(8))
    u = rng(8).random(4)
    d = 0.5 * (0.25 + 0.75 * u)
    np.testing.assert_allclose(p[2], s0 * (1 - d), rtol=1e-15)
    assert np.all(d >= 0.125) and np.all(d < 0.5)
    assert len(set(np.round(p[2] / s0, 12))) == 4  # different falls
    # same seed, same path; different seed, different path
    again = crash_path(s0, 4, drop=0.5, start=0, duration=2, correlation=0.25, rng=rng(8))
    other = crash_path(s0, 4, drop=0.5, start=0, duration=2, correlation=0.25, rng=rng(9))
    assert np.array_equal(p, again)
    assert not np.allclose(p, other)


def test_crash_single_market_ignores_correlation_and_needs_no_rng():
    p = crash_path(100.0, 2, drop=0.2, correlation=0.0)
    assert p[1, 0] == 100.0 * 0.8


def test_crash_noise_is_log_gaussian_around_script():
    base = crash_path(100.0, 8, drop=0.3, start=2, duration=3)
    noisy = crash_path(100.0, 8, drop=0.3, start=2, duration=3, noise=0.01, rng=rng(6))
    eps = rng(6).standard_normal((8, 1))
    np.testing.assert_allclose(noisy[1:], base[1:] * np.exp(0.01 * eps), rtol=1e-12)
    assert noisy[0, 0] == 100.0
    assert np.array_equal(
        noisy, crash_path(100.0, 8, drop=0.3, start=2, duration=3, noise=0.01, rng=rng(6))
    )
    assert not np.allclose(
        noisy, crash_path(100.0, 8, drop=0.3, start=2, duration=3, noise=0.01, rng=rng(7))
    )


@settings(max_examples=60, deadline=None)
@given(
    s0=st.lists(st.floats(1e-6, 1e9), min_size=1, max_size=4),
    drop=st.floats(1e-6, 1 - 1e-6),
    start=st.integers(0, 5),
    duration=st.integers(1, 5),
    extra=st.integers(0, 5),
    rebound=st.floats(0.0, 1.0),
    correlation=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_crash_properties(s0, drop, start, duration, extra, rebound, correlation, seed):
    steps = start + 2 * duration + extra
    p = crash_path(
        np.array(s0),
        steps,
        drop=drop,
        start=start,
        duration=duration,
        rebound=rebound,
        correlation=correlation,
        rng=rng(seed),
    )
    s0a = np.array(s0)
    assert p.shape == (steps + 1, len(s0))
    assert np.all(np.isfinite(p)) and np.all(p > 0)
    assert np.array_equal(p[0], s0a)
    bottom = p[start + duration]
    assert np.all(bottom <= s0a) and np.all(bottom >= s0a * (1 - drop) * (1 - 1e-12))
    assert np.all(p.min(axis=0) >= bottom * (1 - 1e-12))  # the bottom is the low
    assert np.all(p[-1] <= s0a * (1 + 1e-12))  # a rebound never overshoots the start


# --------------------------------------------------------------------------------------------
# replay_path and PricePath
# --------------------------------------------------------------------------------------------


def test_replay_1d_and_2d():
    one = replay_path([1, 2, 3])
    assert one.shape == (3, 1) and one.dtype == np.float64
    src = np.array([[1.0, 2.0], [1.5, 2.5]])
    two = replay_path(src)
    assert np.array_equal(two, src)
    two[0, 0] = 99.0
    assert src[0, 0] == 1.0  # a copy, not a view


def test_pricepath_properties_and_returns():
    marks = np.array([[100.0, 10.0], [110.0, 5.0], [99.0, 10.0]])
    pp = PricePath(marks, "replay")
    assert pp.steps == 2 and pp.markets == 2
    np.testing.assert_allclose(
        pp.returns(),
        [[math.log(1.1), math.log(0.5)], [math.log(0.9), math.log(2.0)]],
        rtol=1e-14,
    )
    assert not pp.marks.flags.writeable
    marks[0, 0] = 1.0
    assert pp.marks[0, 0] == 100.0  # the path holds its own copy
    with pytest.raises(AttributeError):
        pp.kind = "gbm"  # type: ignore[misc]


def test_from_spec_each_kind():
    g = PricePath.from_spec({"kind": "gbm", "s0": [1.0, 2.0], "steps": 10, "sigma": 0.1}, rng(1))
    assert g.kind == "gbm" and g.steps == 10 and g.markets == 2
    assert g.params == {"s0": [1.0, 2.0], "steps": 10, "sigma": 0.1}
    assert np.array_equal(g.marks, gbm_jump_path([1.0, 2.0], 10, rng(1), sigma=0.1))

    c = PricePath.from_spec(
        {"kind": "crash", "s0": 100.0, "steps": 10, "drop": 0.3, "start": 2, "duration": 3}
    )
    assert c.kind == "crash" and c.marks[5, 0] == 70.0
    np.testing.assert_allclose(
        np.exp(np.cumsum(c.returns(), axis=0)) * 100.0, c.marks[1:], rtol=1e-13
    )

    r = PricePath.from_spec({"kind": "replay", "prices": [3.0, 2.0, 1.0]})
    assert r.kind == "replay" and r.params == {} and r.marks[:, 0].tolist() == [3.0, 2.0, 1.0]


# --------------------------------------------------------------------------------------------
# validation: every error names its field
# --------------------------------------------------------------------------------------------


def _field(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(info.value.field + ": must be ")
    return info.value.field


def test_crash_drop_message_exact():
    with pytest.raises(InputError) as info:
        crash_path(100.0, 10, drop=1.5)
    assert str(info.value) == "crash.drop: must be in (0, 1) (got 1.5)"


GOOD = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"s0": 0.0}, "gbm.s0"),
        ({"s0": -1.0}, "gbm.s0"),
        ({"s0": float("nan")}, "gbm.s0"),
        ({"s0": float("inf")}, "gbm.s0"),
        ({"s0": [1.0, -2.0]}, "gbm.s0"),
        ({"s0": [[1.0]]}, "gbm.s0"),
        ({"s0": []}, "gbm.s0"),
        ({"s0": "100"}, "gbm.s0"),
        ({"steps": 0}, "gbm.steps"),
        ({"steps": 2.0}, "gbm.steps"),
        ({"steps": True}, "gbm.steps"),
        ({"rng": None}, "gbm.rng"),
        ({"rng": 42}, "gbm.rng"),
        ({"rng": np.random.RandomState(0)}, "gbm.rng"),
        ({"mu": float("nan")}, "gbm.mu"),
        ({"sigma": -0.1}, "gbm.sigma"),
        ({"dt": 0.0}, "gbm.dt"),
        ({"dt": [1.0]}, "gbm.dt"),
        ({"jump_rate": -1.0}, "gbm.jump_rate"),
        ({"jump_scale": -1.0}, "gbm.jump_scale"),
        ({"jump_tail": 0.0}, "gbm.jump_tail"),
        ({"s0": [1.0, 2.0], "sigma": [0.1, 0.2, 0.3]}, "gbm.sigma"),
        ({"s0": [1.0, 2.0], "corr": np.eye(3)}, "gbm.corr"),
        ({"corr": [1.0, 0.0]}, "gbm.corr"),
        ({"corr": [[1.0, 0.5], [0.4, 1.0]]}, "gbm.corr"),  # not symmetric
        ({"corr": [[2.0, 0.0], [0.0, 1.0]]}, "gbm.corr"),  # diagonal not 1
        ({"corr": [[1.0, 1.5], [1.5, 1.0]]}, "gbm.corr"),  # not PSD
        ({"corr": [[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]]}, "gbm.corr"),
        ({"corr": [[1.0, np.nan], [np.nan, 1.0]]}, "gbm.corr"),
    ],
)
def test_gbm_validation(kwargs, field):
    args = {"s0": 1.0, "steps": 5, "rng": GOOD, **kwargs}
    assert _field(gbm_jump_path, **args) == field


def test_gbm_bad_corr_message_names_psd():
    with pytest.raises(InputError, match=r"^gbm\.corr: must be positive semi-definite"):
        gbm_jump_path(1.0, 5, rng(), corr=[[1.0, 1.5], [1.5, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"s0": 0.0}, "crash.s0"),
        ({"s0": [1.0, np.inf]}, "crash.s0"),
        ({"steps": 0}, "crash.steps"),
        ({"drop": 0.0}, "crash.drop"),
        ({"drop": 1.0}, "crash.drop"),
        ({"drop": [0.2, 1.2]}, "crash.drop"),
        ({"s0": [1.0, 2.0], "drop": [0.1, 0.2, 0.3]}, "crash.drop"),
        ({"start": -1}, "crash.start"),
        ({"start": 1.5}, "crash.start"),
        ({"start": 10}, "crash.start"),  # 10 + 1 > 10 steps
        ({"duration": 0}, "crash.duration"),
        ({"duration": 11}, "crash.duration"),
        ({"rebound": -0.1}, "crash.rebound"),
        ({"rebound": 1.1}, "crash.rebound"),
        ({"rebound": 0.5, "start": 5, "duration": 3}, "crash.rebound"),  # window 5+6 > 10
        ({"correlation": 1.5}, "crash.correlation"),
        ({"correlation": -0.5}, "crash.correlation"),
        ({"noise": -0.1}, "crash.noise"),
        ({"noise": 0.1}, "crash.rng"),  # noise needs an rng
        ({"s0": [1.0, 2.0], "correlation": 0.5}, "crash.rng"),  # dispersion needs an rng
        ({"rng": 7}, "crash.rng"),
    ],
)
def test_crash_validation(kwargs, field):
    args = {"s0": 100.0, "steps": 10, **kwargs}
    assert _field(crash_path, **args) == field


@pytest.mark.parametrize(
    "prices",
    [
        [1.0],  # steps < 1
        [[1.0, 2.0]],
        [],
        [1.0, 0.0],
        [1.0, -2.0],
        [1.0, float("nan")],
        [1.0, float("inf")],
        np.ones((2, 2, 2)),
        np.ones((3, 0)),
        ["a", "b"],
        [[1.0, 2.0], [3.0]],
    ],
)
def test_replay_validation(prices):
    assert _field(replay_path, prices) == "replay.prices"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ([("kind", "gbm")], "spec"),
        ({"s0": 1.0, "steps": 3}, "spec.kind"),
        ({"kind": "brownian", "s0": 1.0, "steps": 3}, "spec.kind"),
        ({"kind": "gbm", "s0": 1.0}, "spec.steps"),
        ({"kind": "crash", "steps": 3}, "spec.s0"),
        ({"kind": "replay"}, "spec.prices"),
        ({"kind": "gbm", "s0": 1.0, "steps": 3, "seed": 1}, "spec.seed"),
        ({"kind": "crash", "s0": 1.0, "steps": 3, "sigma": 0.1}, "spec.sigma"),
        ({"kind": "crash", "s0": 1.0, "steps": 3, "drop": 2.0}, "crash.drop"),
        ({"kind": "replay", "prices": [1.0, -1.0]}, "replay.prices"),
    ],
)
def test_from_spec_validation(spec, field):
    assert _field(PricePath.from_spec, spec, rng()) == field


def test_from_spec_gbm_needs_rng():
    assert _field(PricePath.from_spec, {"kind": "gbm", "s0": 1.0, "steps": 3}) == "gbm.rng"


def test_pricepath_constructor_validation():
    assert _field(PricePath, np.ones((3, 1)), "walk") == "price_path.kind"
    assert _field(PricePath, np.array([1.0, np.nan]), "replay") == "price_path.marks"
    assert _field(PricePath, np.ones(3), "replay", [1, 2]) == "price_path.params"


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 4),
    steps=st.integers(1, 30),
    sigma=st.floats(0.0, 2.0),
    rate=st.floats(0.0, 3.0),
    scale=st.floats(0.0, 2.0),
    tail=st.floats(0.3, 50.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_gbm_properties(k, steps, sigma, rate, scale, tail, seed):
    s0 = np.linspace(1.0, 50.0, k)
    p = gbm_jump_path(
        s0, steps, rng(seed), sigma=sigma, jump_rate=rate, jump_scale=scale, jump_tail=tail
    )
    assert p.shape == (steps + 1, k)
    assert np.all(np.isfinite(p)) and np.all(p > 0)
    assert np.array_equal(p[0], s0)
    assert np.array_equal(
        p,
        gbm_jump_path(
            s0, steps, rng(seed), sigma=sigma, jump_rate=rate, jump_scale=scale, jump_tail=tail
        ),
    )
