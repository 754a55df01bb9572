"""One parameter mixin for policies, severity controllers and eligibility."""

from __future__ import annotations

import pytest

from market.adl import Eligibility, get_policy, get_severity
from market.adl.params import Params
from market.errors import InputError


@pytest.mark.parametrize(
    "obj",
    [get_policy("capped_pro_rata"), get_severity("backoff"), Eligibility()],
    ids=["policy", "severity", "eligibility"],
)
def test_every_parameterised_object_uses_the_one_mixin(obj):
    assert isinstance(obj, Params)
    params = obj.get_params(deep=False)
    assert type(obj)(**params).get_params(deep=False) == params
    assert obj.clone() is not obj and obj.clone().get_params() == obj.get_params()
    name = next(iter(params))
    before = obj.get_params()
    with pytest.raises(InputError, match=rf"^{obj.name}\.no_such: must be one of"):
        obj.set_params(**{name: params[name], "no_such": 1})
    assert obj.get_params() == before  # nothing changed before the refusal


def test_a_refused_value_changes_nothing():
    elig = Eligibility()
    before = elig.get_params()
    with pytest.raises(InputError, match=r"^eligibility\.account_fraction"):
        elig.set_params(cap="equity", account_fraction=2.0)
    assert elig.get_params() == before
    assert elig.set_params(cap="equity").cap == "equity"


def test_nested_parameters_are_set_on_a_copy_first():
    hybrid = get_policy("hybrid")
    sen = get_policy("seniority", inner=get_policy("capped_pro_rata"))
    sen.set_params(inner__max_fraction=0.3)
    assert sen.inner.max_fraction == 0.3 and sen.get_params()["inner__max_fraction"] == 0.3
    with pytest.raises(InputError, match=r"^hybrid\.queue: must be a nested parameter object"):
        hybrid.set_params(queue__x=1)  # the queue is given by name here


def test_the_base_allocate_places_lots_within_the_caps_in_the_rules_order():
    import numpy as np

    from market.adl import ADLPolicy, Snapshot, water_fill

    class HalfCapped(ADLPolicy):
        """Pro-rata within half of each capacity; lots placed last row first."""

        name = "half_capped"

        def caps(self, snap):
            return 0.5 * snap.capacity

        def allocate_wealth(self, snap, budget):
            return water_fill(self.caps(snap), budget, weights=snap.capacity)

        def priority(self, snap):
            return np.arange(snap.n)[::-1]

    snap = Snapshot.build([10.0, 10.0, 10.0], lot_value=1.0)
    a = HalfCapped()(snap, 7.0)
    assert np.all(a.haircut <= 5.0) and a.haircut.sum() >= 7.0
    # 7/3 each in wealth space: floors give 2 lots each, the 7th lot goes to the last row first
    assert a.lots.tolist() == [2, 2, 3]
