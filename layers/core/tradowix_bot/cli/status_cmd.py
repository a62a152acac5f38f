"""`status`: what the alarms would say, on this machine or for a deployed stack.

The same figures as the admin panel's health view (GET /api/admin/health): the collector's
status record, the metrics the alarms watch and the alarms' states, from CloudWatch (the local
stack keeps its own, fed and evaluated as AWS does).
"""

from __future__ import annotations

import argparse
import json

from . import target as targets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="health: collector, data per symbol, live posts, API errors, alarms",
        description="Health of the local stack (default) or a deployed one (--stack).",
    )
    p.add_argument(
        "--stack", help="deployed CloudFormation stack name (default: TRADOWIX_STACK, else the local stack)"
    )
    p.add_argument("--json", action="store_true", help="the health view as JSON (the admin panel's shape)")
    p.add_argument("--window", type=int, default=15, help="minutes of figures to sum (default 15)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os

    from tradowix_bot.server import aws, health

    target = targets.resolve(args.stack)
    stack = args.stack or os.environ.get("TRADOWIX_STACK")
    prefix = f"{stack}-" if stack else "tradowix-local-"
    report = health.report(
        aws.client("cloudwatch"),
        target.services().state(),
        alarm_prefix=prefix,
        window_seconds=args.window * 60,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{target.description}")
        print("\n".join(health.summary_lines(report)))
    return 0
