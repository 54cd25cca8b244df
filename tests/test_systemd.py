"""The systemd side: the unit file, its checker script, the install script and sd_notify."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from walkcoach.device.config import config as cfg
from walkcoach.device.shell.sdnotify import Notifier, watchdog_interval_s

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "walkcoach.service"
CHECK = ROOT / "systemd" / "check-unit.sh"
INSTALL = ROOT / "systemd" / "install.sh"


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """{section: [(key, value), ...]}, keeping repeated keys in order (configparser cannot)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"key outside a section: {raw!r}"
        assert not line.endswith("\\"), "keep unit lines unwrapped so tests and greps see them whole"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for key, value in parse_unit(UNIT.read_text())["Service"]:
        entries.setdefault(key, []).append(value)
    return entries


def one(service, key: str) -> str:
    values = service.get(key, [])
    assert len(values) == 1, f"{key}= appears {len(values)} times"
    return values[0]


def environment(service) -> dict[str, str]:
    env = {}
    for line in service.get("Environment", []):
        for assignment in line.split():
            name, _, value = assignment.partition("=")
            env[name] = value
    return env


# -- the unit -------------------------------------------------------------------------------


def test_unit_is_a_notify_service_with_a_watchdog_and_reload(service):
    assert one(service, "Type") == "notify"  # not notify-reload: Bookworm has systemd 252
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "ExecStart") == "/opt/walkcoach/venv/bin/walkcoach run --backend pi --service"
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert 1 <= int(one(service, "WatchdogSec")) <= 60
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartSec") == "5"


def test_unit_runs_as_walkcoach_with_gpio_and_i2c_groups(service):
    assert one(service, "User") == "walkcoach" and one(service, "Group") == "walkcoach"
    assert set(one(service, "SupplementaryGroups").split()) == {"gpio", "i2c"}
    assert "DynamicUser" not in service


def test_unit_directories_match_the_config_defaults(service):
    assert one(service, "StateDirectory") == "walkcoach"
    assert one(service, "ConfigurationDirectory") == "walkcoach"
    assert one(service, "RuntimeDirectory") == "walkcoach"
    assert cfg.StoreSettings().state_dir == Path("/var/lib") / one(service, "StateDirectory")
    assert cfg.ServiceSettings().runtime_dir == Path("/run") / one(service, "RuntimeDirectory")
    assert cfg.INSTALLED_CONFIG_PATH.parent == Path("/etc") / one(service, "ConfigurationDirectory")


def test_unit_environment(service):
    env = environment(service)
    assert env["LG_WD"] == str(cfg.ServiceSettings().runtime_dir)  # lgpio's pipes go somewhere writable
    assert env["GPIOZERO_PIN_FACTORY"] == "lgpio"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env[cfg.CONFIG_ENV] == str(cfg.INSTALLED_CONFIG_PATH)


def test_unit_reaches_only_i2c_and_gpio_devices(service):
    assert one(service, "DevicePolicy") == "closed"
    assert sorted(service["DeviceAllow"]) == ["char-gpiochip rw", "char-i2c rw"]
    assert service.get("PrivateDevices", ["no"]) == ["no"]  # it would hide /dev/i2c-* and /dev/gpiochip*


def test_unit_sandbox_keeps_what_the_hardware_needs(service):
    # PrivateUsers maps gpio and i2c to "nobody"; ProcSubset=pid hides /proc/device-tree
    # and /proc/cpuinfo, where gpiozero finds the board revision and so the pins.
    assert service.get("PrivateUsers", ["no"]) == ["no"]
    assert service.get("ProcSubset", ["all"]) == ["all"]
    for key, value in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateNetwork", "yes"),
        ("NoNewPrivileges", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX"),  # sd_notify and the journal
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0027"),  # history readable by the group walkcoach (operators), nobody else
    ]:
        assert one(service, key) == value, key


# -- check-unit.sh: systemd-analyze verify and security ------------------------------------------


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "CHECK_UNIT_NO_INSTALL": "1", **(env or {})}
    return subprocess.run([shutil.which("sh") or "/bin/sh", str(CHECK), *args], capture_output=True, text=True, env=full_env, timeout=120)


needs_analyzer = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


@needs_analyzer
def test_unit_verifies_clean_and_exposure_is_at_most_1():
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify walkcoach.service: no warnings" in result.stdout
    exposure = float(re.search(r"security exposure: ([0-9.]+)", result.stdout).group(1))
    assert exposure <= 1.0


@needs_analyzer
@pytest.mark.parametrize(
    "change, words",
    [
        (("ProtectHome=yes", "ProtectHome=yes\nProtectHomme=yes"), "Unknown key"),
        (("PrivateNetwork=yes", "PrivateNetwork=no\nRestrictAddressFamilies=AF_INET"), "exposure"),
    ],
)
def test_check_unit_fails_on_a_warning_or_a_weaker_sandbox(tmp_path, change, words):
    broken = tmp_path / "walkcoach.service"
    broken.write_text(UNIT.read_text().replace(*change))
    result = run_check(str(broken))
    assert result.returncode == 1
    assert words in result.stdout + result.stderr


def test_check_unit_skips_without_systemd_analyze(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "basename", "mktemp", "id", "sed", "grep", "cat"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = run_check(env={"PATH": str(bin_dir)})
    assert result.returncode == 0
    assert "SKIPPED" in result.stdout


def test_shell_scripts_parse():
    for script in (CHECK, INSTALL):
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert os.access(script, os.X_OK), f"{script.name} is not executable"


def test_install_never_overwrites_the_owners_config():
    text = INSTALL.read_text()
    assert 'if [ -e "$CONFIG_DST" ]' in text
    assert "--system-site-packages" in text
    assert "systemctl daemon-reload" in text and "systemctl enable" in text
    assert "--shell /usr/sbin/nologin" in text and "--groups gpio,i2c" in text


# -- sd_notify over a real AF_UNIX datagram socket ------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def receive(sock) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_notifier_sends_each_message_from_the_environment(notify_socket, monkeypatch):
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with Notifier() as notifier:
        assert notifier.enabled
        assert notifier.ready()
        assert receive(sock) == ["READY=1"]
        assert notifier.ready(status="coaching")
        assert receive(sock) == ["READY=1", "STATUS=coaching"]
        assert notifier.status("walking 12 min\nlean ok")
        assert receive(sock) == ["STATUS=walking 12 min lean ok"]  # one line
        assert notifier.watchdog()
        assert receive(sock) == ["WATCHDOG=1"]
        assert notifier.stopping()
        assert receive(sock) == ["STOPPING=1"]


def test_reloading_carries_the_monotonic_time(notify_socket):
    path, sock = notify_socket
    with Notifier(path) as notifier:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = receive(sock)
    assert fields[0] == "RELOADING=1"
    assert fields[1].startswith("MONOTONIC_USEC=")
    assert before <= int(fields[1].split("=")[1]) <= after


def test_notifier_reaches_an_abstract_socket():
    name = f"walkcoach-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        with Notifier("@" + name) as notifier:
            assert notifier.ready()
        assert receive(sock) == ["READY=1"]
    finally:
        sock.close()


def test_notifier_is_a_no_op_without_a_socket(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.reloading()
    assert not Notifier("relative/path").enabled
    gone = Notifier(str(tmp_path / "nobody-listens"))  # systemd went away: never raises
    assert gone.enabled and not gone.status("x")
    gone.close()


def test_watchdog_interval_from_the_environment():
    pid = os.getpid()
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000"}) == 10.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(pid)}) == 10.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(pid + 1)}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "x"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "2500000", "WATCHDOG_PID": "7"}, pid=7) == 2.5
