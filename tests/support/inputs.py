"""Adversarial source files for the memory tests and bench/bench_memory.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from enclave.indexer.excludes import LONG_LINE_CHARS


def one_line_bundle(size: int) -> str:
    """Minified JavaScript: definitions back to back on one line (each one a symbol)."""
    parts: list[str] = []
    total, i = 0, 0
    while total < size:
        part = f"function f{i}(a,b){{var c=a+b;return c*{i}}}var o{i}={{m{i}:function(x){{return x}}}};"
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)[:size]


def dense_lines(lines: int) -> str:
    """Definition-dense lines just under the long-line limit, among short ones (not minified by
    either rule): each symbol's signature line is ~4,000 characters."""
    line = one_line_bundle(LONG_LINE_CHARS - 10)
    return "\n".join(line + "\n" + "\n".join(["x = 1;"] * 6) for _ in range(lines)) + "\n"


# Runs a Python child (``-m module ...`` or ``-c code ...``) and writes its own peak RSS (VmHWM,
# kB) at exit. The rusage of a child (os.wait4, RUSAGE_CHILDREN) is no measure here: Linux carries
# the parent's high-water mark across fork and exec, so a child of a 1 GB test process "peaks" at
# 1 GB whatever it does.
_MEASURED = """
import atexit, runpy, sys
out, kind, target, *rest = sys.argv[1:]

def record():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    with open(out, "w") as handle:
        handle.write(peak)

atexit.register(record)
if kind == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
"""


def run_measured(
    python_args: list[str], stdout: Path, env: dict[str, str]
) -> tuple[int, float, float]:
    """(exit code, peak RSS in MB, wall seconds) of ``python <python_args>``, stdout to a file."""
    peak_file = stdout.with_suffix(".peak")
    started = time.perf_counter()
    with stdout.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURED, str(peak_file), *python_args],
            stdout=out, stderr=subprocess.DEVNULL, env=env, check=False,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    return done.returncode, int(peak_file.read_text()) / 1024, seconds
