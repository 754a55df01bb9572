"""Venues as scenarios: the default world with each venue's rule, backstop and fees."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.cli import main
from experiments.game.scenario import load_scenario, to_dict
from experiments.game.venues import VENUES
from experiments.studies import catalogue as cat
from experiments.studies.compare import Compare
from market.errors import InputError


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "params":
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("venue", list(VENUES))
def test_a_venue_changes_only_its_mechanics(venue):
    base = flat(to_dict(load_scenario()))
    sc = flat(to_dict(load_scenario(f"venue:{venue}")))
    changed = {k for k in base if base[k] != sc[k]}
    assert changed <= {
        "name",
        "adl.policy",
        "backstop.kind",
        "backstop.max_drawdown",
        "market.taker_fee",
        "market.maker_fee",
    }
    assert sc["adl.policy"] == VENUES[venue][0]["adl.policy"] and sc["name"] == f"venue:{venue}"


def test_bybit_and_okx_start_adl_before_their_fund_is_empty():
    from experiments.game.model import ADLGame

    for venue in ("bybit", "okx"):
        sc = load_scenario(f"venue:{venue}").replace(**{"run.traders": 600, "run.crises": 2})
        assert sc.backstop.max_drawdown == 0.3
        g = ADLGame(sc, seed=1)
        g.run()
        ts = g.datacollector.get_model_vars_dataframe()
        waves = ts[ts["adl_raised"] > 0]
        assert len(waves) and (waves["fund"] > 0).all()  # ADL ran with money left in the fund


def test_an_unknown_venue_lists_the_known_ones():
    with pytest.raises(InputError, match="bybit"):
        load_scenario("venue:mtgox")


def test_compare_venues_puts_every_venue_side_by_side(tmp_path):
    cat.run_experiment(Compare(venues=True), 1, tmp_path / "v", workers=2, quiet=True, scale="tiny")
    rows = pd.read_parquet(tmp_path / "v" / "runs.parquet")
    assert list(dict.fromkeys(rows["tag.venue"])) == list(VENUES)
    report = (tmp_path / "v" / "report.md").read_text()
    assert "## The venues" in report and "Paired difference against hyperliquid" in report
    for venue in VENUES:
        assert f"**{venue}**" in report


def test_venues_flag_only_with_compare(tmp_path, capsys):
    assert main(["experiment", "audit", "--venues", "--out", str(tmp_path / "x")]) == 2
    assert "--venues" in capsys.readouterr().err
