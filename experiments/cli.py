"""The ``adlgame`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from market.errors import InputError


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
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
        "--policy", default=None, help="ADL policy name (see `adlgame policies`); none by default"
    )
    c.add_argument("--json", action="store_true", help="print one JSON object")

    pol = sub.add_parser("policies", help="list the ADL policies, their claims and sources")
    pol.add_argument("--json", action="store_true", help="print JSON")

    b = sub.add_parser("bench", help="benchmarks that print figures")
    b.add_argument(
        "what", nargs="?", default="policies", choices=("policies",), help="which benchmark"
    )
    b.add_argument(
        "--sizes", default="1e3,1e4,1e5,1e6", help="comma-separated N (default 1e3,1e4,1e5,1e6)"
    )
    b.add_argument(
        "--repeat", type=_positive_int, default=3, help="timing repeats, best kept (default 3)"
    )
    b.add_argument("--json", action="store_true", help="print JSON")

    d = sub.add_parser("demo", help="the built-in default job: one crash through several policies")
    d.add_argument(
        "--accounts", type=_positive_int, default=50_000, help="trader accounts (default 50000)"
    )
    d.add_argument("--seed", type=int, default=1, help="root seed (default 1)")
    d.add_argument(
        "--fund", type=float, default=2.5e5, help="insurance fund capital (default 2.5e5)"
    )
    return p


def _cmd_crash(args: argparse.Namespace) -> int:
    from experiments.crash import CrashConfig, run_crash

    policy = None
    if args.policy:
        from market.adl import get_policy

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
    print(f"  ADL raised           ${out['adl_raised']:,.2f}   overshoot ${out['overshoot']:,.2f}")
    if args.policy:
        print(
            f"  accounts touched     {out['accounts_touched']:,}   "
            f"largest haircut {out['max_haircut_frac']:.1%} of capacity"
        )
    print(f"  residual bad debt    ${out['residual']:,.2f}")
    print(f"  conservation error   {out['conservation_error']:.2e}   (relative; must be < 1e-9)")
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


def _cmd_bench(args: argparse.Namespace) -> int:
    from experiments.bench import bench_policies, format_policy_table

    try:
        sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise InputError("--sizes", "comma-separated numbers such as 1e3,1e4", args.sizes) from None
    rows = bench_policies(sizes, repeat=args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_policy_table(rows))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from experiments.crash import CrashConfig, run_crash
    from market.adl import get_policy

    cfg = CrashConfig(accounts=args.accounts, seed=args.seed, fund=args.fund)
    print(
        f"One crash ({cfg.drop:.0%} over {cfg.steps} steps, "
        f"{cfg.accounts:,} traders, seed {cfg.seed}),"
    )
    print("the same accounts and prices each time; only the ADL policy changes.\n")
    head = (
        f"{'policy':<18}{'deficit $':>14}{'backstop $':>14}{'ADL raised $':>15}"
        f"{'touched':>9}{'max cut':>9}{'bad debt $':>13}"
    )
    print(head)
    print("-" * len(head))
    for name in (None, "hyperliquid", "binance", "pro_rata", "capped_pro_rata", "seniority"):
        out = run_crash(cfg, get_policy(name) if name else None)
        print(
            f"{name or '(no ADL)':<18}{out['deficit']:>14,.0f}{out['backstop_used']:>14,.0f}"
            f"{out['adl_raised']:>15,.0f}{out['accounts_touched']:>9,}{out['max_haircut_frac']:>9.1%}"
            f"{out['residual']:>13,.0f}"
        )
    print("\nQueues touch few accounts and take large shares; pro-rata rules spread the same")
    print(
        "budget thinly. 'max cut' is the largest haircut as a share of what the account could give."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adlgame`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "crash": _cmd_crash,
        "policies": _cmd_policies,
        "bench": _cmd_bench,
        "demo": _cmd_demo,
    }
    try:
        return handlers[args.command](args)
    except InputError as exc:
        print(f"adlgame {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
