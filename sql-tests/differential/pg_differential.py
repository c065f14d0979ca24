#!/usr/bin/env python3
"""A differential test against PostgreSQL: random scalar expressions over every type Weir
supports (NULLs, casts, operators, string, numeric and date/time functions) run as
`SELECT expr` on Weir and on a real PostgreSQL, and every difference is counted and shown.

    python3 sql-tests/differential/pg_differential.py WEIR_BINARY [QUERIES=2000] [SEED=1] [--strict]

Weir is started by the script on a private port. PostgreSQL is reached at $PG_DSN if set;
otherwise one is initialised and started on a private port with the Debian `postgresql`
package (`apt-get install postgresql`; run as root, it runs the server as user
`postgres`). Results are compared as text, floats to 12 significant digits; an error is
compared by its SQLSTATE class (the first two characters). The report lists how many
queries ran, agreed and differed, and examples of each kind of difference.

Some differences are known and documented in docs/sql-reference.md ("Differences from
PostgreSQL"); `KNOWN` recognises them. With `--strict` the script exits 1 when any other
difference shows up: the test suite runs it that way (server/tests/differential.rs).
"""

import glob
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import psycopg


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_weir(binary, work):
    port = free_port()
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "weir")],
                            stderr=open(os.path.join(work, "weir.log"), "w"), env=dict(os.environ, WEIR_LOG="warn"))
    return proc, f"host=127.0.0.1 port={port} user=weir dbname=weir"


def connect_when_up(dsn, seconds=10):
    """A connection to a server that is starting: retried until it answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_postgres(work):
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql) and PG_DSN is not set")
    bin_dir, port = bins[-1], free_port()
    data = os.path.join(work, "pg")
    os.makedirs(data)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(work, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run([*as_postgres, f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, f"{bin_dir}/pg_ctl", "-D", data, "-o", f"-p {port} -k {work}", "-l",
                    os.path.join(work, "pg.log"), "-w", "start"], check=True, capture_output=True)
    stop = [*as_postgres, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]
    return stop, f"host=127.0.0.1 port={port} user=postgres dbname=postgres"


class Gen:
    """Random typed expressions. Every generator returns SQL of one type."""

    def __init__(self, rng, extra=None):
        self.r = rng
        # The generators added later draw from their own stream, and replace an expression
        # only after it was drawn from `r`: a seed's other queries stay as they were.
        self.extra = extra or random.Random(0)

    def sometimes(self, expression, probability, replacement):
        """`expression`, or with `probability` (drawn from `extra`) `replacement()`."""
        return replacement() if self.extra.random() < probability else expression

    def pick(self, *options):
        return self.r.choice(options)()

    def null(self, t):
        return f"CAST(NULL AS {t})"

    def int_(self, depth=0):
        r = self.r
        leaves = [lambda: str(r.randint(-100, 100)), lambda: str(r.choice([0, 1, -1, 2147483647, -2147483648])),
                  lambda: self.null("integer")]
        if depth > 2:
            return r.choice(leaves)()
        return self.pick(
            *leaves,
            lambda: f"({self.int_(depth + 1)} {r.choice(['+', '-', '*', '/', '%'])} {self.int_(depth + 1)})",
            lambda: f"abs({self.int_(depth + 1)})",
            lambda: f"length({self.text(depth + 1)})",
            lambda: f"CAST({self.numeric(depth + 1)} AS integer)",
            lambda: f"coalesce({self.int_(depth + 1)}, {self.int_(depth + 1)})",
            lambda: f"greatest({self.int_(depth + 1)}, {self.int_(depth + 1)})",
            lambda: f"CASE WHEN {self.bool_(depth + 1)} THEN {self.int_(depth + 1)} ELSE {self.int_(depth + 1)} END",
            lambda: f"extract(day FROM {self.timestamp(depth + 1)})::integer",
        )

    def bigint(self, depth=0):
        r = self.r
        if depth > 2:
            return str(r.choice([0, 9223372036854775807, -9223372036854775807, 10 ** 12, r.randint(-10 ** 6, 10 ** 6)]))
        return self.pick(
            lambda: f"CAST({self.int_(depth + 1)} AS bigint)",
            lambda: f"({self.bigint(depth + 1)} {r.choice(['+', '-', '*', '/'])} {self.bigint(depth + 1)})",
            lambda: str(r.randint(-10 ** 12, 10 ** 12)),
        )

    def numeric(self, depth=0):
        return self.sometimes(self.numeric_(depth), 0.03, self.large_quotient)

    def large_quotient(self):
        """A quotient of 10^8 or more, where Postgres keeps eight places, fewer than ten."""
        x = self.extra
        return f"({x.randint(2 * 10 ** 9, 2 * 10 ** 10)}.{x.randint(0, 99):02d} / {x.choice([11, 13, 17, 19])})"

    def numeric_(self, depth=0):
        r = self.r
        leaves = [lambda: f"{r.randint(-10 ** 6, 10 ** 6)}.{r.randint(0, 999):03d}", lambda: "0.1", lambda: "1e3",
                  lambda: self.null("numeric")]
        if depth > 2:
            return r.choice(leaves)()
        return self.pick(
            *leaves,
            lambda: f"({self.numeric(depth + 1)} {r.choice(['+', '-', '*', '/'])} {self.numeric(depth + 1)})",
            lambda: f"round({self.numeric(depth + 1)}, {r.randint(0, 4)})",
            lambda: f"abs({self.numeric(depth + 1)})",
            lambda: f"ceil({self.numeric(depth + 1)})",
            lambda: f"floor({self.numeric(depth + 1)})",
            lambda: f"CAST({self.int_(depth + 1)} AS numeric(12,2))",
            lambda: f"CAST({self.text_number()} AS numeric)",
        )

    def float8(self, depth=0):
        r = self.r
        if depth > 2:
            return r.choice(["1.5::float8", "CAST(0 AS double precision)", "-2.25::float8", self.null("float8")])
        return self.pick(
            lambda: f"CAST({self.numeric(depth + 1)} AS double precision)",
            lambda: f"({self.float8(depth + 1)} {r.choice(['+', '-', '*', '/'])} {self.float8(depth + 1)})",
            lambda: f"sqrt(abs({self.float8(depth + 1)}))",
        )

    def text_number(self):
        return "'" + self.r.choice(["12", "-3.5", "abc", "", " 7 ", "1e2", "0.000"]) + "'"

    def text(self, depth=0):
        return self.sometimes(self.text_(depth), 0.02, self.timestamp_as_text)

    def timestamp_as_text(self):
        return f"CAST(CAST({self.timestamp_text(wide_years=True)} AS {self.extra.choice(['timestamp', 'date'])}) AS text)"

    def text_(self, depth=0):
        r = self.r
        leaves = [lambda: "'" + r.choice(["abc", "", "Hello World", "ünï", "a'b".replace("'", "''"), "  x  "]) + "'",
                  lambda: self.null("text")]
        if depth > 2:
            return r.choice(leaves)()
        return self.pick(
            *leaves,
            lambda: f"({self.text(depth + 1)} || {self.text(depth + 1)})",
            lambda: f"upper({self.text(depth + 1)})",
            lambda: f"lower({self.text(depth + 1)})",
            lambda: f"substr({self.text(depth + 1)}, {r.randint(-1, 4)}, {r.randint(0, 3)})",
            lambda: f"replace({self.text(depth + 1)}, 'a', 'x')",
            lambda: f"trim({self.text(depth + 1)})",
            lambda: f"CAST({self.int_(depth + 1)} AS text)",
            lambda: f"CAST({self.numeric(depth + 1)} AS text)",
            lambda: f"CAST({self.bool_(depth + 1)} AS text)",
            lambda: f"concat({self.text(depth + 1)}, {self.int_(depth + 1)})",
            lambda: f"nullif({self.text(depth + 1)}, 'abc')",
            lambda: f"to_char({self.timestamp(depth + 1)}, '{r.choice(['YYYY-MM-DD', 'HH24:MI', 'FMMonth DD', 'Dy'])}')",
            lambda: f"to_char({self.numeric(depth + 1)}, '{r.choice(['999.99', 'FM9990.00', '99,999'])}')",
        )

    def bool_(self, depth=0):
        r = self.r
        leaves = [lambda: r.choice(["true", "false"]), lambda: self.null("boolean")]
        if depth > 2:
            return r.choice(leaves)()
        cmp = r.choice(["=", "<>", "<", "<=", ">", ">="])
        return self.pick(
            *leaves,
            lambda: f"({self.int_(depth + 1)} {cmp} {self.int_(depth + 1)})",
            lambda: f"({self.text(depth + 1)} {cmp} {self.text(depth + 1)})",
            lambda: f"({self.numeric(depth + 1)} {cmp} {self.numeric(depth + 1)})",
            lambda: f"({self.bool_(depth + 1)} {r.choice(['AND', 'OR'])} {self.bool_(depth + 1)})",
            lambda: f"(NOT {self.bool_(depth + 1)})",
            lambda: f"({self.text(depth + 1)} IS NULL)",
            lambda: f"({self.text(depth + 1)} LIKE '%a%')",
            lambda: f"({self.int_(depth + 1)} BETWEEN {self.int_(depth + 1)} AND {self.int_(depth + 1)})",
            lambda: f"({self.interval(depth + 1)} {cmp} {self.interval(depth + 1)})",
        )

    def timestamp(self, depth=0):
        return self.sometimes(self.timestamp_(depth), 0.1, lambda: f"CAST({self.timestamp_text()} AS timestamp)")

    def timestamp_text(self, wide_years=False):
        """Text read as a date or timestamp in Postgres' ISO forms: no seconds, a T, a date
        alone, more than six fractional digits, a zone, a date without dashes, and (shown
        as text) years of five digits and BC. Bad text is left to the .slt tests: an error
        in an operand that does not decide the result is a known difference of its own."""
        x = self.extra
        year = x.choice([x.randint(1900, 2100), x.randint(10000, 20000), x.randint(1, 300)]) if wide_years \
            else x.randint(1900, 2100)
        date = f"{year:04d}-{x.randint(1, 12):02d}-{x.randint(1, 28):02d}"
        time = f"{x.randint(0, 23):02d}:{x.randint(0, 59):02d}"
        seconds = f"{x.randint(0, 59):02d}"
        fraction = "".join(str(x.randint(0, 9)) for _ in range(x.randint(1, 9)))
        return "'" + x.choice([
            f"{date} {time}", f"{date}T{time}:{seconds}", date, f"{date} {time}:{seconds}.{fraction}",
            f"{date} {time}:{seconds}+02", f"{date.replace('-', '')} {time}",
            f"{date} {time} BC" if wide_years else date, "2020-01-01 24:00:00", "2020-12-31 23:59:59.9999996",
        ]) + "'"

    def timestamp_(self, depth=0):
        r = self.r
        leaves = [lambda: f"TIMESTAMP '20{r.randint(0, 30):02d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
                          f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}'",
                  lambda: self.null("timestamp")]
        if depth > 2:
            return r.choice(leaves)()
        return self.pick(
            *leaves,
            lambda: f"({self.timestamp(depth + 1)} + {self.interval(depth + 1)})",
            lambda: f"({self.timestamp(depth + 1)} - {self.interval(depth + 1)})",
            lambda: f"date_trunc('{r.choice(['day', 'month', 'hour', 'year'])}', {self.timestamp(depth + 1)})",
        )

    def interval(self, depth=0):
        r = self.r
        return r.choice([f"INTERVAL '{r.randint(0, 48)} hours'", f"INTERVAL '{r.randint(0, 40)} days'",
                         "INTERVAL '1 mon'", f"INTERVAL '{r.randint(0, 90)} minutes'", self.null("interval")])

    def expression(self):
        return self.pick(self.int_, self.bigint, self.numeric, self.float8, self.text, self.bool_, self.timestamp)


def run(conn, sql):
    """("ok", value as text) or ("error", SQLSTATE class), and the error's message."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
        value = row[0] if row else None
        if isinstance(value, float):
            value = float(f"{value:.12g}")
        return ("ok", str(value)), ""
    except psycopg.Error as e:
        return ("error", (e.sqlstate or "?????")[:2]), (e.diag.message_primary or "")


def as_decimal(text):
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


def same_number_other_scale(weir, pg, _pg_message):
    """Unconstrained numeric keeps no per-value display scale in Weir: 0 for 0.000."""
    a, b = as_decimal(weir[1]), as_decimal(pg[1])
    return weir[0] == pg[0] == "ok" and a is not None and b is not None and a == b


def quotient_to_fewer_places(weir, pg, _pg_message):
    """A numeric quotient has ten places in Weir (rounded half away from zero); Postgres
    gives it at least 16 significant digits."""
    a, b = as_decimal(weir[1]), as_decimal(pg[1])
    if weir[0] != "ok" or pg[0] != "ok" or a is None or b is None or a == b:
        return False
    # Weir prints unconstrained numeric without trailing zeros, so compare at ten places.
    return -a.as_tuple().exponent <= 10 and b.quantize(Decimal(1).scaleb(-10), rounding=ROUND_HALF_UP) == a


def null_result_without_error(weir, pg, _pg_message):
    """An expression whose result is NULL anyway is folded to NULL before its other
    operands are evaluated, so their errors (bad text, overflow) are not raised."""
    return weir == ("ok", "None") and pg[0] == "error"


# Differences docs/sql-reference.md explains, by name.
KNOWN = {
    "display scale of unconstrained numeric": same_number_other_scale,
    "scale of numeric quotients": quotient_to_fewer_places,
    "errors beside a NULL result": null_result_without_error,
}


def known_difference(weir, pg, pg_message):
    return next((name for name, test in KNOWN.items() if test(weir, pg, pg_message)), None)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    strict = "--strict" in sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    binary = args[0]
    queries = int(args[1]) if len(args) > 1 else 2000
    seed = int(args[2]) if len(args) > 2 else 1
    work = tempfile.mkdtemp(prefix="pgdiff-")
    weir, weir_dsn = start_weir(binary, work)
    stop_pg, pg_dsn = (None, os.environ["PG_DSN"]) if os.environ.get("PG_DSN") else start_postgres(work)
    unexplained = 0
    try:
        w = connect_when_up(weir_dsn)
        p = psycopg.connect(pg_dsn, autocommit=True)
        gen = Gen(random.Random(seed), random.Random(-seed))
        kinds, examples = Counter(), {}
        agreed = 0
        for _ in range(queries):
            sql = f"SELECT {gen.expression()}"
            (a, _), (b, pg_message) = run(w, sql), run(p, sql)
            if a == b:
                agreed += 1
                continue
            kind = {("ok", "ok"): "different value", ("error", "error"): "different error class",
                    ("ok", "error"): "Weir answers, Postgres errors",
                    ("error", "ok"): "Weir errors, Postgres answers"}[(a[0], b[0])]
            known = known_difference(a, b, pg_message)
            kind = f"known: {known}" if known else f"UNEXPLAINED: {kind}"
            unexplained += 0 if known else 1
            kinds[kind] += 1
            examples.setdefault(kind, []).append((sql, a, b))
        print(f"{queries} queries (seed {seed}): {agreed} agreed, {queries - agreed} differed "
              f"({queries - agreed - unexplained} known differences, {unexplained} unexplained)")
        for kind, n in kinds.most_common():
            print(f"\n{kind}: {n}")
            for sql, a, b in examples[kind][:5 if kind.startswith("known") else 20]:
                print(f"  {sql}\n    weir: {a}\n    postgres: {b}")
    finally:
        weir.kill()
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    if strict and unexplained:
        sys.exit(1)


if __name__ == "__main__":
    main()
