"""One CLI dialect (issue 15, item 9): comma lists, durations with units, --log-level on
every command, a closed stdout that ends quietly and progress bars only on a terminal."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from simlab.cli import _common, build_parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    out = {}

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    out[f"{prefix} {name}".strip()] = sp
                    walk(sp, f"{prefix} {name}")

    walk(build_parser(), "")
    return out


COMMANDS = _commands()
DURATION_TYPES = {_common.duration, _common.duration_or_zero}
# flags whose value is a time span, by the words in their names
TIME_WORDS = ("duration", "interval", "timeout", "heartbeat", "horizon", "every", "lookback",
              "latency", "seconds", "rotate", "outage")


def test_every_command_takes_log_level():
    for name, p in COMMANDS.items():
        flags = p._option_string_actions
        assert "--log-level" in flags and "-q" in flags, name
    args = build_parser().parse_args(["verify", "rec", "--log-level", "DEBUG"])
    assert args.log_level == "debug"
    args = build_parser().parse_args(["--log-level", "info", "verify", "rec"])
    assert args.log_level == "info"  # before the command, not overwritten by its default


def test_lists_are_comma_separated_everywhere():
    for name, p in COMMANDS.items():
        for a in p._actions:
            if a.option_strings and a.nargs in ("+", "*"):
                pytest.fail(f"simlab {name} {a.option_strings[0]} takes a space-separated "
                            "list; every list flag takes A,B")


def test_durations_take_units_everywhere():
    for name, p in COMMANDS.items():
        for a in p._actions:
            words = " ".join(a.option_strings) + " " + (a.dest or "")
            if not a.option_strings or not any(w in words for w in TIME_WORDS):
                continue
            if a.help == argparse.SUPPRESS:  # an old spelling kept for scripts
                continue
            assert a.type in DURATION_TYPES, f"simlab {name} {a.option_strings[0]}: {a.type}"
            assert a.type("1m") == 60.0 and a.type("250ms") == 0.25


def test_one_name_per_concept_on_the_cli():
    replay = COMMANDS["replay"]._option_string_actions
    # the impact horizon is T everywhere (YAML, Python ACParams); the fill horizon is not
    assert replay["--impact-horizon"].dest == "T" and replay["--T"].dest == "T"
    assert replay["--impact-steps"].dest == "N" and replay["--risk-aversion"].dest == "lam"
    assert "--horizon" not in replay
    train = COMMANDS["train maker-taker"]._option_string_actions
    assert train["--fill-horizon"].dest == "fill_horizon"
    a = build_parser().parse_args(["replay", "r", "--inst", "X", "--side", "buy",
                                   "--notional", "1", "--impact-horizon", "5m"])
    assert a.T == 300.0


def test_a_bad_duration_names_the_flag_typed(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["replay", "r", "--inst", "X", "--side", "buy",
                                   "--notional", "1", "--T", "soon"])
    err = capsys.readouterr().err
    assert "--impact-horizon/--T" in err and "'soon'" in err


def test_closed_stdout_ends_quietly(capture_recording):
    # The reader goes away before verify writes its report: no traceback, no "Broken pipe".
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([sys.executable, "-m", "simlab.cli", "verify", str(capture_recording)],
                       stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(w)
    assert p.returncode == 141, p.stderr
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr
    assert "Broken pipe" not in p.stderr


def test_progress_bars_stay_out_of_logs(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        p = subprocess.run([sys.executable, "-m", "simlab.cli", "synth", "--out",
                            str(tmp_path / "s"), "--duration", "30s"], stderr=err,
                           stdout=subprocess.PIPE, timeout=120)
    assert p.returncode == 0
    text = log.read_text()
    assert "simulated s" not in text and "\r" not in text, text[:500]


def test_progress_policy():
    from simlab.progress import wanted

    assert wanted(True) and not wanted(False)
    assert wanted(None) == sys.stderr.isatty()


def test_log_level_reaches_the_logger(tmp_path, capsys):
    import logging

    root = logging.getLogger()
    for h in list(root.handlers):  # basicConfig only configures an unconfigured root
        root.removeHandler(h)
    try:
        assert main(["verify", str(tmp_path / "nope"), "--log-level", "debug"]) == 2
        assert root.level == logging.DEBUG
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        root.setLevel(logging.WARNING)
