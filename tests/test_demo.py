"""`make demo` runs simlab.demo: keep it working (a shorter live part, a smaller night)."""

import json

from simlab import demo

REPORT = ("summary.json", "summary.md", "depth.png", "cost_over_time.png", "latency.png",
          "ac_schedule.png", "ac_frontier.png", "ticks.parquet")


def test_demo_runs_and_checks_itself(tmp_path, capsys):
    out = tmp_path / "d"
    assert demo.main(["--out", str(out), "--updates", "3000", "--seconds", "4"]) == 0
    text = capsys.readouterr().out
    assert "demo ok" in text
    # part 1: recorded through the live client, priced live, replayed to the same bits
    assert "replay (events) == live" in text and "replay (columnar) == live" in text
    for name in REPORT:
        assert (out / "report" / name).stat().st_size > 500, name
    s = json.loads((out / "report" / "summary.json").read_text())
    assert s["ticks"] > 10 and s["live"]["latency_us"]["total"]["p50_us"] > 0
    assert set(s["run"]["impact_provenance"]) >= {"sigma", "eta", "gamma"}
    # the deliberately dropped update is found, and where it is is shown
    assert "PROBLEM: books ETH-USDT: 1 sequence gaps" in text
    assert "\ngap " in text and "ETH-USDT" in text
    assert (out / "clean" / "manifest.json").is_file()
