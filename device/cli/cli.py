"""`walkcoach`: the command line. Bad input gets one line on stderr and exit status 2.

Exit statuses (the README's table): 0 done; 1 the command ran and found a problem
(``config validate`` problems, ``calibrate`` not taken, the service failed); 2 usage or
bad input (one line on stderr); 3 ``status``: the service is not running; 4 ``status``: its
file cannot be read; 130 interrupted (Ctrl-C); 141 the reader of our
output went away (``walkcoach history | head``), as for a program killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, NoReturn

from walkcoach import hal
from walkcoach.device.cli.arguments import HISTORY_COMMANDS, add_config_commands, add_history_commands
from walkcoach.device.config.config import Config, ServiceSettings, StoreSettings, config_path, load_config
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.core.summary import format_human
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.errors import ConfigError, WalkcoachError
from walkcoach.hal.mount import Mount

log = logging.getLogger("walkcoach")
# walkcoach's numpy work (sim, replay) is FFTs and (N, 3) @ (3, 3) products: OpenBLAS's worker threads only spin
# beside them (0.1-0.15 s of CPU in generating the default simulated walk, on 2 cores; same results with one
# thread). Set before anything imports numpy; a setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


EX_CONFIG = 78  # sysexits.h; the unit's RestartPreventExitStatus stops the restart loop on it
EX_INTERRUPTED = 130  # 128 + SIGINT
EX_CLOSED_PIPE = 141  # 128 + SIGPIPE
SYSTEM_STATE_DIR = Path("/var/lib/walkcoach")  # created by systemd (StateDirectory=), never by us
SYSTEM_RUNTIME_DIR = Path("/run/walkcoach")  # created by systemd (RuntimeDirectory=), never by us
# Commands an operator needs most when the file on disk is broken: they go on with the defaults
# (and the directories the file names, if it names them readably) and show the file's problems.
TOLERANT_COMMANDS = ("status", "calibrate", "history", "plan", "report", "record")


class UsageError(WalkcoachError, ValueError):
    pass


def _run_hooks(hooks, loop) -> None:
    for hook in hooks:
        hook(loop)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="walkcoach", description="Belt-worn walking coach for low back pain.")
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--config", type=Path, help="config file (TOML)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    for option, dest, text in _DIRECTORY_OPTIONS:
        parser.add_argument(option, dest=dest, type=Path, default=None, help=text)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = commands.add_parser("sim", help="run the coach on a simulated walk")
    _add_sim_options(sim)
    sim.add_argument("--list", action="store_true", help="list the scenarios and exit")

    run = commands.add_parser("run", help="run the coach on the belt (or the simulated belt)")
    run.add_argument("--backend", choices=("pi", "sim"), default="pi")
    _add_sim_options(run)
    run.add_argument("--stats", action="store_true", help="print I2C transactions and bytes per tick")
    run.add_argument("--service", action="store_true",
                     help="run as the long-running service (systemd): signals, reload, status file, sd_notify")
    run.add_argument("--record", type=Path, help="record every sample to FILE (walkcoach recording v1)")
    run.add_argument("--faults", type=Path, metavar="FILE.toml", help="with --backend sim: inject the faults in FILE (see README)")
    status = commands.add_parser("status", help="what the running service is doing (exit 3 if it is not running)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("calibrate", help="ask the running service to capture the upright reference now")
    record = commands.add_parser("record", help="record the belt's samples from the running service (it keeps coaching)")
    record.add_argument("file", type=Path, metavar="FILE", help="where to write the recording (walkcoach recording v1)")
    record.add_argument("--seconds", type=float, default=60.0, help="how long (default 60, at most 3600)")

    add_config_commands(commands)
    add_history_commands(commands)  # plan, history, report, replay

    evaluate = commands.add_parser("evaluate", help="replay a recording and score it against a reference (Mobilise-D figures)")
    evaluate.add_argument("recording", type=Path, help="a recording (walkcoach or plain CSV), as for replay")
    evaluate.add_argument("reference", type=Path, help="the reference JSON (bouts, ics_s; see tests/data/real/README.md)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--units", choices=("ms2", "g"), default="ms2", help="plain CSV acceleration units (default m/s²)")

    bench = commands.add_parser("bench", help="measure what the belt costs on this machine")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    _common_options_everywhere(parser)
    return parser


_DIRECTORY_OPTIONS = (
    ("--state-dir", "state_dir", "the history database's directory (default: the config's, $STATE_DIRECTORY, /var/lib/walkcoach)"),
    ("--runtime-dir", "runtime_dir",
     "the running service's pid and status files (default: the config's, $RUNTIME_DIRECTORY, /run/walkcoach)"),
)


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked: importlib.metadata's lookup cost every command ~0.1 s of start-up."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"walkcoach {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("walkcoach")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _common_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """-v and the directory options also after the subcommand (`walkcoach history -v`); a value
    given there wins, one not given leaves the top-level value alone (SUPPRESS)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in action.choices.values():
            known = sub._option_string_actions
            if "-v" not in known and "--verbose" not in known:
                sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug detail")
            for option, dest, text in _DIRECTORY_OPTIONS:
                if option not in known:
                    sub.add_argument(option, dest=dest, type=Path, default=argparse.SUPPRESS, help=text)
            _common_options_everywhere(sub)


def _add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", help="simulated scenario (see `walkcoach sim --list`)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the simulated walker")
    parser.add_argument("--speed", choices=("max", "realtime"), default="max")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--mount", help="sensor mount as FORWARD,UP axes, e.g. -y,+x (default from config)")
    parser.add_argument("--press", type=_times_s, default=[], metavar="T[,T...]",
                        help="simulated: press the button at these times (s or m:ss): a pain report")
    parser.add_argument("--hold", type=_times_s, default=[], metavar="T[,T...]",
                        help="simulated: hold the button from these times (s or m:ss) past the hold time: calibrate")


def _times_s(text: str) -> list[float]:
    """``30,1:15,2:00.5`` -> [30.0, 75.0, 120.5]."""
    times = []
    for part in text.split(","):
        part = part.strip()
        try:
            minutes, _, seconds = part.rpartition(":")
            value = (int(minutes) * 60 if minutes else 0) + float(seconds)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a time in seconds or m:ss") from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"{part!r} must not be negative")
        times.append(value)
    return times


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
    if not via_chip and args.speed == "max":
        sim_module.keep_freed_memory()  # the walk's arrays reuse freed memory (fewer page faults)
    hooks = []
    if os.environ.get("WALKCOACH_REPORT_FIRST_SAMPLE"):
        hooks.append(_report_first_sample)
    presses = [(t, sim_module.PRESS_S) for t in getattr(args, "press", [])]
    presses += [(t, settings.loop.button_hold_s + 0.5) for t in getattr(args, "hold", [])]
    if presses:
        hooks.append(lambda loop: setattr(loop, "button", sim_module.ScheduledButton(loop.button, loop.clock, presses)))
    live = []
    if args.speed == "realtime" and not args.json and sys.stdout.isatty():
        from walkcoach.device.cli.live import attach_live_view

        hooks.append(lambda loop: live.append(attach_live_view(loop)))
    faults = _fault_plan(args)
    ctrl_c = _CtrlC()
    hooks.append(ctrl_c.install)
    try:
        run = run_simulation(
            settings,
            scenario=scenario,
            seed=args.seed,
            mount=_mount(args, settings),
            speed=args.speed,
            via_chip=via_chip,
            faults=faults,
            on_loop=lambda loop: _run_hooks(hooks, loop),
        )
    finally:
        for view in live:
            view.close()
        ctrl_c.restore()
    duration_s = run.walk.duration_s
    if ctrl_c.pressed:
        duration_s = min(duration_s, run.loop.now_s)
        print(f"interrupted at {duration_s / 60:.1f} min: the summary so far", file=sys.stderr)
    i2c = _i2c_per_tick(run.i2c_stats, run.loop.stats.ticks, run.loop.period_s) if run.i2c_stats is not None else None
    if args.json:
        result = run.to_json()
        result.update(scenario=scenario, seed=args.seed, cap_s=run.coach.session.planned_cap_s, speed_x=round(run.speed_x, 1))
        if i2c is not None:
            result["i2c"] = i2c
        if ctrl_c.pressed:
            result["interrupted_at_s"] = round(duration_s, 2)
        if faults is not None:
            result["fault_plan"] = faults.to_json()
            result["faults"] = {
                **run.loop.stats.fault_figures(settings.loop.rate_hz), **run.backend.imu.fault_figures(),
                "sensor_ok_at_end": run.loop.sensor_ok,
            }
        print(json.dumps(result))
        return EX_INTERRUPTED if ctrl_c.pressed else 0
    truth = run.walk.truth
    print(f"scenario {scenario} (seed {args.seed}), cap {run.coach.session.planned_cap_s / 60:.0f} min")
    print(format_human(run.summary, duration_s))
    print(f"truth{' (the whole scenario)' if ctrl_c.pressed else ''}: walked "
          f"{truth.walk_s / 60:.1f} min, {truth.steps} steps, {len(truth.lean_episodes)} sustained lean(s)")
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
    return EX_INTERRUPTED if ctrl_c.pressed else 0


class _CtrlC:
    """Ctrl-C ends the simulated walk at the current tick (the loop closes the bout in progress),
    so the summary so far is printed instead of a traceback."""

    def __init__(self) -> None:
        self.pressed = False
        self._old: Any = None  # the handler signal.signal returned
        self._installed = False

    def install(self, loop) -> None:
        def on_sigint(signum, frame) -> None:
            self.pressed = True
            loop.request_stop()

        try:
            self._old = signal.signal(signal.SIGINT, on_sigint)
            self._installed = True
        except ValueError:  # not the main thread: leave Ctrl-C alone
            pass

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old)
            self._installed = False


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
    from walkcoach.hal.i2c import bus_time_s

    ticks = max(1, ticks)
    transactions = stats.transactions / ticks
    wire_bytes = stats.wire_bytes / ticks
    result = {"transactions_per_tick": round(transactions, 4), "wire_bytes_per_tick": round(wire_bytes, 2), "errors": stats.errors}
    for label, hz in (("10khz", 10_000), ("100khz", 100_000), ("400khz", 400_000)):
        result[f"bus_share_{label}"] = round(bus_time_s(wire_bytes, transactions, hz) / tick_s, 4)
    return result


def cmd_run(args, settings: DeviceSettings) -> int:
    return cmd_sim(args, settings, via_chip=True)


def _directories(config: Config, args) -> Config:
    """The state and runtime directories every command uses: the flag, else the config file's
    (when it names one), else systemd's $STATE_DIRECTORY / $RUNTIME_DIRECTORY, else the system's."""

    def pick(flag, configured: Path, system: Path, env_names: tuple[str, ...]) -> Path:
        if flag:
            return Path(flag)
        if Path(configured) != system:
            return Path(configured)
        for name in env_names:
            value = os.environ.get(name)
            if value:
                return Path(value.split(":")[0])
        return system

    state_dir = pick(getattr(args, "state_dir", None), config.store.state_dir, SYSTEM_STATE_DIR,
                     ("WALKCOACH_STATE_DIR", "STATE_DIRECTORY"))
    runtime_dir = pick(getattr(args, "runtime_dir", None), config.service.runtime_dir, SYSTEM_RUNTIME_DIR,
                       ("RUNTIME_DIRECTORY",))
    return dataclasses.replace(config, store=StoreSettings(state_dir=state_dir), service=ServiceSettings(runtime_dir=runtime_dir))


def _config_beside_a_broken_file(cli_config) -> Config:
    """The defaults, with the directories the broken file names if they can still be read from it:
    the running service keeps its own config; this is only where to find it and its history."""
    try:
        data = tomllib.loads(config_path(cli_config).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError):
        data = {}
    store: dict = data["store"] if isinstance(data.get("store"), dict) else {}
    service: dict = data["service"] if isinstance(data.get("service"), dict) else {}
    state_dir = store.get("state_dir") if isinstance(store.get("state_dir"), str) and store.get("state_dir") else None
    runtime_dir = service.get("runtime_dir") if isinstance(service.get("runtime_dir"), str) and service.get("runtime_dir") else None
    return Config(
        store=StoreSettings(state_dir=Path(state_dir)) if state_dir else StoreSettings(),
        service=ServiceSettings(runtime_dir=Path(runtime_dir)) if runtime_dir else ServiceSettings(),
    )


def _warn_config_problems(problems: list[str], what: str) -> None:
    print(f"walkcoach: warning: the config file has {len(problems)} problem(s); {what}:", file=sys.stderr)
    for line in problems:
        print(f"  {line}", file=sys.stderr)


def _missing_system_directory(config: Config) -> str | None:
    """The service outside systemd must not create /var/lib/walkcoach or /run/walkcoach behind the owner's back."""
    for directory, unit_key, flag in ((config.store.state_dir, "StateDirectory=", "--state-dir"),
                                      (config.service.runtime_dir, "RuntimeDirectory=", "--runtime-dir")):
        if directory in (SYSTEM_STATE_DIR, SYSTEM_RUNTIME_DIR) and not directory.is_dir():
            return (f"{directory} does not exist: systemd creates it for the service ({unit_key}); "
                    f"outside systemd pass {flag} DIR (a directory of yours, created if missing)")
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe would print "Exception ignored"
        return status
    except BrokenPipeError:  # `walkcoach history | head`: the reader has gone; say nothing more
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        except OSError:
            pass
        return EX_CLOSED_PIPE


def _main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        if args.verbose:
            logging.getLogger().setLevel(logging.DEBUG)
        if args.command == "config":  # before loading, so validate/set work on a broken file
            from walkcoach.device.cli.config_cli import run_config_command

            return run_config_command(args)
        if args.command == "run" and (args.service or args.backend == "pi" or args.record):
            from walkcoach.device.shell.service import run_service  # loads the config itself: a bad one means the last good one

            faults = _fault_plan(args)  # its usage errors first

            def with_directories(config: Config) -> Config:
                config = _directories(config, args)
                missing = _missing_system_directory(config)
                if missing:
                    raise UsageError(missing)
                return config

            watcher = None
            if sys.stdout.isatty() and not args.json and not os.environ.get("JOURNAL_STREAM"):
                from walkcoach.device.cli.live import StatusWatcher  # at a terminal: the live line from the service's status file

                try:
                    where = load_config(args.config)
                except ConfigError:
                    where = _config_beside_a_broken_file(args.config)
                watcher = StatusWatcher(_directories(where, args).service.runtime_dir).start()
            try:
                return run_service(
                    args.config, backend=args.backend, scenario=args.scenario, seed=args.seed, speed=args.speed,
                    record=args.record, faults=faults, adjust_config=with_directories,
                )
            finally:
                if watcher is not None:
                    watcher.stop()
        file_problems: list[str] = []
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            if args.command not in TOLERANT_COMMANDS:
                raise
            file_problems = list(getattr(exc, "problems", None) or [str(exc)])
            config = _config_beside_a_broken_file(args.config)
            if args.command != "status":  # status shows them with what the service runs on
                _warn_config_problems(file_problems, "the running service keeps the config it loaded; "
                                      "this command uses the defaults")
        config = _directories(config, args)
        settings = config.settings
        if args.command in HISTORY_COMMANDS:
            from walkcoach.device.cli.history import run_history_command

            return run_history_command(args, settings, state_dir=config.store.state_dir)
        if args.command == "status":
            from walkcoach.device.shell.status import run_status

            return run_status(config.service.runtime_dir, as_json=args.json, out=sys.stdout, err=sys.stderr,
                              file_problems=file_problems)
        if args.command == "calibrate":
            from walkcoach.device.shell.status import run_calibrate

            return run_calibrate(config.service.runtime_dir, out=sys.stdout, err=sys.stderr)
        if args.command == "record":
            from walkcoach.device.shell.record_request import main_record

            return main_record(config.service.runtime_dir, args.file, args.seconds)
        if args.command == "sim":
            return cmd_sim(args, settings)
        if args.command == "run":
            return cmd_run(args, settings)
        if args.command == "evaluate":
            from walkcoach.device.offline.evaluate import evaluate_recording, format_scores

            scores = evaluate_recording(args.recording, args.reference, settings, units=args.units)
            print(json.dumps(scores) if args.json else format_scores(scores))
            return 0
        if args.command == "bench":
            from walkcoach.device.cli.bench import main_bench

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
        return EX_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
