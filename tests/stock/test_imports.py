"""What making a stock article imports: every generation process and the portal import the
stock automation, so a heavy library there costs each of them (scipy.stats: ~55 MB RSS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("scipy", "statsmodels.api", "yfinance", "google.cloud.firestore", "flask")


def test_the_stock_automation_imports_no_heavy_library_it_does_not_use():
    code = ("import sys\n"
            "from automation_scripts.stock.automation import create\n"
            "create({})\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]", f"imported at automation load: {out}"
