"""A user's own rule, from a file, a module or an installed package, played end to end."""

from __future__ import annotations

import json
import re
from importlib.metadata import EntryPoint
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import main
from market.adl import describe_policies, get_policy, policy_class
from market.errors import InputError

README = Path(__file__).resolve().parents[2] / "README.md"

BAD_RULE = '''
import numpy as np
from market.adl import ADLPolicy


class Greedy(ADLPolicy):
    """Takes everything from the first row, whatever the budget: breaks the budget bound."""

    name = "greedy"
    description = "a broken rule"

    def __init__(self):
        pass

    def allocate_wealth(self, snap, budget):
        h = np.zeros(snap.n)
        if snap.n:
            h[0] = snap.capacity[0]
        return h
'''


@pytest.fixture
def readme_rule(tmp_path, monkeypatch) -> str:
    """The README's custom-policy example, written to my_rule.py in the working directory."""
    text = README.read_text()
    section = text[text.index("### Writing your own policy") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = "\n".join(ln for ln in code.splitlines() if not ln.startswith("print("))
    (tmp_path / "my_rule.py").write_text(code + "\n")
    monkeypatch.chdir(tmp_path)
    return "my_rule.py:SquareRootProRata"


def test_the_readme_rule_is_checked_and_played_through_the_cli(readme_rule, tmp_path, capsys):
    assert main(["check", readme_rule, "--examples", "40", "--large-n", "2000"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    out = tmp_path / "run"
    argv = ["run", "--policy", readme_rule, "--traders", "300", "--crises", "2", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"] == readme_rule and summary["adl_raised"] > 0


def test_a_rule_that_fails_the_checker_plays_with_a_one_line_warning(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.py").write_text(BAD_RULE)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "bad.py:Greedy", "--examples", "30", "--large-n", "0"]) == 1
    assert "FAIL" in capsys.readouterr().out
    argv = [
        "run",
        "--policy",
        "bad.py:Greedy",
        "--traders",
        "300",
        "--crises",
        "1",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    warning = [ln for ln in err if ln.startswith("warning:")]
    assert len(warning) == 1 and "bad.py:Greedy fails check_adl_policy (" in warning[0]


def test_module_class_names_and_bad_names(tmp_path):
    assert policy_class("market.adl.queues:BitmexQueue").name == "bitmex"
    for bad, needle in [
        ("nowhere.py:X", "an existing Python file"),
        ("no.such.module:X", "an importable module"),
        ("market.adl.queues:quantile_indicator", "a subclass of market.adl.ADLPolicy"),
        ("nonsense", "FILE.py:Class"),
    ]:
        with pytest.raises(InputError, match=re.escape(needle)):
            get_policy(bad)


def test_a_bad_policy_on_the_command_line_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--policy", "nowhere.py:X", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--policy" in err and not out.exists()


def test_installed_entry_points_are_listed_and_playable(monkeypatch):
    fake = [EntryPoint("my_bitmex", "market.adl.queues:BitmexQueue", "adlgame.policies")]
    monkeypatch.setattr("market.adl.plugins.entry_points", lambda group: fake)
    rows = {r["name"]: r for r in describe_policies()}
    assert rows["my_bitmex"]["origin"] == "entry point market.adl.queues:BitmexQueue"
    assert get_policy("my_bitmex").name == "bitmex"


def test_an_experiment_plays_a_file_rule_in_worker_processes(readme_rule, tmp_path):
    from experiments.studies import catalogue as cat
    from experiments.studies.compare import Compare

    exp = Compare(policies=(readme_rule, "pro_rata"))
    cat.run_experiment(exp, 2, tmp_path / "c", workers=2, quiet=True, scale="tiny")
    rows = pd.read_parquet(tmp_path / "c" / "runs.parquet")
    assert set(rows["policy"]) == {readme_rule, "pro_rata"} and (rows["status"] == "ok").all()


def test_a_sweep_file_plays_a_file_rule(readme_rule, tmp_path):
    from experiments.runs.sweep import load_sweep

    toml = tmp_path / "s.toml"
    toml.write_text(
        f'scenario = "default"\npolicies = ["{readme_rule}", "pro_rata"]\nseeds = 1\n'
        'design = "factorial"\n[overrides]\n"run.traders" = 200\n"run.crises" = 1\n'
        '[parameters]\n"crisis.drop_median" = [0.1]\n'
    )
    sweep = load_sweep(toml)
    assert readme_rule in sweep.policies
    bad = tmp_path / "b.toml"
    bad.write_text(toml.read_text().replace(readme_rule, "gone.py:X"))
    with pytest.raises(InputError, match=r"sweep\.policies"):
        load_sweep(bad)


def test_experiment_policies_flag_plays_a_file_rule_beside_the_baseline(
    readme_rule, tmp_path, capsys
):
    out = tmp_path / "c"
    argv = [
        "experiment",
        "compare",
        "--policies",
        readme_rule,
        "--seeds",
        "1",
        "--scale",
        "tiny",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    rows = pd.read_parquet(out / "runs.parquet")
    assert list(dict.fromkeys(rows["policy"])) == [readme_rule, "pro_rata"]
    assert (
        main(["experiment", "bounds", "--policies", "pro_rata", "--out", str(tmp_path / "b")]) == 2
    )
    assert "--policies" in capsys.readouterr().err
