"""The argument parsers of `walkcoach`'s history and config commands, apart from the code that runs them.

cli.py builds its whole parser for every command, so the parsers live here with nothing but argparse:
the modules that run the commands (sqlite3, csv, the store, the status file) are imported only when
one of them runs (`walkcoach sim` started ~10 ms sooner without them).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

HISTORY_COMMANDS = ("plan", "history", "report", "replay")


def add_config_commands(subparsers) -> argparse.ArgumentParser:
    """Add `config` and its actions to cli.py's subparsers (same parser class throughout)."""
    config = subparsers.add_parser("config", help="show, get, set or validate the config file")
    actions = config.add_subparsers(dest="config_command", required=True, parser_class=type(config))
    actions.add_parser("show", help="print the effective config as TOML (defaults filled in)")
    get = actions.add_parser("get", help="print one value (or one table)")
    get.add_argument("key", metavar="KEY", help="e.g. lean.threshold_deg")
    set_ = actions.add_parser("set", help="check and write one value, then reload the running service")
    set_.add_argument("key", metavar="KEY", help="e.g. lean.threshold_deg")
    # REMAINDER, so a value starting with "-" (mount.forward -x, a negative number) needs no "--"
    set_.add_argument("value", metavar="VALUE", nargs=argparse.REMAINDER,
                      help='a TOML value; strings need no quotes; "" unsets a pin or date')
    validate = actions.add_parser("validate", help="check a config file: every problem, one per line")
    validate.add_argument("file", metavar="FILE", nargs="?", help="file to check (default: the config in use; - for stdin)")
    return config


def add_history_commands(subparsers) -> None:
    """Add plan, history, report and replay to ``walkcoach``'s subparsers."""
    plan = subparsers.add_parser("plan", help="today's walking cap, why, and walks today against the plan")
    _state_dir_option(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument("--date", type=_date, help="as if today were DATE (YYYY-MM-DD)")

    history = subparsers.add_parser("history", help="one row per session: walk time, steps, cadence, speed, lean, cues, pain")
    _state_dir_option(history)
    history.add_argument("--days", type=_positive_int, default=14, help="the last N days (default 14)")
    output = history.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list")
    output.add_argument("--csv", action="store_true", help="print CSV")

    report = subparsers.add_parser("report", help="one self-contained HTML file: this week, trends, every walk (--png: a PNG)")
    _state_dir_option(report)
    report.add_argument("--out", type=Path, help="the file to write (default walkcoach-report-DATE.html, or .png with --png)")
    report.add_argument("--png", action="store_true", help="a PNG of walk time and gait trends instead (needs matplotlib)")
    report.add_argument("--days", type=_positive_int, default=56, help="the last N days (default 56)")

    replay = subparsers.add_parser("replay", help="run the coach over a recording (walkcoach or plain CSV)")
    replay.add_argument("file", type=Path, help="a `walkcoach run --record` file, or a CSV t,ax,ay,az[,gx,gy,gz]")
    replay.add_argument("--json", action="store_true", help="print one JSON object (the keys of `walkcoach sim --json`)")
    replay.add_argument("--units", choices=("ms2", "g"), default="ms2", help="plain CSV acceleration units (default m/s²)")
    replay.add_argument(
        "--upright", choices=("auto", "first-still"), default="auto",
        help="plain CSV: where the wearer's upright comes from (default auto)",
    )
    replay.add_argument(
        "--rate", type=float, metavar="HZ",
        help="replay at HZ (default: the recording's rate; plain CSV: its own from 50 Hz up to the loop rate, else the loop rate)",
    )
    replay.add_argument("--cap-min", type=float, metavar="MIN", help="walking cap in minutes (default: the recording's, else the plan's)")


def _state_dir_option(parser) -> None:
    parser.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS,  # so `walkcoach --state-dir D plan` holds too
                        help="where the history database is (default from the config)")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value
