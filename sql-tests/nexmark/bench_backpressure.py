#!/usr/bin/env python3
"""Backpressure across processes: a sink that can only write RATE_KB kilobytes per second
slows the sources on the other TaskManager, and no process buffers without bound.

    python3 sql-tests/nexmark/bench_backpressure.py WEIR_BINARY [EVENTS=1000000] [RATE_KB=4096]

A JobManager and two TaskManagers (4 slots each) on this host. The generator's `bid` source
with 2 splits is read twice and the two streams are unioned into a file sink of
parallelism 2:

    CREATE SINK out AS SELECT auction, bidder, price, date_time FROM bid
                       UNION ALL SELECT auction, bidder, price, date_time FROM bid

The union hash-exchanges every row from the four readers to its two subtasks, which the
slot placement puts on both TaskManagers, so rows cross processes. Each sink subtask
writes a named pipe that this script drains at RATE_KB / 2 per pipe: a downstream system
slower than Weir. The same job then runs with the pipes drained as fast as possible. For
both it prints the rate the sources read at (sampled from weir_catalog.sources every
second), what the sink wrote, the CPU used and the peak RSS of each process (VmHWM).
Checkpoints are off (a pipe has no length to checkpoint).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

from bench_cluster import cpu_seconds, free_port, peak_rss_mb

def drain(path, bytes_per_s, counter, stop):
    """Reads the pipe at `path`, at most `bytes_per_s` (None: as fast as it comes)."""
    with open(path, "rb", buffering=0) as pipe:
        started = time.time()
        while not stop.is_set():
            chunk = pipe.read(65536)
            if not chunk:
                return
            counter[0] += len(chunk)
            if bytes_per_s:
                ahead = counter[0] / bytes_per_s - (time.time() - started)
                if ahead > 0:
                    time.sleep(ahead)


def start_cluster(binary, work):
    port, rpc = free_port(), free_port()
    config = os.path.join(work, "weir.toml")
    with open(config, "w") as f:
        f.write(f'checkpoint.interval = "off"\n[file]\nallowed_dirs = ["{work}"]\n')
    log = open(os.path.join(work, "cluster.log"), "a")
    env = dict(os.environ, WEIR_LOG="warn")
    jm = subprocess.Popen([binary, "--config", config, "--listen", f"127.0.0.1:{port}", "--data-dir",
                           os.path.join(work, "jm"), "jobmanager", "--rpc", f"127.0.0.1:{rpc}"], stderr=log, env=env)
    procs = [jm]
    for i in range(2):
        procs.append(subprocess.Popen([binary, "--config", config, "taskmanager", "--jobmanager", f"127.0.0.1:{rpc}",
                                       "--slots", "4", "--data-dir", os.path.join(work, f"tm{i}")],
                                      stderr=log, env=env))
    deadline = time.time() + 60
    while True:
        try:
            c = psycopg.connect(host="127.0.0.1", port=port, user="weir", dbname="weir", autocommit=True)
            n = c.execute("SELECT count(*) FROM weir_catalog.taskmanagers WHERE role = 'worker' "
                          "AND state = 'active'").fetchone()[0]
            if n == 2:
                return c, procs
            c.close()
        except psycopg.OperationalError:
            pass
        if time.time() > deadline:
            raise RuntimeError("the cluster did not start")
        time.sleep(0.2)


def run(binary, events, rate):
    with tempfile.TemporaryDirectory() as work:
        pipes = [os.path.join(work, "out.csv"), os.path.join(work, "out.csv.1")]
        for p in pipes:
            os.mkfifo(p)
        stop = threading.Event()
        counters = [[0] for _ in pipes]
        readers = [threading.Thread(target=drain, args=(p, rate and rate / len(pipes), n, stop), daemon=True)
                   for p, n in zip(pipes, counters)]
        for r in readers:
            r.start()
        c, procs = start_cluster(binary, work)
        try:
            c.execute(f"""CREATE SOURCE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR,
                url VARCHAR, date_time TIMESTAMP, extra VARCHAR)
                WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '{events}',
                      nexmark.split.num = '2')""")
            c.execute("SET streaming_parallelism = 2")
            cpu0 = sum(cpu_seconds(p.pid) for p in procs)
            t0 = time.time()
            c.execute(f"""CREATE SINK out AS SELECT auction, bidder, price, date_time FROM bid
                          UNION ALL SELECT auction, bidder, price, date_time FROM bid
                          WITH (connector = 'file', path = '{pipes[0]}', format = 'csv')""")
            places = c.execute("SELECT operators, taskmanager FROM weir_catalog.tasks ORDER BY vertex, subtask").fetchall()
            samples = []
            while True:
                rows = c.execute("SELECT sum(rows_read), bool_and(status = 'finished') FROM weir_catalog.sources "
                                 "WHERE job IS NOT NULL").fetchone()
                samples.append((time.time() - t0, int(rows[0] or 0)))
                if rows[1]:
                    break
                time.sleep(1.0)
            c.execute("FLUSH")
            seconds = time.time() - t0
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
            rss = [round(peak_rss_mb(p.pid)) for p in procs]
        finally:
            stop.set()
            for p in procs:
                p.kill()
                p.wait()
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[1:]) if b[0] > a[0]]
    return {
        "seconds": seconds,
        "read_rows_per_s": statistics.median(rates) if rates else 0,
        "sink_kb_per_s": sum(n[0] for n in counters) / 1024 / seconds,
        "cpu_s": cpu,
        "rss_mb": rss,
        "places": places,
    }


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    binary = sys.argv[1]
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rate_kb = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    print("| sink | seconds | source rows/s (median of 1 s samples) | sink KB/s | CPU s | peak RSS MB (JM + TM + TM) |")
    print("|---|---|---|---|---|---|")
    for label, rate in ((f"drained at {rate_kb} KB/s", rate_kb * 1024), ("drained as fast as possible", None)):
        r = run(binary, events, rate)
        print(f"| {label} | {r['seconds']:.1f} | {r['read_rows_per_s']:,.0f} | {r['sink_kb_per_s']:,.0f} | "
              f"{r['cpu_s']:.1f} | {' + '.join(map(str, r['rss_mb']))} |", flush=True)
    print("placement:", r["places"])


if __name__ == "__main__":
    main()
