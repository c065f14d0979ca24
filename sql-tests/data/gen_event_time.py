#!/usr/bin/env python3
"""Generates sql-tests/data/bids_diff.csv for event_time_differential.slt.

3000 bids, deterministic (fixed LCG, standard library only). Bid i has the nominal time
2024-01-01 00:00:00 + i * 100 ms and an actual event time up to 2.999 s earlier, so the
file is out of order by less than 3 s: with a watermark of `date_time - INTERVAL '4' SECOND`
no row is ever late. Times have millisecond fractions. Columns (no header):
auction, bidder, price, channel, date_time.

Run: python3 sql-tests/data/gen_event_time.py  (rewrites the file next to this script)
"""
import datetime
import os

N = 3000
BASE = datetime.datetime(2024, 1, 1)


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def main():
    rnd = lcg(42)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bids_diff.csv")
    with open(out, "w", newline="\n") as f:
        for i in range(N):
            jitter_ms = next(rnd) % 3000
            t = BASE + datetime.timedelta(milliseconds=i * 100 - jitter_ms)
            auction = 1000 + next(rnd) % 12
            bidder = 2000 + next(rnd) % 50
            price = 100 + next(rnd) % 10000
            channel = ["Google", "Facebook", "Baidu", "Apple"][next(rnd) % 4]
            ts = t.strftime("%Y-%m-%d %H:%M:%S") + ".%03d" % (t.microsecond // 1000)
            f.write(f"{auction},{bidder},{price},{channel},{ts}\n")


if __name__ == "__main__":
    main()
