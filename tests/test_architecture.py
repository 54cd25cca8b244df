"""device/ never imports sim or the hardware libraries: those live behind hal/."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_DEVICE = {"sim", "gpiozero", "smbus2", "adafruit_bno055", "board", "busio"}
PURE_CORE = ["coach.py", "posture.py", "gait.py", "session.py", "events.py", "settings.py", "button.py"]
FORBIDDEN_IN_CORE = {"time", "threading", "os", "socket", "sqlite3", "logging"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_device_does_not_import_sim_or_hardware_libraries():
    for path in (ROOT / "device").rglob("*.py"):
        bad = _imports(path) & FORBIDDEN_IN_DEVICE
        assert not bad, f"{path.name} imports {bad}"


def test_hal_names_sim_only_in_the_backend_table():
    for path in (ROOT / "hal").rglob("*.py"):
        assert "sim" not in _imports(path), path.name


def test_coach_core_is_pure():
    for name in PURE_CORE:
        bad = _imports(ROOT / "device" / name) & FORBIDDEN_IN_CORE
        assert not bad, f"{name} imports {bad}"
