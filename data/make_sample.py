"""Regenerate the sample recording ``data/sample`` (``make sample-data`` runs this).

``simlab synth`` has no flag for the market's parameters, and the notebooks need a market
whose order flow follows the book's imbalance strongly enough to train a maker/taker model
on (notebook 03): market orders at 8/s (CST's paper: 1.88/s) tied to the touch imbalance
with beta 0.9, and a 100-tick book (the settings tests/test_train.py shows work).
Everything else is ``simlab synth``'s defaults.

Usage: ``python data/make_sample.py [--out data/sample]`` (the directory must not exist).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simlab.emulator import write_synthetic_recording
from simlab.emulator.cst import CSTParams

#: The sample's settings, also written into its manifest's ``source``.
SECONDS = 600.0
INSTRUMENTS = ("BTC-USDT",)
CHANNELS = ("books", "trades")
SEED = 7
IMBALANCE_BETA = 0.9
PARAMS = CSTParams(mu=8.0, depth=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample",
                    help="new recording directory (default: data/sample)")
    args = ap.parse_args(argv)
    path = write_synthetic_recording(args.out, seconds=SECONDS, instruments=INSTRUMENTS,
                                     channels=CHANNELS, seed=SEED, imbalance=IMBALANCE_BETA,
                                     params=PARAMS)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"wrote {path}: {size / 1e6:.2f} MB; check it with: simlab verify {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
