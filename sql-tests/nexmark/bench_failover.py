#!/usr/bin/env python3
"""Failover time with large state: kill -9 the TaskManager that holds about STATE_MB of
keyed state, and time how long until the job commits an epoch again.

    python3 sql-tests/nexmark/bench_failover.py WEIR_BINARY [STATE_MB=1024] [ROUNDS=3]

A JobManager and two TaskManagers (2 slots each) on this host, RocksDB state, checkpoints
to a local directory every CHECKPOINT_S seconds, a heartbeat timeout of 1 s and a restart
backoff of 200 ms. The job: every generated bid is a group of its own, so the state grows
with the input until it reaches STATE_MB on one TaskManager,

    CREATE SINK big AS SELECT auction, bidder, date_time, max(extra) AS extra
                       FROM bid GROUP BY auction, bidder, date_time
                       WITH (connector = 'blackhole')

at parallelism 1 (so that one TaskManager holds all of it). Once a checkpoint of that state
is complete, the TaskManager is killed and a new one started in its place. Reported: the
state and checkpoint sizes, the time from the kill to the first committed epoch of the job
(the recovery time), and its parts as the logs show them (loss detected, state restored).
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg

from bench_cluster import free_port

CHECKPOINT_S = 5


def query(c, sql):
    return c.execute(sql).fetchall()


def one_round(binary, state_mb):
    with tempfile.TemporaryDirectory() as work:
        port, rpc = free_port(), free_port()
        config = os.path.join(work, "weir.toml")
        with open(config, "w") as f:
            f.write(f'state.backend = "rocksdb"\ncheckpoint.interval = "{CHECKPOINT_S}s"\n'
                    f'checkpoint.dir = "file://{work}/checkpoints"\n[restart]\nbackoff = "200ms"\n'
                    f'[cluster]\nheartbeat_timeout_ms = 1000\n')
        logs = {name: os.path.join(work, f"{name}.log") for name in ("jm", "tm0", "tm1", "tm2")}
        env = dict(os.environ, WEIR_LOG="info")
        jm = subprocess.Popen([binary, "--config", config, "--listen", f"127.0.0.1:{port}", "--data-dir",
                               os.path.join(work, "jm"), "jobmanager", "--rpc", f"127.0.0.1:{rpc}"],
                              stderr=open(logs["jm"], "w"), env=env)
        data_ports = {}

        def taskmanager(name):
            data_ports[name] = free_port()
            return subprocess.Popen([binary, "--config", config, "taskmanager", "--jobmanager", f"127.0.0.1:{rpc}",
                                     "--slots", "2", "--data-dir", os.path.join(work, name),
                                     "--listen-data", f"127.0.0.1:{data_ports[name]}"],
                                    stderr=open(logs[name], "w"), env=env)

        tms = {name: taskmanager(name) for name in ("tm0", "tm1")}
        try:
            deadline = time.time() + 60
            while True:
                try:
                    c = psycopg.connect(host="127.0.0.1", port=port, user="weir", dbname="weir", autocommit=True)
                    if query(c, "SELECT count(*) FROM weir_catalog.taskmanagers WHERE role = 'worker'")[0][0] == 2:
                        break
                    c.close()
                except psycopg.OperationalError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError("the cluster did not start")
                time.sleep(0.2)
            c.execute("""CREATE SOURCE bid (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP,
                         extra VARCHAR) WITH (connector = 'nexmark', nexmark.table.type = 'Bid',
                         nexmark.event.num = '1000000000')""")
            c.execute("SET streaming_parallelism = 1")
            c.execute("""CREATE SINK big AS SELECT auction, bidder, date_time, max(extra) AS extra
                         FROM bid GROUP BY auction, bidder, date_time WITH (connector = 'blackhole')""")
            # Grow the state, then stop reading (so that the checkpoint and the kill see one
            # size) by waiting for a complete checkpoint at least as large as wanted.
            while True:
                done = query(c, "SELECT coalesce(max(bytes), 0) FROM weir_catalog.checkpoints "
                                "WHERE status = 'completed'")[0][0]
                if done >= state_mb * 1024 * 1024:
                    break
                time.sleep(0.5)
            holder = query(c, """SELECT m.address, t.state_bytes FROM weir_catalog.tasks t
                                 JOIN weir_catalog.taskmanagers m ON t.taskmanager = m.id
                                 WHERE t.job = 'big' AND t.operators LIKE '%HashAggregate%'""")[0]
            victim = next(n for n, p in data_ports.items() if holder[0].endswith(f":{p}"))
            before = query(c, "SELECT last_committed_epoch FROM weir_catalog.jobs WHERE view = 'big'")[0][0]
            killed = time.time()
            tms[victim].send_signal(signal.SIGKILL)
            tms[victim].wait()
            tms["tm2"] = taskmanager("tm2")
            while True:
                now = query(c, "SELECT last_committed_epoch, status FROM weir_catalog.jobs WHERE view = 'big'")[0]
                if now[0] is not None and now[0] > before and now[1] == "running":
                    break
                if time.time() - killed > 300:
                    raise RuntimeError("no commit within 300 s of the kill")
                time.sleep(0.05)
            recovery = time.time() - killed
            jm_log = open(logs["jm"]).read()
            restored = [int(m) for name in ("tm0", "tm1", "tm2") if name != victim
                        for m in re.findall(r"task state restored.*?elapsed_ms=(\d+)", open(logs[name]).read())]
            return {
                "checkpoint_mb": done / 1024 / 1024,
                "state_mb": (holder[1] or 0) / 1024 / 1024,
                "recovery_s": recovery,
                "restore_ms": max(restored) if restored else None,
                "lost_logged": "taskmanager lost" in jm_log,
            }
        finally:
            for p in [jm, *tms.values()]:
                p.kill()
                p.wait()


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    binary = sys.argv[1]
    state_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    results = []
    for i in range(rounds):
        r = one_round(binary, state_mb)
        results.append(r)
        print(f"round {i + 1}: checkpoint {r['checkpoint_mb']:.0f} MB, task state {r['state_mb']:.0f} MB, "
              f"recovery {r['recovery_s']:.2f} s (largest restore {r['restore_ms']} ms)", flush=True)
    print(f"median recovery: {statistics.median(r['recovery_s'] for r in results):.2f} s over {rounds} kills")


if __name__ == "__main__":
    main()
