"""static/js/local_time.js under Node prints live times as the server prints its own
(``portal.local_time.user_time``): the same wall time and zone name for zones with and without
daylight saving, half-hour offsets and zones the host names only by offset; a zone the
browser does not know falls back to UTC, named so."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from portal.local_time import user_time, zone_names
from tests.support.procs import need

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = r"""
const { Clock } = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
console.log(JSON.stringify(cases.map(([zone, names, instant]) => {
  const clock = new Clock(zone, names);
  return [clock.format(instant), clock.timeOfDay(instant)];
})));
"""
ZONES = ("Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Lord_Howe",
         "America/Sao_Paulo", "UTC")
AROUND = datetime(2026, 6, 1, tzinfo=UTC)


def in_node(cases: list[tuple[str, dict[str, str], str]]) -> list[list[str]]:
    node = shutil.which("node")
    need(node is not None, "node is not installed (apt-get install -y nodejs)")
    done = subprocess.run([node, "-e", SCRIPT, str(ROOT / "static/js/local_time.js"),
                           json.dumps(cases)], capture_output=True, text=True, timeout=30,
                          check=True)
    return json.loads(done.stdout)


def test_live_times_read_as_the_server_prints_them() -> None:
    instants = [AROUND + timedelta(days=d, hours=h, minutes=7, seconds=9)
                for d in range(-150, 180, 23) for h in (0, 13)]
    cases = [(zone, zone_names(ZoneInfo(zone), AROUND), t.isoformat())
             for zone in ZONES for t in instants]
    for (zone, _names, instant), (text, clock) in zip(cases, in_node(cases), strict=True):
        assert text == user_time(instant, zone), (zone, instant)
        local = datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))
        assert clock == local.strftime("%H:%M:%S %Z"), (zone, instant)


def test_kolkata_and_what_is_not_a_time() -> None:
    names = zone_names(ZoneInfo("Asia/Kolkata"), AROUND)
    assert names == {"330": "IST"}
    got = in_node([("Asia/Kolkata", names, "2026-05-01T20:05:00+00:00"),
                   ("Asia/Kolkata", names, "not a time"),
                   ("Asia/Kolkata", names, ""),
                   ("Mars/Olympus", {}, "2026-05-01T20:05:00+00:00"),
                   ("Asia/Kolkata", {}, "2026-05-01T20:05:00Z")])
    assert got == [["2026-05-02 01:35 IST", "01:35:00 IST"], ["", ""], ["", ""],
                   ["2026-05-01 20:05 UTC", "20:05:00 UTC"],
                   ["2026-05-02 01:35 UTC+05:30", "01:35:00 UTC+05:30"]]
