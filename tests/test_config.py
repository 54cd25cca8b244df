"""The TOML config: loading, every kind of problem on one line, `config set`, the example file."""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from walkcoach.device.cli.cli import _Parser
from walkcoach.device.cli.config_cli import add_config_commands, run_config_command
from walkcoach.device.config import config as cfg
from walkcoach.device.config.config import (
    KEYS,
    Config,
    ConfigProblems,
    ServiceSettings,
    StoreSettings,
    config_path,
    effective_as_toml,
    example_config_text,
    get_value,
    load_config,
    set_value,
    validate_text,
)
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.hal.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "systemd" / "config.example.toml"
SRC = "cfg.toml"


@pytest.fixture(autouse=True)
def no_config_from_the_environment(monkeypatch, tmp_path):
    """No test reads the machine's /etc/walkcoach/config.toml or $WALKCOACH_CONFIG."""
    monkeypatch.delenv(cfg.CONFIG_ENV, raising=False)
    monkeypatch.setattr(cfg, "DEFAULT_CONFIG_PATH", tmp_path / "etc" / "config.toml")


def write(tmp_path: Path, text: str | bytes, name: str = "config.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = textwrap.dedent(text).encode()
    path.write_bytes(text)
    return path


def problems_of(text: str | bytes) -> list[str]:
    if isinstance(text, str):
        text = textwrap.dedent(text)
    return validate_text(text, SRC)


# -- where the file comes from, and the defaults --------------------------------------------


def test_path_precedence_is_flag_then_env_then_default(monkeypatch, tmp_path):
    assert config_path(None) == cfg.DEFAULT_CONFIG_PATH
    monkeypatch.setenv(cfg.CONFIG_ENV, str(tmp_path / "env.toml"))
    assert config_path(None) == tmp_path / "env.toml"
    assert config_path(tmp_path / "flag.toml") == tmp_path / "flag.toml"
    assert config_path("") == tmp_path / "env.toml"


def test_no_file_at_the_default_path_means_defaults():
    assert not cfg.DEFAULT_CONFIG_PATH.exists()
    config = load_config(None)
    assert config == Config()
    assert config.settings == DeviceSettings()
    assert config.store.state_dir == Path("/var/lib/walkcoach")
    assert config.service.pid_file == Path("/run/walkcoach/walkcoach.pid")


def test_the_default_path_named_in_the_environment_may_be_missing(monkeypatch):
    monkeypatch.setenv(cfg.CONFIG_ENV, str(cfg.DEFAULT_CONFIG_PATH))  # what the systemd unit does
    assert load_config(None) == Config()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_missing_file_named_explicitly_is_an_error(monkeypatch, tmp_path, how):
    missing = tmp_path / "nope.toml"
    if how == "env":
        monkeypatch.setenv(cfg.CONFIG_ENV, str(missing))
    with pytest.raises(ConfigError, match="nope.toml: no such config file"):
        load_config(missing if how == "flag" else None)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "\ufeff", "[lean]\n"])
def test_an_empty_file_means_defaults(tmp_path, text):
    assert load_config(write(tmp_path, text)) == Config()


def test_values_from_the_file_override_the_defaults(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        """
        [lean]
        threshold_deg = 20        # an integer is fine for a float
        tracking_only = true
        [plan]
        start_date = 2025-03-01
        [imu]
        address = 0x29
        [pins]
        motor = "GPIO5"
        button = ""
        [store]
        state_dir = "/srv/walkcoach"
        [service]
        runtime_dir = "/tmp/wc"
        """,
    )
    monkeypatch.setenv(cfg.CONFIG_ENV, str(path))
    config = load_config(None)
    lean = config.settings.coach.lean
    assert lean.threshold_deg == 20.0 and isinstance(lean.threshold_deg, float)
    assert lean.tracking_only is True
    assert lean.hold_s == 5.0
    assert config.settings.coach.plan.start_date == dt.date(2025, 3, 1)
    assert config.settings.imu.address == 0x29
    assert config.settings.pins.motor == "GPIO5" and config.settings.pins.button == ""
    assert config.store == StoreSettings(state_dir=Path("/srv/walkcoach"))
    assert config.service == ServiceSettings(runtime_dir=Path("/tmp/wc"))
    assert config.path == path
    assert get_value(config, "lean.threshold_deg") == 20.0
    assert get_value(config, "plan") is config.settings.coach.plan
    assert cfg.load_settings(path) == config.settings


def test_an_empty_start_date_means_today(tmp_path):
    assert load_config(write(tmp_path, '[plan]\nstart_date = ""\n')).settings.coach.plan.start_date is None


def test_get_value_names_unknown_keys_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"did you mean lean\.threshold_deg"):
        get_value(Config(), "lean.threshold")
    with pytest.raises(ConfigError, match=r"did you mean \[lean\]"):
        get_value(Config(), "laen.threshold_deg")


# -- every kind of problem: one line with file, line, key, value and what is allowed ---------

PROBLEMS = [
    # (file text, line, key, value as shown, allowed)
    ("[lean]\nthreshold_deg = 60\n", 2, "lean.threshold_deg", "60", "a number from 5.0 to 45.0 deg"),
    ("[lean]\nthreshold_deg = 4.5\n", 2, "lean.threshold_deg", "4.5", "5.0 to 45.0 deg"),
    ("[lean]\nmax_cues_per_10min = 0\n", 2, "lean.max_cues_per_10min", "0", "a whole number from 1 to 60"),
    ("[lean]\ntracking_only = 1\n", 2, "lean.tracking_only", "1", "true or false"),
    ('[lean]\ntracking_only = "yes"\n', 2, "lean.tracking_only", '"yes"', "true or false"),
    ("[gait]\nmin_bout_steps = 6.0\n", 2, "gait.min_bout_steps", "6.0", "a whole number from 3 to 30 steps"),
    ("[gait]\nmin_bout_steps = true\n", 2, "gait.min_bout_steps", "true", "a whole number"),
    ('[gait]\nmax_gap_s = "2"\n', 2, "gait.max_gap_s", '"2"', "a number from 1.0 to 10.0 s"),
    ("[gait]\nmax_gap_s = nan\n", 2, "gait.max_gap_s", "nan", "a number from 1.0 to 10.0 s"),
    ("[loop]\nrate_hz = inf\n", 2, "loop.rate_hz", "inf", "25.0 to 200.0 Hz"),
    ("[loop]\nrate_hz = [100]\n", 2, "loop.rate_hz", "[100]", "a number"),
    ("\n[mount]\nforward = \"x\"\n", 3, "mount.forward", '"x"', '"+x", "-x", "+y", "-y", "+z", "-z"'),
    ("[imu]\naddress = 0x30\n", 2, "imu.address", "0x30", "one of 0x28, 0x29"),
    ('[imu]\nfusion_mode = "imuplus"\n', 2, "imu.fusion_mode", '"imuplus"', 'one of "IMUPLUS", "NDOF"'),
    ('[pins]\nled = "17"\n', 2, "pins.led", '"17"', 'GPIO0 to GPIO27'),
    ('[pins]\nled = "GPIO40"\n', 2, "pins.led", '"GPIO40"', 'or "" for none'),
    ("[pins]\nled = 17\n", 2, "pins.led", "17", "GPIO0 to GPIO27"),
    ('[plan]\nstart_date = "2025-03-01"\n', 2, "plan.start_date", '"2025-03-01"', "a TOML date such as"),
    ("[plan]\nstart_date = 2025-03-01T08:00:00\n", 2, "plan.start_date", "2025-03-01T08:00:00", '"" for today'),
    ('[store]\nstate_dir = "var/lib"\n', 2, "store.state_dir", '"var/lib"', "an absolute path"),
    ("[service]\nruntime_dir = 5\n", 2, "service.runtime_dir", "5", "an absolute path"),
    ("lean = 5\n", 1, "lean", "5", "a table [lean]"),
    ("[[lean]]\nthreshold_deg = 20.0\n", 1, "lean", "[{ threshold_deg = 20.0 }]", "a table [lean]"),
    ("[lean]\nthreshold = 20\n", 2, "lean.threshold", "20", None),
    ("[plan]\nstart_min = 40\n", 2, "plan.max_min", "30.0", "plan.max_min >= plan.start_min"),
    ("[plan]\nsessions_per_day_min = 4\n", 2, "plan.sessions_per_day_max", "3", "plan.sessions_per_day_max >= plan.sessions_per_day_min"),
    ("[lean]\nthreshold_deg = 10\nhysteresis_deg = 10\n", 3, "lean.hysteresis_deg", "10.0", "lean.hysteresis_deg < lean.threshold_deg"),
    ('[mount]\nforward = "+y"\nup = "-y"\n', 3, "mount.up", '"-y"', "an up axis on x or z"),
    ('[mount]\nup = "-x"\n', 2, "mount.up", '"-x"', "an up axis on y or z"),
    ('[pins]\nbuzzer = "GPIO17"\nmotor = "GPIO17"\n', 3, "pins.motor", '"GPIO17"', "a pin no other output or button uses"),
    ('[pins]\nbutton = "GPIO27"\n', 2, "pins.button", '"GPIO27"', "a pin no other output or button uses"),
]


@pytest.mark.parametrize("text, line, key, shown, allowed", PROBLEMS)
def test_each_problem_is_one_line_with_file_line_key_value_and_what_is_allowed(text, line, key, shown, allowed):
    problems = problems_of(text)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert "\n" not in problem
    assert problem.startswith(f"{SRC}:{line}: {key} = {shown}: "), problem
    if allowed is not None:
        assert "; allowed: " in problem and allowed in problem.split("; allowed: ", 1)[1], problem


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    path = write(
        tmp_path,
        """
        [lean]
        threshold_deg = 99
        tracking_only = 0
        holds = 3
        [gaitt]
        x = 1
        [pins]
        led = "GPIO17"
        """,
    )
    with pytest.raises(ConfigProblems) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert lines == caught.value.problems
    assert [line.split(": ", 1)[0] for line in lines] == [f"{path}:3", f"{path}:4", f"{path}:5", f"{path}:6", f"{path}:9"]
    assert "lean.threshold_deg = 99" in lines[0]
    assert "lean.tracking_only = 0" in lines[1]
    assert "did you mean lean.hold_s?" in lines[2]
    assert "did you mean [gait]?" in lines[3]
    assert "already pins.buzzer" in lines[4]


@pytest.mark.parametrize(
    "text, suggestion",
    [
        ("[lean]\ntreshold_deg = 20\n", "did you mean lean.threshold_deg?"),
        ("[gait]\nthreshold_deg = 20\n", "did you mean lean.threshold_deg?"),
        ("[paln]\nmax_min = 40\n", "did you mean [plan]?"),
        ("threshold_deg = 20\n", "did you mean lean.threshold_deg under [lean]?"),
        ("[pin]\nled = \"GPIO5\"\n", "did you mean [pins]?"),
    ],
)
def test_unknown_keys_and_tables_get_a_did_you_mean(text, suggestion):
    (problem,) = problems_of(text)
    assert suggestion in problem


def test_an_unknown_key_with_no_close_match_lists_the_table_keys():
    (problem,) = problems_of("[upright]\nbanana = 1\n")
    assert problem.startswith(f"{SRC}:2: upright.banana = 1: unknown key; allowed in [upright]: still_s, max_from_nominal_deg")


def test_keys_are_located_in_dotted_and_inline_forms():
    assert problems_of("lean.threshold_deg = 90\n")[0].startswith(f"{SRC}:1: lean.threshold_deg = 90:")
    text = '\n[plan]\nnote = """\n[lean]\nthreshold_deg = 3\n"""\n[lean]\nhold_s = 0\n'
    problems = problems_of(text)
    assert problems[0].startswith(f"{SRC}:3: plan.note")
    assert problems[1].startswith(f"{SRC}:8: lean.hold_s = 0:")
    assert problems_of("\nlean = { hold_s = 0 }\n")[0].startswith(f"{SRC}:2: lean.hold_s = 0:")


def test_cross_checks_stay_quiet_about_values_that_are_already_wrong():
    problems = problems_of('[plan]\nstart_min = 500\n[mount]\nforward = "+q"\n[pins]\nled = "17"\nbuzzer = "17"\n')
    assert len(problems) == 4, problems
    assert not any("max_min" in p or "same axis" in p or "already" in p for p in problems)


@pytest.mark.parametrize(
    "data, line, words",
    [
        (b"[lean\n", 1, "not valid TOML: Expected ']'"),
        (b"[lean]\nthreshold_deg = \n", 2, "not valid TOML: Invalid value"),
        (b"[lean]\nhold_s = 3\nhold_s = 4\n", 3, "not valid TOML"),
        (b"[lean]\nthreshold_deg = 20\n\xff\xfe\n", 3, "not UTF-8 text (byte 0xff at offset 26)"),
        (b"\x00\x01\x02garbage", 1, "not valid TOML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 1, "not UTF-8 text"),
        (b"a = " + b"[" * 5000, None, "not valid TOML: arrays or tables nested too deeply"),
        (b"a = 1" + b"1" * 5000, None, "not valid TOML"),
    ],
)
def test_malformed_files_give_one_clear_line(tmp_path, data, line, words):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:{line}: " if line else f"{path}: "), problem
    assert words in problem


def test_unreadable_or_directory_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path)


# -- the example file and the effective config -----------------------------------------------


def test_committed_example_is_the_generated_text():
    assert EXAMPLE.read_text() == example_config_text(), (
        "systemd/config.example.toml is stale: python -m walkcoach.device.config > systemd/config.example.toml"
    )


def test_example_loads_to_the_defaults():
    assert load_config(EXAMPLE) == Config()
    assert tomllib.loads(example_config_text()).keys() == {t.name for t in cfg.TABLES}


def test_example_comments_every_key_with_unit_default_and_range():
    lines = example_config_text().splitlines()
    for keys in KEYS.values():
        for key in keys.values():
            index = lines.index(f"# {key.name} = {cfg.toml_value(key.default, hex_int=key.hex)}")
            facts = lines[index - 1]
            assert f"default: {cfg.toml_value(key.default, hex_int=key.hex)}" in facts
            if key.unit and key.unit not in ("path", "date"):
                assert f"unit: {key.unit}" in facts
            if key.range and not key.choices:
                assert f"range: {cfg._number(key.range[0], key.kind)} to {cfg._number(key.range[1], key.kind)}" in facts
            assert lines[index - 2] == f"# {key.help}"


def test_effective_toml_has_every_key_and_loads_back_to_the_same_config(tmp_path):
    path = write(tmp_path, '[lean]\nthreshold_deg = 22.5\n[plan]\nstart_date = 2025-01-06\n[pins]\nmotor = "GPIO5"\n')
    config = load_config(path)
    text = effective_as_toml(config)
    data = tomllib.loads(text)
    assert {name: set(table) for name, table in data.items()} == {name: set(keys) for name, keys in KEYS.items()}
    assert "threshold_deg = 22.5  # default 15.0" in text
    assert load_config(write(tmp_path, text, "again.toml")) == config
    assert load_config(write(tmp_path, effective_as_toml(Config()), "defaults.toml")) == Config()


# -- set: validate, then write atomically, keeping comments, layout, mode and owner -----------


@pytest.fixture
def example_copy(tmp_path) -> Path:
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text(example_config_text())
    path.chmod(0o640)
    return path


def test_set_puts_the_value_under_its_commented_template_and_keeps_everything_else(example_copy):
    before = example_copy.read_text().splitlines()
    config = set_value(example_copy, "gait.max_gap_s", "4")
    after = example_copy.read_text().splitlines()
    index = before.index("# max_gap_s = 3.0")
    assert after == before[: index + 1] + ["max_gap_s = 4"] + before[index + 1 :]
    assert config.settings.coach.gait.max_gap_s == 4.0
    assert load_config(example_copy).settings.coach.gait.max_gap_s == 4.0


def test_set_changes_an_existing_value_in_place_keeping_its_comment(tmp_path):
    path = write(tmp_path, "# my settings\n[lean]\n# tuned for Ann\nthreshold_deg = 15.0   # was too sensitive\n\n[pins]\nled = \"\"\n")
    set_value(path, "lean.threshold_deg", "18.5")
    assert path.read_text() == "# my settings\n[lean]\n# tuned for Ann\nthreshold_deg = 18.5   # was too sensitive\n\n[pins]\nled = \"\"\n"
    set_value(path, "pins.motor", "GPIO5")  # no template: appended to its table
    set_value(path, "loop.rate_hz", "50")  # no table: a new one
    data = tomllib.loads(path.read_text())
    assert data["pins"] == {"led": "", "motor": "GPIO5"} and data["loop"] == {"rate_hz": 50}
    assert path.read_text().startswith("# my settings\n[lean]\n# tuned for Ann\nthreshold_deg = 18.5   # was too sensitive\n")


@pytest.mark.parametrize(
    "before, after",
    [
        ("lean.threshold_deg = 30 # dotted\n", "lean.threshold_deg = 20 # dotted\nlean.repeat_s = 40\n"),
        ("lean = { threshold_deg = 30 }\n", "lean = { threshold_deg = 20, repeat_s = 40}\n"),
        ("[lean]\r\n# threshold_deg = 15.0\r\nhold_s = 3\r\n",
         "[lean]\r\n# threshold_deg = 15.0\r\nthreshold_deg = 20\r\nhold_s = 3\r\nrepeat_s = 40\r\n"),
    ],
)
def test_set_edits_dotted_inline_and_crlf_files_in_their_own_style(tmp_path, before, after):
    path = write(tmp_path, before.encode())
    set_value(path, "lean.threshold_deg", "20")
    set_value(path, "lean.repeat_s", "40")
    assert path.read_bytes() == after.encode()


@pytest.mark.parametrize(
    "key, value_text, expected",
    [
        ("pins.motor", "GPIO5", "GPIO5"),
        ("pins.motor", '"GPIO6"', "GPIO6"),
        ("pins.led", "", ""),
        ("imu.address", "0x29", 0x29),
        ("imu.address", "41", 0x29),
        ("plan.start_date", "2025-03-01", dt.date(2025, 3, 1)),
        ("plan.start_date", "", None),
        ("lean.tracking_only", "true", True),
        ("store.state_dir", "/srv/wc", Path("/srv/wc")),
        ("mount.forward", "-y", "-y"),
    ],
)
def test_set_takes_command_line_values(example_copy, key, value_text, expected):
    assert get_value(set_value(example_copy, key, value_text), key) == expected
    assert get_value(load_config(example_copy), key) == expected


@pytest.mark.parametrize(
    "key, value_text, words",
    [
        ("lean.threshold_deg", "99", "lean.threshold_deg = 99: out of range"),
        ("lean.threshold_deg", "abc", 'lean.threshold_deg = "abc": wrong type (a string)'),
        ("lean.tracking_only", "1", "wrong type (an integer); allowed: true or false"),
        ("lean.hysteresis_deg", "15", "not less than lean.threshold_deg"),
        ("mount.up", "+x", "same axis"),
        ("pins.led", "GPIO17", "already pins.buzzer"),
        ("plan.start_date", '"2025-03-01"', "a string, not a date"),
        ("lean.treshold_deg", "3", "did you mean lean.threshold_deg?"),
        ("leen.threshold_deg", "3", "did you mean [lean]?"),
        ("lean", "3", "unknown key"),
    ],
)
def test_set_rejects_bad_values_leaving_the_file_byte_for_byte(example_copy, key, value_text, words):
    before = example_copy.read_bytes()
    inode = example_copy.stat().st_ino
    with pytest.raises(ConfigProblems) as caught:
        set_value(example_copy, key, value_text)
    assert any(words in problem for problem in caught.value.problems), caught.value.problems
    assert example_copy.read_bytes() == before
    assert example_copy.stat().st_ino == inode
    assert sorted(p.name for p in example_copy.parent.iterdir()) == ["config.toml"]


def test_set_refuses_to_touch_a_file_that_is_already_broken(tmp_path):
    path = write(tmp_path, "[lean]\nthreshold_deg = = 3\n")
    with pytest.raises(ConfigProblems, match="not valid TOML"):
        set_value(path, "lean.hold_s", "4")
    assert path.read_text() == "[lean]\nthreshold_deg = = 3\n"


def test_set_can_repair_the_bad_value_itself(tmp_path):
    path = write(tmp_path, "[lean]\nthreshold_deg = 90\n")
    set_value(path, "lean.threshold_deg", "20")
    assert load_config(path).settings.coach.lean.threshold_deg == 20.0


def test_set_keeps_mode_replaces_atomically_and_leaves_no_temp_file(example_copy):
    inode = example_copy.stat().st_ino
    set_value(example_copy, "lean.hold_s", "7")
    assert stat.S_IMODE(example_copy.stat().st_mode) == 0o640
    assert example_copy.stat().st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in example_copy.parent.iterdir()) == ["config.toml"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_set_keeps_the_owner(example_copy):
    os.chown(example_copy, 65534, 65534)
    set_value(example_copy, "lean.hold_s", "7")
    st_ = example_copy.stat()
    assert (st_.st_uid, st_.st_gid) == (65534, 65534)


def test_set_writes_through_a_symlink(example_copy):
    link = example_copy.parent / "link.toml"
    link.symlink_to(example_copy)
    set_value(link, "lean.hold_s", "7")
    assert link.is_symlink()
    assert load_config(example_copy).settings.coach.lean.hold_s == 7.0


def test_set_creates_a_missing_file_readable_by_the_service(tmp_path):
    path = tmp_path / "new.toml"
    set_value(path, "lean.hold_s", "7")
    assert path.read_text() == "[lean]\nhold_s = 7\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# -- the commands ---------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    parser = _Parser(prog="walkcoach")
    parser.add_argument("--config", type=Path)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_config_commands(commands)
    out, err = io.StringIO(), io.StringIO()
    code = run_config_command(parser.parse_args(list(argv)), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_validate_lists_every_problem_and_exits_1(tmp_path):
    path = write(tmp_path, "[lean]\nthreshold_deg = 99\nholds = 1\n")
    code, out, err = run_cli("config", "validate", str(path))
    assert code == 1 and out == ""
    assert err.splitlines() == validate_text(path.read_bytes(), str(path))
    assert len(err.splitlines()) == 2
    assert err.splitlines()[0].startswith(f"{path}:2: lean.threshold_deg = 99")


def test_validate_says_ok_and_exits_0(tmp_path):
    code, out, err = run_cli("--config", str(EXAMPLE), "config", "validate")
    assert (code, err) == (0, "") and out.strip() == f"{EXAMPLE}: ok"
    assert run_cli("config", "validate", str(tmp_path / "missing.toml"))[0] == 1


def test_show_prints_the_effective_config_and_get_one_value(tmp_path):
    path = write(tmp_path, '[lean]\nthreshold_deg = 21.0\n[pins]\nmotor = "GPIO5"\n')
    code, out, _ = run_cli("--config", str(path), "config", "show")
    assert code == 0 and tomllib.loads(out)["lean"]["threshold_deg"] == 21.0
    assert run_cli("--config", str(path), "config", "get", "lean.threshold_deg")[1] == "21.0\n"
    assert run_cli("--config", str(path), "config", "get", "pins.motor")[1] == "GPIO5\n"
    assert run_cli("--config", str(path), "config", "get", "imu.address")[1] == "0x28\n"
    assert run_cli("--config", str(path), "config", "get", "plan.start_date")[1] == "\n"
    assert tomllib.loads(run_cli("--config", str(path), "config", "get", "mount")[1]) == {"mount": {"forward": "+x", "up": "+z"}}
    with pytest.raises(ConfigError, match="did you mean"):
        run_cli("--config", str(path), "config", "get", "lean.thresh")


def test_show_of_a_broken_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="out of range"):
        run_cli("--config", str(write(tmp_path, "[lean]\nhold_s = 0\n")), "config", "show")


def test_set_with_no_service_running_says_when_it_applies(example_copy, tmp_path):
    set_value(example_copy, "service.runtime_dir", str(tmp_path / "run"))
    code, out, err = run_cli("--config", str(example_copy), "config", "set", "lean.hold_s", "8")
    assert code == 0 and err == ""
    assert out.splitlines() == [f"lean.hold_s = 8.0 written to {example_copy}",
                                "walkcoach is not running: the change applies at next start"]


def test_set_with_a_bad_value_exits_1_printing_the_problem(example_copy):
    before = example_copy.read_bytes()
    code, out, err = run_cli("--config", str(example_copy), "config", "set", "lean.hold_s", "0")
    assert code == 1 and out == ""
    assert err.splitlines()[0].startswith(f"{example_copy}:")
    assert "lean.hold_s = 0: out of range; allowed: a number from 1.0 to 60.0 s" in err
    assert example_copy.read_bytes() == before


def _spawn(tmp_path: Path, argv0: str) -> subprocess.Popen:
    """A stand-in service: records SIGHUP in hup.txt; cmdline `python <argv0> run --service`."""
    script = tmp_path / argv0
    script.write_text(
        "import signal, sys, time, pathlib\n"
        "out = pathlib.Path(sys.argv[1])\n"
        "signal.signal(signal.SIGHUP, lambda *a: out.write_text('hup'))\n"
        "out.with_suffix('.ready').write_text('')\n"
        "time.sleep(30)\n"
    )
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "hup.txt"), "run", "--service"])
    deadline = time.monotonic() + 10
    while not (tmp_path / "hup.ready").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    return process


@pytest.mark.parametrize("argv0, signalled", [("walkcoach", True), ("someone-else", False)])
def test_set_asks_the_running_service_to_reload(example_copy, tmp_path, argv0, signalled):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    set_value(example_copy, "service.runtime_dir", str(run_dir))
    process = _spawn(tmp_path, argv0)
    try:
        (run_dir / "walkcoach.pid").write_text(f"{process.pid}\n")
        code, out, _ = run_cli("--config", str(example_copy), "config", "set", "lean.hold_s", "9")
        assert code == 0
        if signalled:
            assert f"asked the running service (PID {process.pid}) to reload" in out
            deadline = time.monotonic() + 10
            while not (tmp_path / "hup.txt").exists():
                assert time.monotonic() < deadline
                time.sleep(0.01)
        else:  # a stale pid file whose PID now belongs to another program: leave it alone
            assert "not running" in out
            time.sleep(0.05)
            assert not (tmp_path / "hup.txt").exists()
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_cli_wires_the_config_commands(tmp_path, capsys):
    from walkcoach.device.cli import cli

    if "config" not in cli.build_parser()._subparsers._group_actions[0].choices:
        pytest.skip("device/cli/cli.py does not wire `walkcoach config` yet")
    path = write(tmp_path, "[lean]\nhold_s = 0\n")
    assert cli.main(["--config", str(path), "config", "validate"]) == 1
    assert "lean.hold_s = 0" in capsys.readouterr().err
    assert cli.main(["--config", str(path), "config", "show"]) == 2


# -- malformed configs never escape as anything but ConfigError ---------------------------------

TABLE_NAMES = [t.name for t in cfg.TABLES]
KEY_NAMES = sorted({name for keys in KEYS.values() for name in keys})
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    TEXT,
    st.sampled_from(["GPIO17", "GPIO27", "+x", "-y", "+z", "IMUPLUS", "NDOF", "", "/tmp", "2025-03-01"]),
    st.dates(),
    st.datetimes(),
    st.times(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=5)
DOCUMENTS = st.dictionaries(
    st.sampled_from(TABLE_NAMES) | TEXT,
    st.dictionaries(st.sampled_from(KEY_NAMES) | TEXT, VALUES, max_size=6) | VALUES,
    max_size=5,
)
FUZZ = hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_loads_or_config_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.strip()
        for line in message.splitlines():
            assert line.startswith(str(path)), line
        assert validate_text(data, str(path)) == message.splitlines()
    else:
        assert isinstance(config, Config)
        assert validate_text(data, str(path)) == []
        again = path.with_suffix(".again")
        again.write_text(effective_as_toml(config))
        assert load_config(again) == config


@FUZZ
@given(document=DOCUMENTS)
def test_random_toml_documents_load_or_raise_config_error(fuzz_dir, document):
    import tomlkit

    try:
        text = tomlkit.dumps(document)
    except Exception:
        assume(False)
    assert_loads_or_config_error(fuzz_dir / "doc.toml", text.encode("utf-8"))


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_load_or_raise_config_error(fuzz_dir, data):
    assert_loads_or_config_error(fuzz_dir / "bytes.toml", data)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 6), st.binary(max_size=6)), min_size=1, max_size=4))
def test_mangled_example_files_load_or_raise_config_error(fuzz_dir, edits):
    data = bytearray(example_config_text().encode())
    for position, cut, insert in edits:
        position %= len(data) + 1
        data[position : position + cut] = insert
    assert_loads_or_config_error(fuzz_dir / "mangled.toml", bytes(data))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([f"{t}.{k}" for t, keys in KEYS.items() for k in keys]) | TEXT,
       value_text=TEXT | st.sampled_from(["0x29", "2025-01-01", "true", "12.5", "GPIO5", '"x"', "[1]", "{a=1}"]))
def test_set_either_writes_a_valid_file_or_leaves_it_untouched(fuzz_dir, key, value_text):
    path = fuzz_dir / "set.toml"
    path.write_text(example_config_text())
    before = path.read_bytes()
    try:
        config = set_value(path, key, value_text)
    except ConfigError as exc:
        assert str(exc).strip()
        assert path.read_bytes() == before
    else:
        assert load_config(path) == config
        changed = [line for line in path.read_text().splitlines() if line not in before.decode().splitlines()]
        assert len(changed) == 1 and changed[0].startswith(key.split(".")[1] + " = ")


# -- two `config set` at once ---------------------------------------------------------------------

CONCURRENT_KEYS = ("lean.hold_s", "lean.repeat_s")


def test_concurrent_config_sets_lose_no_update_in_100_tries(example_copy):
    """Pairs of `config set` on different keys, released together by a barrier: both values land."""
    import threading

    lost = []
    for attempt in range(100):
        values = (str(5 + attempt % 50), str(100 + attempt))
        barrier = threading.Barrier(2)
        results = [None, None]

        def set_one(index: int, barrier=barrier, results=results, values=values) -> None:
            barrier.wait()
            results[index] = run_cli("--config", str(example_copy), "config", "set", CONCURRENT_KEYS[index], values[index])

        threads = [threading.Thread(target=set_one, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [r[0] for r in results] == [0, 0], results
        lean = load_config(example_copy).settings.coach.lean
        if (lean.hold_s, lean.repeat_s) != (float(values[0]), float(values[1])):
            lost.append(attempt)
    assert lost == []
    assert sorted(p.name for p in example_copy.parent.iterdir()) == [".config.toml.lock", "config.toml"]


def test_concurrent_config_set_processes_lose_no_update(example_copy, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WALKCOACH_CONFIG"}
    root = Path(__file__).resolve().parents[1]
    for attempt in range(5):
        values = (str(6 + attempt), str(200 + attempt))
        procs = [
            subprocess.Popen([sys.executable, "-m", "walkcoach", "--config", str(example_copy), "config", "set", key, value],
                             cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for key, value in zip(CONCURRENT_KEYS, values, strict=True)
        ]
        assert [p.wait(60) for p in procs] == [0, 0]
        lean = load_config(example_copy).settings.coach.lean
        assert (lean.hold_s, lean.repeat_s) == (float(values[0]), float(values[1]))


def test_config_set_refuses_a_planted_lock_symlink(example_copy, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (example_copy.parent / ".config.toml.lock").symlink_to(victim)
    with pytest.raises(cfg.ConfigError, match="symbolic link"):
        run_cli("--config", str(example_copy), "config", "set", "lean.hold_s", "9")
    assert victim.read_text() == "keep\n"
