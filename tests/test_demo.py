"""`make demo` runs simlab.demo: keep it working (on a smaller synthetic night)."""

from simlab import demo


def test_demo_runs_and_checks_itself(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path / "d"), "--updates", "3000"]) == 0
    out = capsys.readouterr().out
    assert "demo ok" in out
    # the deliberately dropped update is found, and where it is is shown
    assert "PROBLEM: books ETH-USDT: 1 sequence gaps" in out
    assert "\ngap " in out and "ETH-USDT" in out
    assert (tmp_path / "d" / "clean" / "manifest.json").is_file()
