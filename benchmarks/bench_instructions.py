"""Instructions per line of the live path (parse, price, aggregate with per-day sums), counted by callgrind.

    python benchmarks/bench_instructions.py [--tree DIR] [--lines 20000] [--passes 2] [--part all,decode,apply]

Wall and CPU times on a shared machine drift by 1.5x within minutes; instruction counts do not, so
this is how two trees (``--tree``: a checkout, e.g. a worktree of the baseline commit) are compared
on the live path. Each part is run under ``valgrind --tool=callgrind`` twice, with 0 and with
``--passes`` passes over the lines (after one warm pass that makes the records and sets the clock),
and the difference is divided by the lines counted: start-up and imports cancel out.

``all`` is ``Ingestor.on_lines`` in batches of 400 (a 20 ms wake at 20k lines/s), as the daemon's
tailer calls it; ``decode`` is ``Ingestor.decode`` alone; ``apply`` is the events' handlers alone.
The lines are the first ``--lines`` of ``benchmarks/generate.py``'s 100,000. Instructions are not
time (cache misses cost the daemon more than a warm loop): read them beside the runner's live row.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH = 400


def child(tree: str, path: str, lines: int, passes: int, part: str) -> None:
    """The measured process: the tree's own daemon wiring, one warm pass, then ``passes`` of ``part``."""
    sys.path.insert(0, tree)
    from llm_log_exporter.aggregate.store import Store
    from llm_log_exporter.daemon import Config, build_ingestor, build_usage

    with open(path, "rb") as f:
        sample = [line.rstrip(b"\n") for line in f.readlines()[:lines]]
    config = Config(files=["live"])
    daily = {"daily": True} if "daily" in inspect.signature(build_usage).parameters else {}  # older trees: none
    ingestor = build_ingestor(config, Store(build_usage(config, **daily)))
    usage = ingestor.store.usage
    events = ingestor.decode("live", sample, 1, 0)

    def on_lines() -> None:
        for at in range(0, len(sample), BATCH):
            ingestor.on_lines("live", sample[at:at + BATCH], at + 1, 0)

    def decode() -> None:
        for at in range(0, len(sample), BATCH):
            ingestor.decode("live", sample[at:at + BATCH], at + 1, 0)

    def apply() -> None:
        handlers = getattr(usage, "handlers", None)  # older trees: apply() alone
        if handlers is None:
            for event in events:
                usage.apply(event)
        else:
            for event in events:
                handlers[type(event)](event)

    run = {"all": on_lines, "decode": decode, "apply": apply}[part]
    on_lines()  # warm: records made, the clock set
    for _ in range(passes):
        run()


def collected(tree: str, path: str, lines: int, passes: int, part: str) -> int:
    python = os.path.realpath(sys.executable)  # valgrind must run the interpreter, not a shim script
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, __file__, "--child", tree, path,
         str(lines), str(passes), part],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tree, path, lines, passes, part = sys.argv[2:7]
        child(tree, path, int(lines), int(passes), part)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=str(HERE.parent), help="the checkout to measure (default: this one)")
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--part", default="all,decode,apply")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    import generate

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "native-100000.jsonl")
        generate.write(path, 100_000)
        tree = os.path.abspath(args.tree)
        print(f"tree {tree}: {args.lines:,} lines, {args.passes} passes, batches of {BATCH}", flush=True)
        for part in args.part.split(","):
            base = collected(tree, path, args.lines, 0, part)
            total = collected(tree, path, args.lines, args.passes, part)
            print(f"  {part}: {(total - base) / (args.lines * args.passes):,.0f} instructions per line", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
