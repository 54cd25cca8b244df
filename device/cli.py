"""`walkcoach`: the command line. Bad input gets one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import hal
from hal.errors import WalkcoachError
from hal.mount import Mount

from .config import load_config
from .config_cli import add_config_commands, run_config_command
from .history import COMMANDS as HISTORY_COMMANDS
from .history import add_history_commands, run_history_command
from .runner import run_simulation
from .settings import DeviceSettings
from .summary import format_human

log = logging.getLogger("walkcoach")


class UsageError(WalkcoachError, ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="walkcoach", description="Belt-worn walking coach for low back pain.")
    parser.add_argument("--config", type=Path, help="config file (TOML)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = commands.add_parser("sim", help="run the coach on a simulated walk")
    _add_sim_options(sim)
    sim.add_argument("--list", action="store_true", help="list the scenarios and exit")

    run = commands.add_parser("run", help="run the coach on the belt (or the simulated belt)")
    run.add_argument("--backend", choices=("pi", "sim"), default="pi")
    _add_sim_options(run)
    run.add_argument("--stats", action="store_true", help="print I2C transactions and bytes per tick")
    run.add_argument("--service", action="store_true", help="run as the long-running service (systemd): signals, reload, status file, sd_notify")
    run.add_argument("--record", type=Path, help="record every sample to FILE (walkcoach recording v1)")
    run.add_argument("--faults", type=Path, metavar="FILE.toml", help="with --backend sim: inject the faults in FILE (see README)")
    status = commands.add_parser("status", help="what the running service is doing (exit 3 if it is not running)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("calibrate", help="ask the running service to capture the upright reference now")

    add_config_commands(commands)
    add_history_commands(commands)  # plan, history, report, replay

    evaluate = commands.add_parser("evaluate", help="replay a recording and score it against a reference (Mobilise-D figures)")
    evaluate.add_argument("recording", type=Path, help="a recording (walkcoach or plain CSV), as for replay")
    evaluate.add_argument("reference", type=Path, help="the reference JSON (bouts, ics_s; see tests/data/real/README.md)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--units", choices=("ms2", "g"), default="ms2", help="plain CSV acceleration units (default m/s²)")

    bench = commands.add_parser("bench", help="measure what the belt costs on this machine")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", help="simulated scenario (see `walkcoach sim --list`)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the simulated walker")
    parser.add_argument("--speed", choices=("max", "realtime"), default="max")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--mount", help="sensor mount as FORWARD,UP axes, e.g. -y,+x (default from config)")


def _mount(args, settings: DeviceSettings) -> Mount:
    if not args.mount:
        return Mount(settings.mount.forward, settings.mount.up)
    parts = args.mount.split(",")
    if len(parts) != 2:
        raise UsageError(f"--mount takes FORWARD,UP such as -y,+x, not {args.mount!r}")
    return Mount(parts[0].strip(), parts[1].strip())


def cmd_sim(args, settings: DeviceSettings, *, via_chip: bool = False) -> int:
    sim_module = hal.backend_module("sim")
    if getattr(args, "list", False):
        for name, description in sim_module.list_scenarios():
            print(f"{name:<14} {description}")
        return 0
    scenario = args.scenario or sim_module.default_scenario()
    known = [name for name, _ in sim_module.list_scenarios()]
    if scenario not in known:
        raise UsageError(f"unknown scenario {scenario!r} (choose from {', '.join(known)})")
    faults = _fault_plan(args)
    run = run_simulation(
        settings,
        scenario=scenario,
        seed=args.seed,
        mount=_mount(args, settings),
        speed=args.speed,
        via_chip=via_chip,
        faults=faults,
        on_loop=_report_first_sample if os.environ.get("WALKCOACH_REPORT_FIRST_SAMPLE") else None,
    )
    duration_s = run.walk.duration_s
    i2c = _i2c_per_tick(run.i2c_stats, run.loop.stats.ticks, run.loop.period_s) if run.i2c_stats is not None else None
    if args.json:
        result = run.to_json()
        result.update(scenario=scenario, seed=args.seed, cap_s=run.coach.session.planned_cap_s, speed_x=round(run.speed_x, 1))
        if i2c is not None:
            result["i2c"] = i2c
        if faults is not None:
            result["fault_plan"] = faults.to_json()
            result["faults"] = {
                **run.loop.stats.fault_figures(settings.loop.rate_hz), **run.backend.imu.fault_figures(),
                "sensor_ok_at_end": run.loop.sensor_ok,
            }
        print(json.dumps(result))
        return 0
    truth = run.walk.truth
    print(f"scenario {scenario} (seed {args.seed}), cap {run.coach.session.planned_cap_s / 60:.0f} min")
    print(format_human(run.summary, duration_s))
    print(f"truth: walked {truth.walk_s / 60:.1f} min, {truth.steps} steps, {len(truth.lean_episodes)} sustained lean(s)")
    print(f"simulated {duration_s / 60:.1f} min in {run.elapsed_s:.2f} s ({run.speed_x:.0f}x real time)")
    if faults is not None:
        figures = run.loop.stats.fault_figures(settings.loop.rate_hz)
        print(
            f"faults: {figures['outages']} outage(s), {figures['fault_cues']} fault cue(s), {figures['reinits']} re-init(s), "
            f"{figures['frozen_detections']} frozen, {figures['slow_reads']} slow read(s), "
            f"{figures['samples_lost']} samples lost; sensor {'ok' if run.loop.sensor_ok else 'FAULT'} at the end"
        )
    if i2c is not None and getattr(args, "stats", False):
        print(
            f"I2C per tick: {i2c['transactions_per_tick']:.3f} transactions, {i2c['wire_bytes_per_tick']:.1f} bytes "
            f"on the wire; bus time {i2c['bus_share_10khz']:.0%} of the {run.loop.period_s * 1000:g} ms tick at 10 kHz, "
            f"{i2c['bus_share_100khz']:.1%} at 100 kHz, {i2c['bus_share_400khz']:.1%} at 400 kHz"
        )
    return 0


def _fault_plan(args):
    """``--faults FILE`` (run --backend sim only) as the simulator's FaultPlan, or None."""
    path = getattr(args, "faults", None)
    if path is None:
        return None
    if args.backend != "sim":
        raise UsageError("--faults needs --backend sim")
    return hal.backend_module("sim").load_fault_plan(path)


def _report_first_sample(loop) -> None:
    """For the benchmark: print the monotonic time of the first coached sample to stderr."""

    def on_tick(now_s: float) -> None:
        if loop.stats.samples:
            print(f"first-coached-sample {time.monotonic():.6f}", file=sys.stderr)
            loop.on_tick = None

    loop.on_tick = on_tick


def _i2c_per_tick(stats, ticks: int, tick_s: float) -> dict:
    from hal.i2c import bus_time_s

    ticks = max(1, ticks)
    transactions = stats.transactions / ticks
    wire_bytes = stats.wire_bytes / ticks
    result = {"transactions_per_tick": round(transactions, 4), "wire_bytes_per_tick": round(wire_bytes, 2), "errors": stats.errors}
    for label, hz in (("10khz", 10_000), ("100khz", 100_000), ("400khz", 400_000)):
        result[f"bus_share_{label}"] = round(bus_time_s(wire_bytes, transactions, hz) / tick_s, 4)
    return result


def cmd_run(args, settings: DeviceSettings) -> int:
    return cmd_sim(args, settings, via_chip=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        if args.verbose:
            logging.getLogger().setLevel(logging.DEBUG)
        if args.command == "config":  # before loading, so validate/set work on a broken file
            return run_config_command(args)
        if args.command == "run" and (args.service or args.backend == "pi" or args.record):
            from .service import run_service  # loads the config itself: a bad one means the last good one

            return run_service(
                args.config, backend=args.backend, scenario=args.scenario, seed=args.seed, speed=args.speed, record=args.record,
                faults=_fault_plan(args),
            )
        config = load_config(args.config)
        settings = config.settings
        if args.command in HISTORY_COMMANDS:
            return run_history_command(args, settings, state_dir=config.store.state_dir)
        if args.command == "status":
            from .status import run_status

            return run_status(config.service.runtime_dir, as_json=args.json, out=sys.stdout, err=sys.stderr)
        if args.command == "calibrate":
            from .status import run_calibrate

            return run_calibrate(config.service.runtime_dir, out=sys.stdout, err=sys.stderr)
        if args.command == "sim":
            return cmd_sim(args, settings)
        if args.command == "run":
            return cmd_run(args, settings)
        if args.command == "evaluate":
            from .evaluate import evaluate_recording, format_scores

            scores = evaluate_recording(args.recording, args.reference, settings, units=args.units)
            print(json.dumps(scores) if args.json else format_scores(scores))
            return 0
        if args.command == "bench":
            from .bench import main_bench

            return main_bench(args.json)
        raise UsageError(f"unknown command {args.command}")
    except UsageError as exc:
        message = str(exc)
        print(message if message.startswith("walkcoach") else f"walkcoach: {message}", file=sys.stderr)
        return 2
    except WalkcoachError as exc:
        print(f"walkcoach: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
