"""The ``adlgame`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from market.adl.base import EXECUTIONS
from market.errors import InputError, require
from market.exchange import SHORTFALL_BEARERS


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print a one-line error naming the problem and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1) (got {text!r})") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1) (got {text!r})")
    return value


#: Adds sub-commands of an outer layer (viz) to the sub-parsers action.
ParserExtension = Callable[[Any], None]
#: A sub-command handler: parsed arguments in, exit status out.
Handler = Callable[[argparse.Namespace], int]


def build_parser(extend: ParserExtension | None = None) -> argparse.ArgumentParser:
    """The argument parser of every sub-command.

    ``extend(subparsers)`` may add sub-commands of an outer layer: the ``adlgame`` console
    script (:mod:`viz.cli`) adds ``graph`` and ``dashboard`` this way, so this module never
    imports viz.
    """
    p = _Parser(
        prog="adlgame", description="An agent-based market game for auto-deleveraging research."
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser(
        "crash", help="crash a synthetic exchange once and print the waterfall's figures"
    )
    c.add_argument(
        "--accounts", type=_positive_int, default=100_000, help="trader accounts (default 100000)"
    )
    c.add_argument(
        "--markets", type=_positive_int, default=1, help="markets, cross-margined (default 1)"
    )
    c.add_argument(
        "--drop", type=_fraction, default=0.3, help="fall of the marks, in (0, 1) (default 0.3)"
    )
    c.add_argument(
        "--steps", type=_positive_int, default=10, help="steps the fall takes (default 10)"
    )
    c.add_argument("--seed", type=int, default=1, help="root seed (default 1)")
    c.add_argument(
        "--fund", type=float, default=1e6, help="insurance fund capital, dollars (default 1e6)"
    )
    c.add_argument(
        "--backstop", choices=("fund", "vault", "none"), default="fund", help="backstop kind"
    )
    c.add_argument(
        "--correlation", type=float, default=1.0, help="cross-market correlation of the drop"
    )
    c.add_argument(
        "--positions-tail",
        type=float,
        default=1.5,
        help="Pareto tail of the markets per account (default 1.5; 0: one position each)",
    )
    c.add_argument(
        "--market-zipf",
        type=float,
        default=1.0,
        help="market popularity exponent (default 1; 0: markets equally popular)",
    )
    c.add_argument(
        "--policy", default=None, help="ADL policy name (see `adlgame policies`); none by default"
    )
    c.add_argument(
        "--execution",
        choices=EXECUTIONS,
        default=None,
        help="wave sizing: budget or position (default: the policy's own)",
    )
    c.add_argument(
        "--shortfall",
        choices=SHORTFALL_BEARERS,
        default=None,
        help="who carries what backstop and ADL leave (default: the policy's own, else "
        "written_off: bad debt)",
    )
    c.add_argument("--json", action="store_true", help="print one JSON object")

    r = sub.add_parser("run", help="run the market game once and write its results")
    r.add_argument(
        "--scenario", default=None, help="a TOML file or a built-in name (default: default)"
    )
    r.add_argument("--policy", default=None, help="ADL policy (overrides the scenario)")
    r.add_argument("--severity", default=None, help="severity controller (overrides the scenario)")
    r.add_argument("--seed", type=int, default=1, help="root seed (default 1)")
    r.add_argument(
        "--crises", type=_positive_int, default=None, help="number of crises (overrides)"
    )
    r.add_argument(
        "--traders", type=_positive_int, default=None, help="starting traders (overrides)"
    )
    r.add_argument(
        "--execution",
        choices=EXECUTIONS,
        default=None,
        help="wave sizing: budget or position (overrides the scenario's adl.execution)",
    )
    r.add_argument(
        "--shortfall",
        choices=SHORTFALL_BEARERS,
        default=None,
        help="who carries the uncovered deficit (overrides the scenario's adl.shortfall)",
    )
    r.add_argument("--out", required=True, help="results folder (must be new or empty)")
    r.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    pol = sub.add_parser("policies", help="list the ADL policies, their claims and sources")
    pol.add_argument("--json", action="store_true", help="print JSON")

    ck = sub.add_parser(
        "check", help="run the conformance checker on a policy (FILE.py:Class, module:Class, name)"
    )
    ck.add_argument("policy", help="FILE.py:ClassName, package.module:ClassName or a name")
    ck.add_argument(
        "--examples", type=_positive_int, default=200, help="generated examples (default 200)"
    )
    ck.add_argument(
        "--large-n", type=int, default=100_000, help="rows of the large case (0 skips it)"
    )

    b = sub.add_parser(
        "bench",
        help="benchmarks that print figures (kernels, a 1M-account wave, the game, sweeps)",
    )
    b.add_argument(
        "what",
        nargs="?",
        default="suite",
        choices=("suite", "policies"),
        help="suite: every section below (default); policies: the kernel table alone",
    )
    b.add_argument(
        "--section",
        action="append",
        default=None,
        help="kernels, wave, game, sweep, envs or scaling (repeat or comma-separate; default: "
        "every one but scaling)",
    )
    b.add_argument("--quick", action="store_true", help="small sizes (a smoke check in seconds)")
    b.add_argument(
        "--out", default=None, help="with --section scaling: write scaling.json and its figure"
    )
    b.add_argument(
        "--sizes",
        default="1e3,1e4,1e5,1e6",
        help="`bench policies`: comma-separated N (default 1e3,1e4,1e5,1e6)",
    )
    b.add_argument(
        "--repeat",
        type=_positive_int,
        default=3,
        help="`bench policies`: timing repeats, best kept (default 3)",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument(
        "--profile",
        default=None,
        metavar="game|wave",
        help="print a cProfile table of the game (100k traders x 10 crises) or one wave instead",
    )

    d = sub.add_parser("demo", help="the default scenario under a queue and a smooth rule")
    d.add_argument("--seed", type=int, default=1, help="root seed (default 1)")
    d.add_argument("--traders", type=_positive_int, default=None, help="starting traders")

    a = sub.add_parser("audit", help="gameability audit: paired gaming / honest worlds per seed")
    a.add_argument("--policy", required=True, help="NAME[,NAME...] or all (exact-small excluded)")
    a.add_argument(
        "--actions",
        default=None,
        help="ACTION[,ACTION...] or all (required without --search; with it, default all)",
    )
    a.add_argument("--seeds", type=_positive_int, required=True, help="number of seeds (1..N)")
    a.add_argument("--out", required=True, help="folder for gameability.csv and gameability.md")
    a.add_argument("--json", action="store_true", help="print the rows as JSON, not the table")
    a.add_argument("--workers", type=_positive_int, default=None, help="processes (default: CPUs)")
    a.add_argument("--accounts", type=_positive_int, default=None, help="accounts per world")
    a.add_argument(
        "--search",
        action="store_true",
        help="best-response search (CMA-ES) per policy, beside the scripted actions",
    )
    a.add_argument(
        "--budget", type=_positive_int, default=200, help="--search: strategies per policy"
    )
    a.add_argument(
        "--holdout",
        type=_positive_int,
        default=None,
        help="--search: held-out seeds after the training seeds (default max(8, --seeds))",
    )
    a.add_argument(
        "--moves",
        default="all",
        help="--search: MOVE[,MOVE...] or all, from timing, exit, reset, split, margin",
    )
    a.add_argument(
        "--executor",
        default="local",
        help="--search: local, dask-local or dask://HOST:PORT (evaluations in parallel)",
    )

    e = sub.add_parser("experiment", help="named experiments writing a report (see --list)")
    e.add_argument("name", nargs="?", default=None, help=f"one of {', '.join(EXPERIMENTS)}")
    e.add_argument("--list", action="store_true", help="list the experiments and exit")
    e.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        help="seeds 1..N (default 5, moral-hazard 40; with --quick 3, robustness 8)",
    )
    e.add_argument("--out", default=None, help="results folder (must be new or empty)")
    e.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--quick", action="store_true", help="a small design (robustness, calibrate)")
    e.add_argument(
        "--venues", action="store_true", help="compare: every venue preset on the same crises"
    )
    e.add_argument(
        "--policies",
        default=None,
        help="comma-separated rules to play (names, FILE.py:Class, module:Class; the "
        "baseline is added); default every built-in",
    )
    e.add_argument("--executor", default="local", help="where game runs go (default local)")
    e.add_argument("--workers", type=_positive_int, default=None, help="processes (default: CPUs)")
    e.add_argument(
        "--scale", choices=("default", "tiny"), default="default", help=argparse.SUPPRESS
    )

    sw = sub.add_parser("sweep", help="run a TOML sweep in parallel into a resumable folder")
    sw.add_argument("file", help="the sweep file (see experiments.runs.sweep)")
    sw.add_argument("--out", required=True, help="results folder; rerunning resumes it")
    sw.add_argument("--executor", default="local", help="local, dask-local or dask://HOST:PORT")
    sw.add_argument("--workers", type=_positive_int, default=None, help="processes (default: CPUs)")
    sw.add_argument("--retry-failed", action="store_true", help="rerun runs that failed before")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    ds = sub.add_parser(
        "design",
        help="search a rule's parameters on the trilemma with traders responding (NSGA-II)",
    )
    ds.add_argument("file", nargs="?", default=None, help="the design TOML file")
    ds.add_argument("--example", action="store_true", help="print the example specification")
    ds.add_argument("--out", default=None, help="results folder; rerunning resumes it")
    ds.add_argument("--quick", action="store_true", help="a smaller, faster search (see README)")
    ds.add_argument("--executor", default="local", help="local, dask-local or dask://HOST:PORT")
    ds.add_argument("--workers", type=_positive_int, default=None, help="processes (default: CPUs)")
    ds.add_argument("--json", action="store_true", help="print the outcome as JSON")
    ds.add_argument("--quiet", action="store_true", help="no progress lines")
    if extend is not None:
        extend(sub)
    return p


def _cmd_crash(args: argparse.Namespace) -> int:
    from experiments.studies.crash import CrashConfig, run_crash

    policy = None
    if args.policy:
        from market.adl import get_policy

        _known_policy(args.policy, "--policy")
        policy = get_policy(args.policy)
    cfg = CrashConfig(
        accounts=args.accounts,
        markets=args.markets,
        drop=args.drop,
        steps=args.steps,
        seed=args.seed,
        fund=args.fund,
        backstop=args.backstop,
        correlation=args.correlation,
        positions_tail=args.positions_tail,
        market_zipf=args.market_zipf,
        execution=args.execution,
        shortfall=args.shortfall,
    )
    out = run_crash(cfg, policy)
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(
        f"crash: {cfg.accounts} accounts, {cfg.markets} market(s), "
        f"drop {cfg.drop:.0%} over {cfg.steps} steps, seed {cfg.seed}"
    )
    print(f"  policy               {out['policy'] or '(none: uncovered deficit is bad debt)'}")
    print(f"  accounts liquidated  {out['liquidated']:,}")
    print(f"  deficit              ${out['deficit']:,.2f}")
    print(
        f"  backstop used        ${out['backstop_used']:,.2f}   "
        f"(fund left ${out['fund_left']:,.2f})"
    )
    print(
        f"  ADL needed / raised  ${out['adl_budget']:,.2f} / ${out['adl_raised']:,.2f}   "
        f"({out['execution']} execution)"
    )
    print(f"  overshoot            ${out['overshoot']:,.2f}   undershoot ${out['undershoot']:,.2f}")
    if args.policy:
        print(
            f"  accounts touched     {out['accounts_touched']:,}   "
            f"largest haircut {out['max_haircut_frac']:.1%} of capacity"
        )
    print(f"  residual bad debt    ${out['residual']:,.2f}")
    print(f"  conservation error   {out['conservation_error']:.2e}   (relative; must be < 1e-9)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from experiments.game.scenario import load_scenario
    from experiments.runs.results import check_out_dir, run_game
    from market.adl import SEVERITIES

    scenario = load_scenario(args.scenario)
    overrides = {}
    if args.crises is not None:
        overrides["run.crises"] = args.crises
    if args.traders is not None:
        overrides["run.traders"] = args.traders
    if args.execution is not None:
        overrides["adl.execution"] = args.execution
    if args.shortfall is not None:
        overrides["adl.shortfall"] = args.shortfall
    if overrides:
        scenario = scenario.replace(**overrides)
    if args.policy is not None:
        _known_policy(args.policy, "--policy")
    if args.severity is not None and args.severity not in SEVERITIES:
        raise InputError("--severity", f"one of {', '.join(SEVERITIES)}", args.severity)
    out = check_out_dir(args.out, args.force)
    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(
            total=1,
            unit="step",
            desc=f"adlgame run {args.policy or scenario.adl.policy}",
            file=sys.stderr,
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        summary = run_game(
            scenario,
            seed=args.seed,
            policy=args.policy,
            severity=args.severity,
            out=out,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    keys = (
        "total_deficit",
        "backstop_used",
        "adl_raised",
        "residual_bad_debt",
        "accounts_touched",
        "traders_active_end",
        "fee_revenue",
    )
    print(json.dumps({k: summary[k] for k in keys}, indent=2))
    print(f"results written to {out}/ (timeseries, agents and adl_events .parquet, summary.json)")
    return 0


def _cmd_policies(args: argparse.Namespace) -> int:
    from market.adl import describe_policies

    rows = describe_policies()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        claims = ", ".join(r["properties"]) or "-"
        print(f"{r['name']:<{width}}  {r['description']}")
        print(f"{'':<{width}}  claims: {claims}; price: {r['price_rule']}; source: {r['source']}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from market.adl import check_adl_policy, get_policy

    report = check_adl_policy(
        get_policy(args.policy),
        max_examples=args.examples,
        large_n=args.large_n,
        raise_on_fail=False,
    )
    print(report)
    return 0 if report.passed else 1


def _known_policy(name: str, flag: str) -> None:
    """Refuse an unknown policy naming ``flag``; warn (one line on stderr) when a plug-in
    fails the conformance checker, and let it play."""
    from market.adl import POLICIES, check_adl_policy, get_policy, policy_class

    try:
        policy_class(name)
    except InputError as exc:
        raise InputError(flag, exc.allowed, name) from None
    if name in POLICIES:
        return  # the suite checks every built-in
    report = check_adl_policy(get_policy(name), max_examples=50, large_n=0, raise_on_fail=False)
    if not report.passed:
        first = report[report.failed[0]]
        print(
            f"warning: {name} fails check_adl_policy ({', '.join(report.failed)}: "
            f"{first.detail[:120]}); played anyway (adlgame check {name} for the report)",
            file=sys.stderr,
        )


def _cmd_bench(args: argparse.Namespace) -> int:
    from experiments.bench import suite as bench

    if args.profile is not None:
        print(bench.profile(args.profile, quick=args.quick))
        return 0
    if args.what == "policies":
        try:
            sizes = [int(float(x)) for x in args.sizes.split(",") if x.strip()]
        except ValueError:
            raise InputError(
                "--sizes", "comma-separated numbers such as 1e3,1e4", args.sizes
            ) from None
        rows = bench.bench_policies(sizes, repeat=args.repeat)
        print(json.dumps(rows, indent=2) if args.json else bench.format_policy_table(rows))
        return 0
    sections: Sequence[str] = bench.DEFAULT_SECTIONS
    if args.section:
        sections = [x.strip() for item in args.section for x in item.split(",") if x.strip()]
    chosen = bench.check_sections(sections)
    progress = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    result = bench.run_benchmarks(chosen, quick=args.quick, progress=progress)
    if args.out is not None and result.get("scaling"):
        import pandas as pd

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "scaling.json").write_text(json.dumps(result["scaling"], indent=1))
        if args.figures is not None:
            ctx = {"experiment": "scaling", "seeds": 1, "seed_list": [1], "scenario": "crash"}
            args.figures("scaling", out, pd.DataFrame(result["scaling"]), pd.DataFrame(), ctx)
    print(json.dumps(result, indent=2) if args.json else bench.format_report(result))
    return 0


#: How the demo names the shortfall bearer of its scenario.
_BEARER_LABELS = {
    "written_off": "bad debt",
    "fund_debt": "fund debt",
    "venue": "paid by the venue",
    "socialised": "socialised",
    "withdrawals": "cut from withdrawals",
}


def _cmd_demo(args: argparse.Namespace) -> int:
    from experiments.game.model import ADLGame
    from experiments.game.scenario import load_scenario
    from experiments.runs.results import RunResult

    scenario = load_scenario()
    if args.traders is not None:
        scenario = scenario.replace(**{"run.traders": args.traders})
    r = scenario.run
    print(
        f"The default scenario: {r.traders:,} traders, {r.crises} crises, seed {args.seed}. "
        "Both runs see the same prices,\ncrises and traders; only the ADL rule differs.\n"
    )
    results = []
    for name in ("hyperliquid", "pro_rata"):
        game = ADLGame(scenario, seed=args.seed, policy=name)
        game.run()
        results.append(RunResult.from_game(game))
    bearer = _BEARER_LABELS[results[0].shortfall_bearer]
    labels = [
        ("deficit after liquidations ($)", "total_deficit", "{:,.0f}"),
        ("paid by the insurance fund ($)", "backstop_used", "{:,.0f}"),
        ("raised from winners by ADL ($)", "adl_raised", "{:,.0f}"),
        ("  of which beyond what was needed ($)", "overshoot", "{:,.0f}"),
        (f"left uncovered: {bearer} ($)", "residual_bad_debt", "{:,.0f}"),
        ("accounts that paid ADL", "accounts_touched", "{:,.0f}"),
        ("largest haircut (% of what it could take)", "max_haircut_capacity_frac", "{:.1%}"),
        ("traders who left after haircuts/losses", "traders_churned", "{:,.0f}"),
        ("traders active at the end", "traders_active_end", "{:,.0f}"),
        ("fee revenue ($)", "fee_revenue", "{:,.0f}"),
    ]
    width = max(len(lab) for lab, _, _ in labels) + 2
    print(f"{'':<{width}}{'hyperliquid (queue)':>22}{'pro_rata (smooth)':>22}")
    for lab, key, fmt in labels:
        cells = [fmt.format(r[key]) for r in results]
        print(f"{lab:<{width}}{cells[0]:>22}{cells[1]:>22}")
    # the same worlds under a convex churn hazard: one more behaviour family, for contrast
    convex = scenario.replace(**{"churn.family": "power"})
    left = []
    for name in ("hyperliquid", "pro_rata"):
        game = ADLGame(convex, seed=args.seed, policy=name)
        game.run()
        left.append(f"{game.churned_total:,}")
    lab = "  ... under a convex churn hazard instead"
    print(f"{lab:<{width}}{left[0]:>22}{left[1]:>22}")
    print(
        "\nA queue closes the liquidated positions against its top-ranked winners, as the "
        "venues do:\nfew accounts pay, some pay all they can, and what they pay can exceed "
        "what was needed.\nPro-rata takes the same share of the need from every winner."
    )
    print(_demo_verdicts(scenario))
    print(
        "Run `adlgame run --out DIR` to keep the full results, and `adlgame policies` for "
        "every rule."
    )
    return 0


def _demo_verdicts(scenario: Any) -> str:
    """What the demo's behavioural rows depend on: the packaged robustness verdicts."""
    from experiments.studies.verdict_book import (
        METRIC_WORDS,
        direction,
        packaged_verdicts,
        verdict_for,
        verdict_phrase,
    )

    _, meta = packaged_verdicts()
    rows = [
        (m, verdict_for("hyperliquid", m, scenario))
        for m in ("retention", "fee_revenue", "ltv_lost_per_deficit_dollar")
    ]
    if any(v is None for _, v in rows):
        return (
            "\nWho leaves, who enters and who imitates whom are assumptions; this scenario has "
            "not been\nscreened across them: `adlgame experiment robustness --out DIR` gives "
            "verdicts."
        )
    lines = [
        "\nWho leaves, who enters and who imitates whom are assumptions (agents/churn.py, "
        "agents/population.py).",
        f"Verdicts of hyperliquid against pro_rata across them ({meta['cells']} cells of "
        f"`{meta['command']}`, seeds {meta['seeds']}):",
    ]
    for m, v in rows:
        assert v is not None
        lines.append(
            f"  {METRIC_WORDS[m]:<28} hyperliquid {direction(v)} pro_rata: "
            f"{verdict_phrase(v, meta['cells'])}"
        )
    return "\n".join(lines)


def _cmd_audit(args: argparse.Namespace) -> int:
    from experiments.studies import audit as au
    from market.adl import POLICIES
    from market.adl.plugins import entry_point_policies, is_plugin_spec

    named = [t.strip() for t in str(args.policy).split(",")]
    allowed = [*POLICIES, *entry_point_policies(), *(n for n in named if is_plugin_spec(n))]
    policies = au.parse_names(args.policy, allowed, "--policy", au.default_policies())
    for p in policies:
        _known_policy(p, "--policy")
    if args.actions is None and not args.search:
        raise InputError("--actions", "ACTION[,ACTION...] or all (required without --search)")
    actions = au.parse_names(args.actions or "all", au.ACTION_NAMES, "--actions", au.ACTION_NAMES)
    if args.accounts is not None and args.accounts < 10:
        raise InputError("--accounts", "an integer >= 10", args.accounts)
    cfg = au.AuditConfig() if args.accounts is None else au.AuditConfig(accounts=args.accounts)
    if args.search:
        return _audit_search(args, cfg, policies, actions)
    result = au.run_audit(cfg, policies, actions, args.seeds, workers=args.workers)
    paths = au.write_report(result, args.out)
    if args.json:
        clean = [
            {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for r in result.rows
        ]
        print(json.dumps(clean, indent=2))
    else:
        print(au.format_markdown(result))
        print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _audit_search(
    args: argparse.Namespace, cfg: Any, policies: list[str], actions: list[str]
) -> int:
    """``adlgame audit --search``: the best-response search beside the scripted audit."""
    from experiments.runs.runner import parse_executor
    from experiments.studies import audit as au
    from experiments.studies.audit import search as se
    from experiments.studies.audit import search_report as sr

    parse_executor(args.executor)
    moves = au.parse_names(args.moves, list(se.MOVES), "--moves", list(se.MOVES))
    holdout = args.holdout if args.holdout is not None else max(8, args.seeds)
    search = se.SearchConfig(
        budget=args.budget, seeds=args.seeds, holdout=holdout, moves=tuple(moves)
    )

    def progress(policy: str, done: int, best: float) -> None:
        if not args.json:
            print(
                f"  {policy}: {done}/{search.budget} strategies, best {best:+.3f}",
                file=sys.stderr,
                flush=True,
            )

    result = se.run_search(
        cfg, search, policies, executor=args.executor, workers=args.workers, progress=progress
    )
    held_cfg = dataclasses.replace(cfg, first_seed=cfg.first_seed + search.seeds)
    scripted = au.run_audit(held_cfg, policies, actions, holdout, workers=args.workers)
    paths = sr.write_search_report(result, scripted, args.out)
    if args.figures is not None:
        ctx = {
            "experiment": "search",
            "seeds": holdout,
            "seed_list": held_cfg.seeds(holdout),
            "scenario": "audit",
            "policies": policies,
        }
        args.figures(
            "search", Path(args.out), sr.curves(result), sr.side_by_side(result, scripted), ctx
        )
    if args.json:
        print(json.dumps(sr.json_rows(result, scripted), indent=2))
    else:
        print(sr.format_search_markdown(result, scripted))
        print("written: " + ", ".join(str(p) for p in paths))
    return 0


#: ``adlgame experiment NAME``: the names of the catalogue's CATALOGUE, in listing order.
EXPERIMENTS = (
    "compare",
    "audit",
    "moral-hazard",
    "attrition",
    "frontier",
    "bounds",
    "robustness",
    "calibrate",
    "oct10",
)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from experiments.runs.results import check_out_dir
    from experiments.studies import catalogue

    if args.list:
        print("\n".join(catalogue.list_lines()))
        return 0
    exp = catalogue.get_experiment(args.name)
    if args.quick:
        if "quick" not in {f.name for f in dataclasses.fields(exp)}:
            raise InputError("--quick", "only with an experiment that has a quick design", exp.name)
        exp = dataclasses.replace(exp, quick=True)
    if args.policies is not None:
        if not exp.game:
            raise InputError("--policies", "only with a game experiment", exp.name)
        names = [t.strip() for t in args.policies.split(",") if t.strip()]
        if not names:
            raise InputError("--policies", "comma-separated policy names", args.policies)
        for name in names:
            _known_policy(name, "--policies")
        if exp.baseline and exp.baseline not in names:
            names.append(exp.baseline)
        exp = dataclasses.replace(exp, policies=tuple(dict.fromkeys(names)))
    if args.venues:
        if "venues" not in {f.name for f in dataclasses.fields(exp)}:
            raise InputError("--venues", "only with the compare experiment", exp.name)
        exp = dataclasses.replace(exp, venues=True)
    if args.out is None:
        raise InputError("--out", "a results folder (new or empty)")
    out = check_out_dir(args.out, args.force)
    from experiments.runs.runner import Interrupted

    try:
        summary = catalogue.run_experiment(
            exp,
            args.seeds or (exp.quick_seeds if args.quick else exp.default_seeds),
            out,
            executor=args.executor,
            workers=args.workers,
            quiet=args.quiet,
            scale=args.scale,
            **({"figures": args.figures} if args.figures is not None else {}),
        )
    except Interrupted as exc:  # finished runs are kept in OUT/runs; --force resumes
        print(f"adlgame experiment: {exc} (with --force)", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary.attrs["info"], indent=2))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from experiments.runs.runner import Interrupted
    from experiments.runs.sweep import run_sweep

    try:
        res = run_sweep(
            args.file,
            args.out,
            executor=args.executor,
            workers=args.workers,
            quiet=args.quiet,
            retry_failed=args.retry_failed,
        )
    except Interrupted as exc:
        print(f"adlgame sweep: {exc}", file=sys.stderr)
        return exc.exit_code
    failed = int((res.rows["status"] != "ok").sum())
    print(f"{len(res.rows)} runs ({failed} failed) in {args.out}/ (pandas.read_parquet loads it)")
    print(f"summary: {res.summary_path}  report: {res.report_path}")
    return 0


def _cmd_design(args: argparse.Namespace) -> int:
    from experiments.runs.runner import Interrupted
    from experiments.studies.design import (
        example_text,
        format_report,
        load_design,
        run_design,
        summary,
        write_design,
    )

    if args.example:
        print(example_text(), end="")
        return 0
    require(args.file is not None, "file", "a design TOML file (or --example)", None)
    require(args.out is not None, "--out", "a results folder", None)
    spec = load_design(args.file)
    say = None if args.quiet or args.json else (lambda msg: print(msg, file=sys.stderr))
    try:
        result = run_design(
            spec,
            args.out,
            executor=args.executor,
            workers=args.workers,
            quick=args.quick,
            progress=say,
        )
    except Interrupted as exc:
        print(f"adlgame design: {exc}", file=sys.stderr)
        return exc.exit_code
    paths = write_design(result, args.out, figures=args.figures)
    if args.json:
        print(json.dumps(summary(result), sort_keys=True, default=str))
        return 0
    report = format_report(result)
    start = report.index("## The recommended rule")
    print(report[start : report.index("## The front")].rstrip())
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    extend: ParserExtension | None = None,
    commands: Mapping[str, Handler] | None = None,
    figures: Any = None,
) -> int:
    """Run one ``adlgame`` sub-command; returns the exit status.

    ``extend`` and ``commands`` add sub-commands (see :func:`build_parser`); ``figures`` is a
    :data:`experiments.studies.report.FigureWriter` that experiment reports call to draw their
    figures (None: reports without figures).  The console script is :func:`viz.cli.main`,
    which passes all three; ``python -m experiments.cli`` runs without them.
    """
    parser = build_parser(extend)
    args = parser.parse_args(argv)
    args.figures = figures
    handlers: dict[str, Handler] = {
        "crash": _cmd_crash,
        "run": _cmd_run,
        "policies": _cmd_policies,
        "check": _cmd_check,
        "bench": _cmd_bench,
        "demo": _cmd_demo,
        "audit": _cmd_audit,
        "experiment": _cmd_experiment,
        "sweep": _cmd_sweep,
        "design": _cmd_design,
        **(commands or {}),
    }
    try:
        return handlers[args.command](args)
    except InputError as exc:
        print(f"adlgame {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
