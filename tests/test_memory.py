"""Streaming stays flat: resident memory does not grow with the size of the document."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_iter_readings_streams_a_large_feed_in_flat_memory(tmp_path):
    path = tmp_path / "big.xml"
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from feeds import write_feed
    finally:
        sys.path.pop(0)
    count = write_feed(path, meters=4, days=365)  # about 32 MB, 140,160 readings
    script = textwrap.dedent(
        f"""
        import espi
        def mib(key):  # VmHWM, unlike ru_maxrss, does not carry the parent's peak over exec
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        before = mib("VmRSS:")
        n = sum(1 for r in espi.iter_readings({str(path)!r}) if r.reading_type is not None)
        print(n, mib("VmHWM:") - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    n, growth = out.stdout.split()
    assert int(n) == count
    assert float(growth) < 24, f"resident memory grew {growth} MiB for a 32 MB feed"
