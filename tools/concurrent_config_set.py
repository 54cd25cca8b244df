"""100 pairs of concurrent `config set` (threads, the real command path): how many lost an update.

`.venv/bin/python -m tools.concurrent_config_set [--no-lock]` (issue 11: 98 of 100 without the lock, 0 with it)."""
import contextlib
import io
import sys
import tempfile
import threading
from pathlib import Path

from walkcoach.device.cli import config_cli
from walkcoach.device.cli.cli import _Parser
from walkcoach.device.config.config import example_config_text, load_config

if "--no-lock" in sys.argv:
    config_cli.exclusive_lock = lambda path: contextlib.nullcontext()
path = Path(tempfile.mkdtemp()) / "config.toml"
path.write_text(example_config_text())
parser = _Parser(prog="walkcoach")
parser.add_argument("--config", type=Path)
config_cli.add_config_commands(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
lost = 0
for attempt in range(100):
    values = (str(5 + attempt % 50), str(100 + attempt))
    barrier = threading.Barrier(2)

    def one(i, barrier=barrier, values=values):
        barrier.wait()
        args = parser.parse_args(["--config", str(path), "config", "set", ("lean.hold_s", "lean.repeat_s")[i], values[i]])
        config_cli.run_config_command(args, out=io.StringIO(), err=io.StringIO())
    ts = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lean = load_config(path).settings.coach.lean
    lost += (lean.hold_s, lean.repeat_s) != (float(values[0]), float(values[1]))
print(f"lost updates: {lost} of 100 tries ({'no lock' if '--no-lock' in sys.argv else 'with the lock'})")
