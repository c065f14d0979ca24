#!/usr/bin/env python3
"""Nexmark queries on standalone Weir and on a cluster (1 JobManager + 2 TaskManagers) on
this host, in one sitting: for each query, ROUNDS rounds of (standalone run, cluster run)
alternated, then the median of each side.

    python3 sql-tests/nexmark/bench_cluster.py WEIR_BINARY [QUERIES=q0,q5,q7] [EVENTS=10000000]
        [ROUNDS=3] [PARALLELISM=2]

WEIR_BINARY is an optimized build (`cargo build --profile optimized --bin weir`). Each run
starts fresh processes with the same configuration (state in memory, checkpoints every
second), creates the built-in generator's `bid` source with PARALLELISM splits and the
query's sink at PARALLELISM, and times from CREATE SINK until every split has read its
events and a FLUSH after that has committed. CPU seconds are summed over every process of
the run (/proc/PID/stat), peak RSS is each process's own (VmHWM). What the cluster adds is
the exchange between processes: q0 chains source and sink in one task (no exchange at
all), while q5 and q7 hash-exchange their rows between subtasks, which the cluster's slot
placement puts on both TaskManagers, so about half of those rows cross a process.
"""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def start(binary, mode, work):
    """Starts a standalone server or a cluster; returns (pg port, [processes]). The
    environment variable BENCH_CONFIG, if set, is TOML every process reads."""
    port = free_port()
    config = []
    if os.environ.get("BENCH_CONFIG"):
        path = os.path.join(work, "bench.toml")
        with open(path, "w") as f:
            f.write(os.environ["BENCH_CONFIG"].replace("\\n", "\n"))
        config = ["--config", path]
    binary = [binary, *config]
    log = open(os.path.join(work, f"{mode}.log"), "a")
    env = dict(os.environ, WEIR_LOG="warn")
    if mode == "standalone":
        proc = subprocess.Popen([*binary, "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "data")],
                                stderr=log, env=env)
        wait_port(port, proc, "weir")
        return port, [proc]
    rpc = free_port()
    jm = subprocess.Popen([*binary, "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "jm"),
                           "jobmanager", "--rpc", f"127.0.0.1:{rpc}"], stderr=log, env=env)
    procs = [jm]
    for i in range(2):
        procs.append(subprocess.Popen([*binary, "taskmanager", "--jobmanager", f"127.0.0.1:{rpc}", "--slots", "8",
                                       "--data-dir", os.path.join(work, f"tm{i}")], stderr=log, env=env))
    wait_port(port, jm, "jobmanager")
    with psycopg.connect(host="127.0.0.1", port=port, user="weir", dbname="weir", autocommit=True) as c:
        deadline = time.time() + 60
        while time.time() < deadline:
            n = c.execute("SELECT count(*) FROM weir_catalog.taskmanagers "
                          "WHERE role = 'worker' AND state = 'active'").fetchone()[0]
            if n == 2:
                break
            time.sleep(0.1)
    return port, procs


def run(binary, mode, query, events, parallelism):
    with tempfile.TemporaryDirectory() as work:
        port, procs = start(binary, mode, work)
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="weir", dbname="weir", autocommit=True) as c:
                source = open(os.path.join(HERE, "source_generator.sql")).read()
                c.execute(source.replace("__EVENTS__", str(events)).replace("__SPLITS__", str(parallelism)))
                c.execute(f"SET streaming_parallelism = {parallelism}")
                sink = open(os.path.join(HERE, f"{query}.sql")).read()
                cpu0 = sum(cpu_seconds(p.pid) for p in procs)
                t0 = time.time()
                c.execute(sink)
                while True:
                    rows = c.execute("SELECT status FROM weir_catalog.sources WHERE job IS NOT NULL").fetchall()
                    if len(rows) == parallelism and all(r[0] == "finished" for r in rows):
                        break
                    time.sleep(0.05)
                c.execute("FLUSH")
                seconds = time.time() - t0
                cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
                rss = [round(peak_rss_mb(p.pid)) for p in procs]
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return {"seconds": seconds, "events_per_s": events / seconds, "cpu_s_per_m": cpu / (events / 1e6), "rss_mb": rss}


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    binary = sys.argv[1]
    queries = (sys.argv[2] if len(sys.argv) > 2 else "q0,q5,q7").split(",")
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000_000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    parallelism = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    print(f"| query | mode | events/s (median of {rounds}) | CPU s per M events | peak RSS MB per process | runs (events/s) |")
    print("|---|---|---|---|---|---|")
    for query in queries:
        results = {"standalone": [], "cluster": []}
        for _ in range(rounds):
            for mode in ("standalone", "cluster"):
                results[mode].append(run(binary, mode, query, events, parallelism))
        for mode, runs in results.items():
            eps = statistics.median(r["events_per_s"] for r in runs)
            cpu = statistics.median(r["cpu_s_per_m"] for r in runs)
            rss = max(runs, key=lambda r: sum(r["rss_mb"]))["rss_mb"]
            each = ", ".join(f"{r['events_per_s']:,.0f}" for r in runs)
            print(f"| {query} | {mode} | {eps:,.0f} | {cpu:.2f} | {' + '.join(map(str, rss))} | {each} |", flush=True)


if __name__ == "__main__":
    main()
