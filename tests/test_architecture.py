"""The layers, by folder, and their one-way imports.

    device/core/     pure: the coach and its parts; imports only core, walkcoach.hal.types
                     and the standard library (no numpy, no I/O, clock or threads)
    device/config/   the TOML config: core, hal
    device/shell/    the loop, service, store, status, recording: core, config, hal
    device/offline/  replay, CSV import, frame estimation (numpy): core, config, shell, hal
    device/cli/      the command's pages: any of the above (offline only for offline commands)
    hal/             hardware behind protocols: only hal (the simulator only by name; numpy
                     only inside a function, for whole recordings)
    sim/             the simulator: may use anything; nothing in device/ or hal/ imports it

So core <- config <- shell <- cli, offline beside the shell, and nothing runs back up.
Every import is absolute under the one distribution name ``walkcoach``.
"""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVICE_LAYERS = ("core", "config", "shell", "offline", "cli")
ALLOWED = {
    "core": {"core", "hal_types"},
    "config": {"core", "config", "hal_types", "hal"},
    "shell": {"core", "config", "shell", "hal_types", "hal"},
    "offline": {"core", "config", "shell", "offline", "hal_types", "hal"},
    "cli": {"core", "config", "shell", "offline", "cli", "hal_types", "hal"},
    "hal": {"hal_types", "hal"},
}
HARDWARE_LIBRARIES = {"gpiozero", "smbus2", "adafruit_bno055", "board", "busio"}
FORBIDDEN_IN_CORE = {"time", "threading", "os", "socket", "sqlite3", "logging", "subprocess", "random"}
OUR_OLD_NAMES = {"device", "hal", "sim"}
SOURCE_FOLDERS = ("device", "hal", "sim", "tests", "tools", "walkcoach")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(absolute module name, relative level, inside a function) of every import in the file."""
    names = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            names.extend((alias.name, 0, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names.append((module, node.level, lazy))
            if module == "walkcoach" or module.startswith("walkcoach."):  # from walkcoach.device.core import gait
                names.extend((f"{module}.{alias.name}", 0, lazy) for alias in node.names)
        lazy = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, lazy)

    visit(ast.parse(path.read_text()), False)
    return names


def _layer_of(module: str) -> str | None:
    """The layer of one of our modules (None for a third-party or standard module)."""
    parts = module.split(".")
    if parts[0] != "walkcoach":
        return None
    if len(parts) == 1:
        return "walkcoach"
    if parts[1] == "device":
        return parts[2] if len(parts) > 2 and parts[2] in DEVICE_LAYERS else "device"
    if parts[1] == "hal":
        return "hal_types" if parts[2:3] == ["types"] else "hal"
    return parts[1]


def _folder_layer(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[1] if rel[0] == "device" and len(rel) > 2 else rel[0]


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _violations(path: Path) -> list[str]:
    layer = _folder_layer(path)
    problems = []
    for module, level, lazy in _imports(path):
        top = module.split(".")[0]
        ours = _layer_of(module)
        if level:
            problems.append(f"a relative import ({'.' * level}{module}): write walkcoach.…")
        elif ours is not None and ours not in ALLOWED[layer] and ours != "walkcoach":
            problems.append(f"{module} ({ours}) from {layer}")
        elif top == "sim":
            problems.append(f"{module}: only hal's backend table names the simulator")
        elif layer != "hal" and top in HARDWARE_LIBRARIES:
            problems.append(f"{module}: hardware libraries live behind hal/")
        elif top == "numpy" and layer != "offline" and not (layer == "hal" and lazy):
            problems.append("numpy outside device/offline and hal's whole-recording helpers (the belt never loads it)")
        elif layer == "core" and ours is None and (top not in sys.stdlib_module_names or top in FORBIDDEN_IN_CORE):
            problems.append(f"{module}: the core is pure (standard library without I/O, clock or threads)")
    return problems


def test_every_layer_imports_only_the_layers_below_it():
    found = {str(p.relative_to(ROOT)): _violations(p) for p in _sources("device", "hal")}
    assert {path: bad for path, bad in found.items() if bad} == {}


def test_the_layer_folders_hold_the_modules():
    """A module dropped into device/ itself, or a new folder, would escape the rules above."""
    stray = [p.name for p in (ROOT / "device").glob("*.py") if p.name != "__init__.py"]
    folders = {p.name for p in (ROOT / "device").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert stray == [] and folders == set(DEVICE_LAYERS)
    assert (ROOT / "device" / "core" / "coach.py").exists() and (ROOT / "device" / "shell" / "loop.py").exists()


def test_no_import_of_the_old_bare_names():
    """`device.x`, `hal.x`, `sim.x` import (or patch, or run with -m) the old layout: one name, walkcoach."""
    old_string = re.compile(r"(device|hal|sim)(\.[A-Za-z_0-9]+)+")
    problems = []
    for path in _sources(*SOURCE_FOLDERS):
        for module, level, _ in _imports(path):
            if level == 0 and module.split(".")[0] in OUR_OLD_NAMES:
                problems.append(f"{path.relative_to(ROOT)}: import {module}")
        for node in ast.walk(ast.parse(path.read_text())):  # mock.patch("device.x.y"), importlib, -m device.cli
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and old_string.fullmatch(node.value):
                problems.append(f"{path.relative_to(ROOT)}: the string {node.value!r}")
    assert problems == []


def test_the_distribution_installs_every_package_under_walkcoach():
    """A non-editable `pip install .` takes only the listed packages: a new folder must be listed."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {name: Path(folder) for name, folder in setuptools["package-dir"].items()}
    on_disk = {"walkcoach"}
    for name, folder in mapped.items():
        on_disk |= {".".join([name, *p.parent.relative_to(ROOT / folder).parts]) for p in (ROOT / folder).rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk
    assert set(mapped) == {"walkcoach.device", "walkcoach.hal", "walkcoach.sim"}


def test_the_belts_path_loads_no_numpy_sim_or_offline_code():
    """Everything `walkcoach run --service --backend pi` can load: core, config, shell, the CLI's
    modules and the Pi backend, imported in a fresh interpreter (test_bench checks the running belt)."""
    modules = ["walkcoach.device.cli.cli", "walkcoach.device.cli.config_cli", "walkcoach.hal.pi_backend"]
    modules += [
        f"walkcoach.device.{layer}.{p.stem}"
        for layer in ("core", "config", "shell")
        for p in sorted((ROOT / "device" / layer).glob("*.py"))
        if p.stem not in ("__init__", "__main__")
    ]
    code = (
        f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'numpy' or m.startswith(('walkcoach.sim', 'walkcoach.device.offline'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "[]"
