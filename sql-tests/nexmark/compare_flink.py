#!/usr/bin/env python3
"""Weir and Apache Flink on the same Nexmark CSV files, in one sitting: for each query,
ROUNDS rounds of (Flink run, Weir run) alternated, then the median of each side.

    python3 sql-tests/nexmark/compare_flink.py PREFIX [QUERIES=q3,q4,q8,q9] [ROUNDS=3] [PARALLELISM=1]

PREFIX is what ../shared/peers/flink/gen_nexmark.py --out-prefix wrote (PREFIX_person.csv,
PREFIX_auction.csv, PREFIX_bid.csv). The queries over bids alone (q0, q1, q2, q5, q7) read
PREFIX_bid.csv on both sides, so a bids file from gen_bids.py named PREFIX_bid.csv serves
them too. Weir runs `bench_nexmark` (build it first with
`cargo build --release -p weir-server --example bench_nexmark`), one process per run, so
each run's peak RSS is its own. Flink runs `run_flink.py` from the peer folder
(FLINK_PEER, default ../shared/peers/flink) with the Python of FLINK_PYTHON (default
~/flink-venv/bin/python).

Both count events as the rows of all three files over the job's running time (Flink's
`net_s`: JVM start and planning excluded; Weir's: from CREATE SINK to the last row at the
sink). CPU seconds are the whole process's (Flink's JVM includes its start-up).

Before every run the query's input files are read once, so both sides read them from the
page cache: on this kind of machine a file evicted by other work is read from disk at
about 360 MB/s, which costs a run more than its CPU does.
"""

import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Queries over the three files; the others (q0, q1, q2, q5, q7) read the bids alone.
JOIN_QUERIES = {"q3", "q4", "q7_join", "q8", "q9"}


def inputs(query, prefix):
    """The files `query` reads."""
    if query in JOIN_QUERIES:
        return [f"{prefix}_{table}.csv" for table in ("person", "auction", "bid")]
    return [f"{prefix}_bid.csv"]


def warm(files):
    """Reads `files` once, into the page cache."""
    for path in files:
        with open(path, "rb") as f:
            while f.read(16 << 20):
                pass


def weir_run(binary, query, prefix, parallelism):
    source = prefix if query in JOIN_QUERIES else f"{prefix}_bid.csv"
    # One split per file, as Flink's file source reads it (Weir's default split.size is
    # 1 GB, and the 10 M-bid file is 1.29 GB).
    out = subprocess.run([binary, query, source, "0", str(parallelism), "4GB"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == query:
            # | query | rows read | events | seconds | events/s | CPU s per M events | peak RSS MB |
            return {"seconds": float(cells[3]), "events_per_s": float(cells[4]),
                    "cpu_s_per_m": float(cells[5]), "rss_mb": float(cells[6])}
    raise RuntimeError(f"no result for {query} in:\n{out}")


def flink_run(python, peer, query, prefix, parallelism):
    out = subprocess.run([python, os.path.join(peer, "run_flink.py"), query, f"{prefix}_bid.csv",
                          "--person", f"{prefix}_person.csv", "--auction", f"{prefix}_auction.csv",
                          "-p", str(parallelism), "--sink", "blackhole"],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    events = result["rows"]
    return {"seconds": result["net_s"], "events_per_s": result["events_per_s_net"],
            "cpu_s_per_m": result["jvm_cpu_s"] / (events / 1e6), "rss_mb": result["jvm_hwm_mb"]}


def main():
    prefix = sys.argv[1]
    queries = (sys.argv[2] if len(sys.argv) > 2 else "q3,q4,q8,q9").split(",")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    parallelism = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/weir-target"))
    binary = os.path.join(target, "release", "examples", "bench_nexmark")
    peer = os.environ.get("FLINK_PEER", os.path.join(ROOT, "..", "shared", "peers", "flink"))
    python = os.environ.get("FLINK_PYTHON", os.path.expanduser("~/flink-venv/bin/python"))
    print(f"prefix {prefix}, parallelism {parallelism}, {rounds} rounds, load {os.getloadavg()[0]:.1f}")
    print("| query | Weir events/s | Flink events/s | ratio | Weir CPU s/M ev | Flink CPU s/M ev "
          "| Weir peak RSS MB | Flink peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for query in queries:
        weir, flink = [], []
        for _ in range(rounds):
            warm(inputs(query, prefix))
            flink.append(flink_run(python, peer, query, prefix, parallelism))
            warm(inputs(query, prefix))
            weir.append(weir_run(binary, query, prefix, parallelism))
        med = lambda runs, key: statistics.median(r[key] for r in runs)
        w, f = med(weir, "events_per_s"), med(flink, "events_per_s")
        print(f"| {query} | {w:,.0f} | {f:,.0f} | {w / f:.1f}x | {med(weir, 'cpu_s_per_m'):.2f} "
              f"| {med(flink, 'cpu_s_per_m'):.2f} | {med(weir, 'rss_mb'):.0f} | {med(flink, 'rss_mb'):.0f} |",
              flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
