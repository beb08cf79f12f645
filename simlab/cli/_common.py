"""What every command shares: exit codes and argument types."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def seconds(text: str) -> float:
    """A duration: 5s, 500ms, 2m, 1h, or plain seconds."""
    t = text.strip().lower()
    if t.endswith("ms"):
        return duration(f"{float(t[:-2]) / 1000.0!r}")
    return duration(t)


def csv_list(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def duration(text: str) -> float:
    from simlab.store.status import parse_duration

    try:
        v = parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be > 0")
    return v


def order_inst_type(inst: str) -> str:
    from simlab.okx.rest import inst_type

    return inst_type(inst)


def to_json(obj) -> str:
    from simlab.sim.report import summary_to_json

    return summary_to_json(obj)
