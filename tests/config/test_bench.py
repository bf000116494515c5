"""The benchmark's own parts that need no server: reading wrk's output, filling Lua scripts, the report."""

from __future__ import annotations

import subprocess

import pytest

from config.bench import load
from config.bench.report import Report

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8011/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   123.21ms   77.31ms   1.10s    82.23%
    Req/Sec   275.44     90.12   510.00     70.39%
  Latency Distribution
     50%  104.55ms
     75%  150.01ms
     90%  212.33ms
     99%  401.27ms
  5480 requests in 10.02s, 3.51MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:    546.89
Transfer/sec:    358.76KB
"""


def test_wrk_output_is_read_into_rates_and_percentiles(monkeypatch):
    def fake_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, stdout=WRK_OUTPUT, stderr="")

    monkeypatch.setattr(load, "wrk_path", lambda: "wrk")
    monkeypatch.setattr(load.subprocess, "run", fake_run)

    result = load.wrk("http://127.0.0.1:8011/", seconds=10, script="-- lua")

    assert (result.requests, result.non_2xx, result.errors) == (5480, 12, 3)
    assert result.seconds == pytest.approx(10.02)
    assert result.rate == pytest.approx((5480 - 15) / 10.02)
    assert result.latency_ms == {"50%": 104.55, "75%": 150.01, "90%": 212.33, "99%": 401.27}


def test_lua_scripts_are_filled_with_lists_strings_and_numbers():
    script = load.lua("events.lua", keys=["a.b", 'c"d'], tag="run-1", members=5)
    assert 'local keys = {"a.b", "c\\"d"}' in script
    assert 'local tag = "run-1"' in script
    assert "local members = 5" in script
    assert "{{" not in script


def test_the_report_says_which_targets_were_met():
    report = Report(machine="2 cores")
    report.ratio("single vs time", 2100, 4000, target=0.5, unit="req/s")
    report.absolute("end to end", 4200, target=5000, unit="events/s")
    report.absolute("p99", 40, target=100, unit="ms", at_most=True)

    text = report.render()
    assert "2,100 vs 4,000 req/s = 0.53x" in text
    assert [line.met for line in report.lines] == [True, False, True]
    assert not report.all_met
