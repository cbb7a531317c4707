"""Times `onca test` on a content directory, optionally next to the reference tool on the same directory.

    python bench/test_speed.py --analysis-dir ~/panther-analysis --reference-cmd panther_analysis_tool

Each command runs with the content directory as its working directory and no path argument (so both
tools apply their "repository root" discovery rules), its output discarded. The best wall-clock time
of --runs runs is reported for each, then the ratio reference/onca.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best_of(command: list[str], cwd: Path, runs: int) -> tuple[float, int]:
    """Best wall time over `runs` runs and the exit status of the last one."""
    best = float("inf")
    status = 0
    for _ in range(runs):
        with tempfile.TemporaryFile() as output:
            start = time.perf_counter()
            try:
                done = subprocess.run(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, check=False)
            except OSError as err:
                raise SystemExit(f"error: cannot run {shlex.join(command)}: {err}") from err
            best = min(best, time.perf_counter() - start)
            status = done.returncode
            if status not in (0, 1):  # 1 is "some tests failed"; anything else is a crash or usage error
                output.seek(0)
                tail = output.read()[-2000:].decode(errors="replace")
                raise SystemExit(f"error: {shlex.join(command)} exited {status}; last output:\n{tail}")
    return best, status


def onca_command(given: str | None) -> list[str]:
    if given:
        return shlex.split(given)
    if shutil.which("onca"):
        return ["onca"]
    # Not on PATH (e.g. a venv that is not activated): use the interpreter running this script.
    return [sys.executable, "-c", "import sys; from onca.cli.main import main; sys.exit(main())"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Wall-clock timing of `onca test` on a content directory, optionally against the "
        "reference tool's `test` on the same directory."
    )
    parser.add_argument("--analysis-dir", required=True, type=Path, help="panther-analysis style content directory")
    parser.add_argument(
        "--reference-cmd",
        metavar="CMD",
        help='reference tool executable, e.g. "panther_analysis_tool"; `test` is appended',
    )
    parser.add_argument("--onca-cmd", metavar="CMD", help='how to start Onca (default: "onca" from PATH)')
    parser.add_argument("--runs", type=int, default=3, help="runs per command; the best is kept (default 3)")
    args = parser.parse_args(argv)
    if not args.analysis_dir.is_dir():
        parser.error(f"--analysis-dir {args.analysis_dir}: not a directory")
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    directory = args.analysis_dir.resolve()

    onca = [*onca_command(args.onca_cmd), "test", "."]
    onca_seconds, onca_status = best_of(onca, directory, args.runs)
    print(f"onca test: {onca_seconds:.2f} s (best of {args.runs}, exit {onca_status})")
    if args.reference_cmd:
        reference = [*shlex.split(args.reference_cmd), "test"]
        ref_seconds, ref_status = best_of(reference, directory, args.runs)
        print(f"{shlex.join(reference)}: {ref_seconds:.2f} s (best of {args.runs}, exit {ref_status})")
        print(f"reference/onca = {ref_seconds / onca_seconds:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
