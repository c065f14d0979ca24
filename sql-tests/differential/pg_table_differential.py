#!/usr/bin/env python3
"""A differential test over tables, against PostgreSQL: the same tables (a column of every
type Weir supports, with NULLs, duplicates, negative numbers, empty strings and values at
the types' limits) and the same random rows in Weir and in a real PostgreSQL, then random
queries over them (aggregates with FILTER and DISTINCT, GROUP BY expressions, HAVING,
DISTINCT, ORDER BY ... NULLS FIRST/LAST with LIMIT, CASE, casts, string and date/time
functions, inner and left joins, subqueries in FROM) run on both and compared.

    python3 sql-tests/differential/pg_table_differential.py WEIR_BINARY [QUERIES=500] [SEED=1] [--strict]

Each query runs three ways: as a batch SELECT on both; as `CREATE MATERIALIZED VIEW` in
Weir (when Weir accepts it as a view), whose contents must equal PostgreSQL's batch
answer; and, after random INSERT, UPDATE and DELETE statements applied to both servers
(retractions), the view again against PostgreSQL's new batch answer. After every round of
writes the tables themselves are compared too.

Results are compared as multisets of rows, in order only where ORDER BY decides the whole
order (the queries order by every output column). Values are compared as text, floats to
12 significant digits (`real` to 6); an error is compared by its SQLSTATE class. The start-up
of both servers and the scalar expression generator come from pg_differential.py. The report
counts the queries and comparisons, and shows examples of every kind of difference.

Differences docs/sql-reference.md explains ("Differences from PostgreSQL") are recognised by
the KNOWN lists, `VALUE_VIEWS` (answers that agree under a looser reading of the values) and
`KNOWN_ERRORS` (an error on one side); with `--strict` the script exits 1 when any other
difference shows up (the test suite runs it that way: server/tests/differential.rs).
"""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, getcontext

import psycopg
from psycopg.postgres import types as pg_types
from psycopg.types.string import TextLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_differential as scalar  # noqa: E402  (the start-up helpers and the scalar generator)

# Column categories: what an expression of a column's type may be combined with.
CATEGORY = {
    "smallint": "int", "integer": "int", "bigint": "int",
    "numeric(10,2)": "num", "numeric(8,3)": "num", "numeric": "num",
    "real": "float", "double precision": "float",
    "text": "text", "varchar(10)": "text",
    "boolean": "bool", "date": "date", "timestamp": "ts", "timestamptz": "tstz", "interval": "iv",
}

# t1 has no primary key (duplicate rows), t2 has one; both share `k` to join on.
TABLES = {
    "t1": [("k", "integer"), ("a", "smallint"), ("b", "integer"), ("c", "bigint"), ("d", "numeric(10,2)"),
           ("e", "numeric"), ("f", "real"), ("g", "double precision"), ("s", "text"), ("v", "varchar(10)"),
           ("bo", "boolean"), ("dt", "date"), ("ts", "timestamp"), ("tz", "timestamptz"), ("iv", "interval")],
    "t2": [("k", "integer"), ("x", "integer"), ("m", "numeric(8,3)"), ("s", "text"), ("dt", "date"),
           ("bo", "boolean")],
}
PRIMARY_KEY = {"t2": "k"}

FLOAT4, FLOAT8, NUMERIC, INTERVAL = 700, 701, 1700, 1186
getcontext().prec = 200  # room for numeric's digits when values are rounded to compare
TEXTUAL = {25, 1043}  # text and varchar print alike


class Values:
    """Random column values as SQL literals: NULLs, duplicates, limits, special values."""

    def __init__(self, rng):
        self.r = rng

    def literal(self, sql_type):
        r = self.r
        if r.random() < 0.12:
            return "NULL"
        choices = {
            "smallint": lambda: r.choice([str(r.randint(-5, 5)), str(r.randint(-1000, 1000)), "32767", "-32768"]),
            "integer": lambda: r.choice([str(r.randint(-5, 5)), str(r.randint(-10 ** 6, 10 ** 6)), "2147483647",
                                         "-2147483648", "0"]),
            "bigint": lambda: r.choice([str(r.randint(-5, 5)), str(r.randint(-10 ** 15, 10 ** 15)),
                                        "9223372036854775807", "-9223372036854775808", "0"]),
            "numeric(10,2)": lambda: r.choice([f"{r.randint(-10 ** 7, 10 ** 7) / 100:.2f}", "0.00", "-0.01", "1.50",
                                               "99999999.99", "-99999999.99"]),
            "numeric(8,3)": lambda: r.choice([f"{r.randint(-10 ** 6, 10 ** 6) / 1000:.3f}", "0.5", "-2.125"]),
            "numeric": lambda: r.choice([f"{r.randint(-10 ** 6, 10 ** 6)}.{r.randint(0, 9999):04d}", "2.0", "0.000",
                                         "-0.0000000001", str(r.randint(-9, 9)), "123456789012345678.5"]),
            "real": lambda: r.choice([f"{r.randint(-1000, 1000) / 8}", "0.1", "-2.5", "3.4e38", "1e-30", "0"]),
            "double precision": lambda: r.choice([f"{r.randint(-10 ** 6, 10 ** 6) / 16}", "0.1", "1e300", "-1e-300",
                                                  "0", "2.5"]),
            "text": lambda: "'" + r.choice(["", "abc", "ABC", "a b", "ünï", " x ", "abc", "Zeta", "a'b"]).replace(
                "'", "''") + "'",
            "varchar(10)": lambda: "'" + r.choice(["", "abc", "xyz", "Abc", "0123456789", "é"]) + "'",
            "boolean": lambda: r.choice(["true", "false"]),
            "date": lambda: "'" + r.choice([f"20{r.randint(0, 30):02d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                                            "1999-12-31", "2000-02-29", "1600-01-01", "2400-12-31"]) + "'",
            "timestamp": lambda: "'" + self.timestamp() + "'",
            "timestamptz": lambda: "'" + self.timestamp() + r.choice(["+00", "+02", "-05:30", ""]) + "'",
            "interval": lambda: "'" + r.choice(["1 day", "24 hours", "1 mon", "30 days", "-3 hours", "0.5 seconds",
                                                "1 year 2 mons", f"{r.randint(-50, 50)} minutes",
                                                f"{r.randint(0, 10)} days {r.randint(0, 23)} hours"]) + "'",
        }
        # Quoted: a number written as a literal would be a `numeric` first (1e300 has no
        # Decimal128 in Weir), where the quoted text is read as the column's type directly.
        text = choices[sql_type]()
        return f"CAST({text if text.startswith(chr(39)) else repr(text)} AS {sql_type})"

    def timestamp(self):
        r = self.r
        stamp = f"20{r.randint(0, 30):02d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} " \
                f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
        return r.choice([stamp, stamp, f"{stamp}.{r.randint(0, 999999):06d}", "2000-01-01 00:00:00"])

    def row(self, table, key=None):
        """A row; `key` is t2's primary key, and t1's `k` mostly one of t2's to join."""
        def value(name, sql_type):
            if name == PRIMARY_KEY.get(table):
                return str(key)
            if name == "k" and self.r.random() < 0.85:
                return str(self.r.randint(0, 15))
            return self.literal(sql_type)
        return "(" + ", ".join(value(name, sql_type) for name, sql_type in TABLES[table]) + ")"


class Relation:
    """A FROM item and the columns it offers: (SQL reference, category)."""

    def __init__(self, sql, columns):
        self.sql, self.columns = sql, columns

    def of(self, category):
        return [ref for ref, c in self.columns if c == category]


def table_relation(table, qualify=False):
    return Relation(table, [(f"{table}.{name}" if qualify else name, CATEGORY[t]) for name, t in TABLES[table]])


class QueryGen:
    """Random queries over the tables. Scalar subexpressions come from pg_differential's
    generator, whose NULL leaves become column references here."""

    def __init__(self, rng):
        self.r = rng
        self.scalar = scalar.Gen(rng, random.Random(rng.random()))
        self.scalar.null = self.column_or_null
        self.rel = None

    # -- scalar expressions over the relation's columns -----------------------------------

    def column_or_null(self, sql_type):
        category = {"integer": "int", "numeric": "num", "float8": "float", "text": "text", "boolean": "bool",
                    "timestamp": "ts", "interval": "iv"}.get(sql_type)
        columns = self.rel.of(category) if self.rel and category else []
        if columns and self.r.random() < 0.9:
            return self.r.choice(columns)
        return f"CAST(NULL AS {sql_type})"

    def expr(self, category, depth=0):
        r = self.r
        columns = self.rel.of(category)
        if columns and (depth >= 2 or r.random() < 0.45):
            return r.choice(columns)
        if depth >= 2 or r.random() < 0.15:
            return self.literal(category)
        return getattr(self, f"expr_{category}")(depth + 1)

    def literal(self, category):
        r = self.r
        return {
            "int": lambda: str(r.choice([0, 1, -1, 2, 7, 100, -3])),
            "num": lambda: r.choice(["1.5", "0.01", "-2.25", "100"]),
            "float": lambda: r.choice(["CAST(1.5 AS double precision)", "CAST(0.1 AS double precision)",
                                       "CAST(-2 AS real)"]),
            "text": lambda: r.choice(["'abc'", "''", "'x'", "'ABC'"]),
            "bool": lambda: r.choice(["true", "false", "CAST(NULL AS boolean)"]),
            "date": lambda: r.choice(["DATE '2020-06-15'", "DATE '1999-12-31'"]),
            "ts": lambda: r.choice(["TIMESTAMP '2015-03-01 12:00:00'", "TIMESTAMP '2000-01-01 00:00:00'"]),
            "tstz": lambda: "CAST('2015-03-01 12:00:00+00' AS timestamptz)",
            "iv": lambda: r.choice(["INTERVAL '1 day'", "INTERVAL '2 hours'", "INTERVAL '1 mon'"]),
        }[category]()

    def expr_int(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('int', d)} {r.choice(['+', '-', '*', '/', '%'])} {self.expr('int', d)})",
            lambda: f"abs({self.expr('int', d)})",
            lambda: f"length({self.expr('text', d)})",
            lambda: f"CAST({self.expr('num', d)} AS integer)",
            lambda: f"CAST({self.expr('int', d)} AS {r.choice(['smallint', 'bigint'])})",
            lambda: f"CAST({self.expr('float', d)} AS bigint)",
            lambda: f"coalesce({self.expr('int', d)}, {self.expr('int', d)})",
            lambda: f"CASE WHEN {self.expr('bool', d)} THEN {self.expr('int', d)} ELSE {self.expr('int', d)} END",
            lambda: f"CAST(extract({r.choice(['day', 'month', 'year', 'hour', 'dow'])} FROM "
                    f"{self.expr('ts', d)}) AS integer)",
            lambda: f"({self.expr('date', d)} - {self.expr('date', d)})",
            lambda: self.scalar.int_(2),
        ])()

    def expr_num(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('num', d)} {r.choice(['+', '-', '*', '/'])} {self.expr('num', d)})",
            lambda: f"({self.expr('num', d)} {r.choice(['+', '*'])} {self.expr('int', d)})",
            lambda: f"round({self.expr('num', d)}, {r.randint(0, 3)})",
            lambda: f"round({self.expr('num', d)})",
            lambda: f"abs({self.expr('num', d)})",
            lambda: f"{r.choice(['ceil', 'floor', 'trunc'])}({self.expr('num', d)})",
            lambda: f"CAST({self.expr('int', d)} AS {r.choice(['numeric', 'numeric(12,2)'])})",
            lambda: f"CAST({self.expr('num', d)} AS numeric(12,1))",
            lambda: f"coalesce({self.expr('num', d)}, {self.expr('num', d)})",
            lambda: self.scalar.numeric(2),
        ])()

    def expr_float(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('float', d)} {r.choice(['+', '-', '*', '/'])} {self.expr('float', d)})",
            lambda: f"CAST({self.expr('num', d)} AS double precision)",
            lambda: f"CAST({self.expr('int', d)} AS real)",
            lambda: f"abs({self.expr('float', d)})",
            lambda: f"round({self.expr('float', d)})",
        ])()

    def expr_text(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('text', d)} || {self.expr('text', d)})",
            lambda: f"{r.choice(['upper', 'lower', 'trim', 'ltrim', 'rtrim'])}({self.expr('text', d)})",
            lambda: f"substr({self.expr('text', d)}, {r.randint(-1, 3)}, {r.randint(0, 3)})",
            lambda: f"{r.choice(['left', 'right'])}({self.expr('text', d)}, {r.randint(-2, 3)})",
            lambda: f"replace({self.expr('text', d)}, 'a', 'xy')",
            lambda: f"CAST({self.expr(r.choice(['int', 'num', 'bool', 'date', 'ts', 'iv']), d)} AS text)",
            lambda: f"concat({self.expr('text', d)}, {self.expr('int', d)})",
            lambda: f"coalesce({self.expr('text', d)}, {self.expr('text', d)})",
            lambda: f"nullif({self.expr('text', d)}, 'abc')",
            lambda: f"to_char({self.expr('ts', d)}, '{r.choice(['YYYY-MM-DD', 'HH24:MI:SS', 'Dy DD Mon', 'Q'])}')",
            lambda: f"CASE WHEN {self.expr('bool', d)} THEN {self.expr('text', d)} END",
            lambda: self.scalar.text(2),
        ])()

    def expr_bool(self, d):
        r = self.r
        category = r.choice(["int", "num", "float", "text", "date", "ts", "iv", "int", "text"])
        return r.choice([
            lambda: f"({self.expr(category, d)} {r.choice(['=', '<>', '<', '<=', '>', '>='])} "
                    f"{self.expr(category, d)})",
            lambda: f"({self.expr('bool', d)} {r.choice(['AND', 'OR'])} {self.expr('bool', d)})",
            lambda: f"(NOT {self.expr('bool', d)})",
            lambda: f"({self.expr(category, d)} IS {r.choice(['', 'NOT '])}NULL)",
            lambda: f"({self.expr('text', d)} {r.choice(['LIKE', 'NOT LIKE'])} '{r.choice(['%a%', 'a%', '_', ''])}')",
            lambda: f"({self.expr('int', d)} BETWEEN {self.expr('int', d)} AND {self.expr('int', d)})",
            lambda: f"({self.expr('int', d)} IN ({', '.join(self.literal('int') for _ in range(3))}))",
            lambda: f"({self.expr(category, d)} IS DISTINCT FROM {self.expr(category, d)})",
            lambda: f"({self.expr('bool', d)} IS {r.choice(['TRUE', 'NOT TRUE', 'FALSE', 'UNKNOWN'])})",
        ])()

    def expr_date(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('date', d)} {r.choice(['+', '-'])} {self.expr('int', d)})",
            lambda: f"CAST({self.expr('ts', d)} AS date)",
            lambda: f"coalesce({self.expr('date', d)}, DATE '2000-01-01')",
        ])()

    def expr_ts(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('ts', d)} {r.choice(['+', '-'])} {self.expr('iv', d)})",
            lambda: f"({self.expr('date', d)} + {self.expr('iv', d)})",
            lambda: f"date_trunc('{r.choice(['day', 'month', 'hour', 'year', 'week'])}', {self.expr('ts', d)})",
            lambda: f"CAST({self.expr(r.choice(['date', 'tstz']), d)} AS timestamp)",
            lambda: f"greatest({self.expr('ts', d)}, {self.expr('ts', d)})",
        ])()

    def expr_tstz(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('tstz', d)} {r.choice(['+', '-'])} {self.expr('iv', d)})",
            lambda: f"CAST({self.expr('ts', d)} AS timestamptz)",
            lambda: f"date_trunc('{r.choice(['day', 'hour'])}', {self.expr('tstz', d)})",
        ])()

    def expr_iv(self, d):
        r = self.r
        return r.choice([
            lambda: f"({self.expr('iv', d)} {r.choice(['+', '-'])} {self.expr('iv', d)})",
            lambda: f"({self.expr('ts', d)} - {self.expr('ts', d)})",
            lambda: f"({self.expr('iv', d)} * {r.choice(['2', '-1', '0.5'])})",
            lambda: f"(- {self.expr('iv', d)})",
            lambda: f"justify_interval({self.expr('iv', d)})",
        ])()

    def column_expr(self, *categories):
        """An expression reading at least one column (a constant is no GROUP BY key, and
        an aggregate of a constant has no type in Postgres), of the first of `categories`
        the relation has a column of."""
        category = next((c for c in categories if self.rel.of(c)), self.rel.columns[0][1])
        for _ in range(5):
            e = self.expr(category, self.r.choice([0, 1, 1]))
            if any(re.search(rf"(?<![\w.']){re.escape(ref)}(?![\w'])", e) for ref, _ in self.rel.columns):
                return e
        return self.r.choice(self.rel.of(category))

    def any_expr(self):
        return self.expr(self.r.choice(["int", "num", "float", "text", "bool", "date", "ts", "tstz", "iv", "int",
                                        "text"]))

    # -- aggregates and queries -----------------------------------------------------------

    def aggregate(self):
        r = self.r
        orderable = r.sample(["int", "num", "float", "text", "date", "ts", "tstz", "iv"], 8)
        summable = r.sample(["int", "num", "float", "int", "num"], 5)
        any_ = r.sample(["int", "num", "float", "text", "bool", "date", "ts", "tstz", "iv", "int", "text"], 11)
        call = r.choice([
            lambda: "count(*)",
            lambda: f"count({self.column_expr(*any_)})",
            lambda: f"count(DISTINCT {self.column_expr(*any_)})",
            lambda: f"sum({self.column_expr(*summable)})",
            lambda: f"sum({self.column_expr('iv', *summable)})",
            lambda: f"avg({self.column_expr(*summable)})",
            lambda: f"avg({self.column_expr('iv', *summable)})",
            lambda: f"avg(DISTINCT {self.column_expr(*summable)})",
            lambda: f"sum(DISTINCT {self.column_expr(*summable)})",
            lambda: f"{r.choice(['min', 'max'])}({self.column_expr(*orderable)})",
            lambda: f"{r.choice(['bool_and', 'bool_or'])}({self.column_expr('bool')})",
            lambda: f"string_agg({(t := self.column_expr('text'))}, ',' ORDER BY {t})",
            lambda: f"{r.choice(['stddev', 'variance', 'stddev_pop', 'var_pop'])}({self.column_expr(*summable)})",
            lambda: f"array_agg({(t := self.column_expr('int', 'text'))} ORDER BY {t})",
        ])()
        if r.random() < 0.15 and call.endswith(")"):
            call += f" FILTER (WHERE {self.expr('bool')})"
        return call

    def relation(self):
        """A FROM item: a table, a join of the two, or a subquery."""
        r = self.r
        kind = r.choice(["t1", "t1", "t2", "join", "left join", "subquery"])
        if kind in ("t1", "t2"):
            return table_relation(kind)
        if kind == "subquery":
            self.rel = table_relation("t1")
            items = [(self.expr(c), c) for c in r.sample(["int", "num", "text", "bool", "date", "ts", "iv", "int"],
                                                          r.randint(2, 4))]
            where = f" WHERE {self.expr('bool')}" if r.random() < 0.5 else ""
            select = ", ".join(f"{e} AS q{i}" for i, (e, _) in enumerate(items))
            return Relation(f"(SELECT {select} FROM t1{where}) AS sq",
                            [(f"q{i}", c) for i, (_, c) in enumerate(items)])
        one, two = table_relation("t1", qualify=True), table_relation("t2", qualify=True)
        self.rel = Relation("", one.columns + two.columns)
        on = "t1.k = t2.k" + (f" AND {self.expr('bool')}" if r.random() < 0.2 else "")
        join = "JOIN" if kind == "join" else "LEFT JOIN"
        return Relation(f"t1 {join} t2 ON {on}", one.columns + two.columns)

    def query(self):
        """(SQL, ordered): `ordered` when ORDER BY decides the order of the whole result."""
        r = self.r
        self.rel = self.relation()
        shape = r.choice(["group", "group", "aggregate", "distinct", "project"])
        where = f" WHERE {self.expr('bool')}" if r.random() < 0.4 else ""
        if shape in ("group", "aggregate"):
            keys = [self.column_expr(*r.sample(["int", "text", "bool", "date", "num", "iv", "ts"], 7))
                    for _ in range(r.randint(1, 2) if shape == "group" else 0)]
            items = keys + [self.aggregate() for _ in range(r.randint(1, 3))]
            group = f" GROUP BY {', '.join(keys)}" if keys else ""
            having = f" HAVING {r.choice(['count(*) > 1', f'{self.aggregate()} IS NOT NULL', 'count(*) < 3'])}" \
                if keys and r.random() < 0.3 else ""
            body = f"SELECT {self.select_list(items)} FROM {self.rel.sql}{where}{group}{having}"
        else:
            items = [self.any_expr() for _ in range(r.randint(1, 3))]
            distinct = "DISTINCT " if shape == "distinct" else ""
            body = f"SELECT {distinct}{self.select_list(items)} FROM {self.rel.sql}{where}"
        if r.random() < 0.3:
            order = ", ".join(f"{i + 1} {r.choice(['ASC', 'DESC'])} NULLS {r.choice(['FIRST', 'LAST'])}"
                              for i in range(len(items)))
            return f"{body} ORDER BY {order} LIMIT {r.randint(1, 8)}", True
        return body, False

    @staticmethod
    def select_list(items):
        return ", ".join(f"{e} AS c{i}" for i, e in enumerate(items))

    # -- writes ---------------------------------------------------------------------------

    def simple_predicate(self, table, operators):
        """A predicate over one table that cannot fail: a column against a literal."""
        r = self.r
        name, sql_type = r.choice(TABLES[table])
        if r.random() < 0.1:
            return f"{name} IS NULL"
        values = Values(r)
        while (literal := values.literal(sql_type)) == "NULL":
            pass
        return f"{name} {r.choice(operators)} {literal}"

    def writes(self, next_key):
        """Random INSERT, UPDATE and DELETE statements; t2's keys stay unique."""
        r = self.r
        values = Values(r)
        statements = []
        for _ in range(r.randint(2, 4)):
            table = r.choice(["t1", "t1", "t2"])
            kind = r.choice(["insert", "update", "update", "delete"])
            if kind == "insert":
                rows = []
                for _ in range(r.randint(2, 5)):
                    rows.append(values.row(table, next_key()))
                statements.append(f"INSERT INTO {table} VALUES {', '.join(rows)}")
            elif kind == "update":
                columns = [(n, t) for n, t in TABLES[table] if n != PRIMARY_KEY.get(table)]
                sets = ", ".join(f"{n} = {values.literal(t)}" for n, t in r.sample(columns, r.randint(1, 2)))
                where = self.simple_predicate(table, ["=", "<", ">", "<>"])
                statements.append(f"UPDATE {table} SET {sets} WHERE {where}")
            else:
                # Deletes take few rows (an equality), so the tables keep rows to query.
                statements.append(f"DELETE FROM {table} WHERE {self.simple_predicate(table, ['='])}")
        return statements


# -- running and comparing ------------------------------------------------------------------

def text_connection(dsn):
    """A connection that reads every value as the text the server sent."""
    conn = scalar.connect_when_up(dsn)
    for t in pg_types:
        for oid in (t.oid, getattr(t, "array_oid", 0)):
            if oid:
                conn.adapters.register_loader(oid, TextLoader)
    return conn


def run(conn, sql):
    """("ok", rows, column type oids) or ("error", SQLSTATE class, message)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else []
            oids = [c.type_code for c in cur.description] if cur.description else []
        return "ok", rows, oids
    except psycopg.Error as e:
        return "error", (e.sqlstate or "?????")[:2], (e.diag.message_primary or str(e)).strip()


def float_text(text, oid):
    try:
        f = float(text)
    except ValueError:
        return text
    if f != f or f in (float("inf"), float("-inf")):
        return text
    return f"{f:.6g}" if oid == FLOAT4 else f"{f:.12g}"


def decimal_of(text):
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


def interval_micros(text):
    """An interval's value with a month of 30 days and a day of 24 hours, as Postgres
    compares them; None if the text is not an interval in the postgres style."""
    total, rest = Decimal(0), text
    units = {"year": 360 * 86400, "mon": 30 * 86400, "day": 86400}
    for number, unit in re.findall(r"([-+]?\d+) (year|mon|day)s?", text):
        total += int(number) * units[unit]
    rest = re.sub(r"[-+]?\d+ (year|mon|day)s?", "", text).strip()
    if rest:
        m = re.fullmatch(r"([-+]?)(\d+):(\d\d):(\d\d(?:\.\d+)?)", rest)
        if not m:
            return None
        seconds = int(m[2]) * 3600 + int(m[3]) * 60 + Decimal(m[4])
        total += -seconds if m[1] == "-" else seconds
    return total


# Looser views of a value, tried in turn when the exact texts differ: the first under which
# both results agree names the (documented) difference.
def numeric_value(text, oid):
    d = decimal_of(text) if oid == NUMERIC else None
    return text if d is None or not d.is_finite() else str(d.normalize())


def numeric_rounded(text, oid):
    d = decimal_of(text) if oid == NUMERIC else None
    return text if d is None or not d.is_finite() else str(d.quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)
                                                           .normalize())


def interval_value(text, oid):
    return str(interval_micros(text)) if oid == INTERVAL and interval_micros(text) is not None else text


def zero_without_sign(text, oid):
    """`-0` as `0`: equal floats, and a group (`DISTINCT`, `GROUP BY`) of them shows one."""
    return "0" if oid in (FLOAT4, FLOAT8) and text == "-0" else text


def exact(text, oid):
    return float_text(text, oid) if oid in (FLOAT4, FLOAT8) else text


def cell_text(value, oid, view):
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple)):
        value = "{" + ",".join("NULL" if v is None else str(v) for v in value) + "}"
    return view(str(value), oid)


def rows_under(rows, oids, view, ordered):
    out = [tuple(cell_text(v, oids[i] if i < len(oids) else 0, view) for i, v in enumerate(row)) for row in rows]
    return out if ordered else sorted(out)


# Documented differences (docs/sql-reference.md, "Differences from PostgreSQL"): a name
# and the view of the values under which the two results agree.
def numeric_text_value(text, oid):
    """A number shown as text (`CAST(e AS text)`), by its value: the scale it shows differs."""
    d = decimal_of(text) if oid in TEXTUAL and re.fullmatch(r"-?\d+(\.\d+)?", text or "") else None
    return text if d is None else format(d.normalize(), "f")


VALUE_VIEWS = [
    ("display scale of unconstrained numeric", numeric_value),
    ("display scale of unconstrained numeric, shown as text", numeric_text_value),
    ("scale of numeric quotients and averages", numeric_rounded),
    ("the value an interval group shows", interval_value),
    ("the zero a float group shows", zero_without_sign),
]


def float_of_exact(text, oid):
    """A number Weir computes as `double precision` where Postgres' is `numeric`, to 9 digits."""
    if oid != FLOAT_FOR_NUMERIC:
        return text
    try:
        return f"{float(text):.9g}"
    except ValueError:
        return text


FLOAT_FOR_NUMERIC = -1  # the "type" of a column that is double precision in Weir, numeric in Postgres

VALUE_VIEWS.append(("stddev and variance of exact numbers are double precision", float_of_exact))


def compare(weir, pg, ordered):
    """None when the results agree, else (kind, known difference name or None)."""
    if weir[0] == "error" or pg[0] == "error":
        if weir[0] == pg[0] and weir[1] == pg[1]:
            return None
        kind = {("error", "error"): "different error class", ("error", "ok"): "Weir errors, Postgres answers",
                ("ok", "error"): "Weir answers, Postgres errors"}[(weir[0], pg[0])]
        return kind, known_error(weir, pg)
    # Postgres' types say how to read both (a float4 is compared at its precision).
    oids = [FLOAT_FOR_NUMERIC if (w, p) == (FLOAT8, NUMERIC) else p for w, p in zip(weir[2], pg[2])]
    if len(weir[2]) != len(oids):
        return "different columns", None
    if rows_under(weir[1], oids, exact, ordered) == rows_under(pg[1], oids, exact, ordered):
        return None
    loose = exact
    for name, view in VALUE_VIEWS:
        loose = (lambda inner, outer: lambda t, o: outer(inner(t, o), o))(loose, view)
        if rows_under(weir[1], oids, loose, ordered) == rows_under(pg[1], oids, loose, ordered):
            return "different values", name
    if len(weir[1]) != len(pg[1]):
        return "different row counts", None
    return "different values", None


# A view's job reports a float too large for an integer type as Arrow's "Can't cast value".
ARITHMETIC_ERROR = r"out of range|overflow|underflow|division by zero|Can't cast value"


def evaluation_order(weir, pg):
    """An arithmetic error one server raises and the other does not reach: the order in
    which a query's filters and operands are evaluated is the planner's choice."""
    if weir[0] == "error" and pg[0] == "ok":
        return weir[1] == "22" and re.search(ARITHMETIC_ERROR, weir[2])
    if pg[0] == "error" and weir[0] == "ok":
        return pg[1] == "22" and re.search(ARITHMETIC_ERROR, pg[2])
    return False


def wider_argument_types(weir, pg):
    """Postgres has no such operator or function (`date - bigint`, `string_agg(boolean,
    text)`), Weir computes it (or fails on its value)."""
    return pg[0] == "error" and re.match(r"(operator|function)\b.* does not exist", pg[2]) is not None \
        and (weir[0] == "ok" or weir[1] == "22")


def names_of_casts(weir, _pg):
    """DataFusion names a cast by its operand: `x` and `CAST(x AS numeric)` in one list."""
    return weir[0] == "error" and re.search(
        r"Projections require unique expression names|Schema contains duplicate unqualified field name",
        weir[2]) is not None


def distinct_beside_non_null_key(weir, _pg):
    """DataFusion's plan of `count(DISTINCT)` beside other aggregates, grouped by a key that
    is never NULL (`coalesce(x, 0)`, `x IS NULL`), fails its own schema check."""
    return weir[0] == "error" and "Assertion failed: compatible: Failed due to a difference in schemas" in weir[2]


def conflicting_aggregate_orders(weir, _pg):
    """DataFusion plans one ORDER BY for all of a query's ordered aggregates."""
    return weir[0] == "error" and "Conflicting ordering requirements in aggregate functions" in weir[2]


def avg_of_interval(weir, _pg):
    return weir[0] == "error" and re.search(r"Function 'avg' .*Interval", weir[2]) is not None


# Errors on one side, documented: a name and a test of (weir, postgres).
KNOWN_ERRORS = [
    ("errors that depend on the order of evaluation", evaluation_order),
    ("argument types Postgres does not accept", wider_argument_types),
    ("avg of interval", avg_of_interval),
    ("an expression and its cast in one select or GROUP BY list", names_of_casts),
    ("count(DISTINCT) beside other aggregates, grouped by a key never NULL", distinct_beside_non_null_key),
    ("aggregates ordered by different expressions", conflicting_aggregate_orders),
]


def known_error(weir, pg):
    return next((name for name, test in KNOWN_ERRORS if test(weir, pg)), None)


class Differential:
    def __init__(self, weir, pg):
        self.weir, self.pg = weir, pg
        self.kinds, self.examples = Counter(), {}
        self.compared = self.agreed = self.unexplained = 0
        self.not_a_view = Counter()  # why Weir refused queries as views (0A000), by message
        # The generated queries any of whose comparisons differed: explained, or not.
        self.queries_differing, self.queries_unexplained = set(), set()

    def check(self, mode, sql, weir, pg, ordered=False):
        self.compared += 1
        verdict = compare(weir, pg, ordered)
        if verdict is None:
            self.agreed += 1
            return
        kind, known = verdict
        label = f"{mode}: known: {known}" if known else f"{mode}: UNEXPLAINED: {kind}"
        self.unexplained += 0 if known else 1
        if mode not in ("write", "table contents"):
            self.queries_differing.add(sql)
            if not known:
                self.queries_unexplained.add(sql)
        self.kinds[label] += 1
        self.examples.setdefault(label, []).append((sql, weir, pg))

    def both(self, sql):
        return run(self.weir, sql), run(self.pg, sql)

    def report(self, header):
        print(f"{header}: {self.compared} comparisons, {self.agreed} agreed, {self.compared - self.agreed} "
              f"differed ({self.compared - self.agreed - self.unexplained} known differences, "
              f"{self.unexplained} unexplained); {len(self.queries_differing)} queries differed somewhere "
              f"({len(self.queries_unexplained)} unexplained)")
        refused = sum(self.not_a_view.values())
        if refused:
            print(f"\nnot a view in Weir (0A000, not compared as views): {refused}")
            for message, n in self.not_a_view.most_common(8):
                print(f"  {n}: {message}")
        for kind, n in sorted(self.kinds.items(), key=lambda kv: -kv[1]):
            print(f"\n{kind}: {n}")
            for sql, a, b in self.examples[kind][:3 if ": known:" in kind else 12]:
                print(f"  {sql}\n    weir: {short(a)}\n    postgres: {short(b)}")


def short(result):
    if result[0] == "error":
        return f"error {result[1]}: {result[2]}"
    rows = [tuple(v for v in row) for row in result[1]]
    return f"{len(rows)} rows {rows[:6]}{' ...' if len(rows) > 6 else ''}"


def create_tables(diff, gen_values, rows):
    for table, columns in TABLES.items():
        body = ", ".join(f"{n} {t}{' PRIMARY KEY' if PRIMARY_KEY.get(table) == n else ''}" for n, t in columns)
        for conn in (diff.weir, diff.pg):
            conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            conn.execute(f"CREATE TABLE {table} ({body})")
    keys = iter(range(1, 10 ** 9))
    statements = [f"INSERT INTO t1 VALUES {', '.join(gen_values.row('t1') for _ in range(rows))}",
                  f"INSERT INTO t2 VALUES {', '.join(gen_values.row('t2', next(keys)) for _ in range(rows // 2))}"]
    return statements, keys


def write_both(diff, statements):
    """Applies writes to both servers; a write that does not do the same on both is a
    difference, and the tables are compared afterwards anyway."""
    for sql in statements:
        weir, pg = diff.both(sql)
        if weir[0] == "error" or pg[0] == "error":
            diff.check("write", sql, weir, pg)
    for table in TABLES:
        sql = f"SELECT * FROM {table}"
        diff.check("table contents", sql, *diff.both(sql))


def flush(diff, views):
    """FLUSH; a view whose job failed is reported, dropped and the FLUSH retried."""
    for _ in range(len(views) + 1):
        result = run(diff.weir, "FLUSH")
        if result[0] == "ok":
            return
        failed = re.search(r"materialized view (\w+) has failed", result[2])
        if not failed or failed[1] not in views:
            raise RuntimeError(f"FLUSH failed: {result}")
        name = failed[1]
        sql, ordered = views.pop(name)
        pg = run(diff.pg, sql)
        # A job fails on an error its query raises: right when Postgres' query raises one.
        failure = pg[1] if pg[0] == "error" else "22" if re.search(ARITHMETIC_ERROR, result[2]) else "??"
        diff.check("view (failed job)", sql, ("error", failure, result[2]), pg, ordered)
        run(diff.weir, f"DROP MATERIALIZED VIEW {name}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    strict = "--strict" in sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    binary = args[0]
    queries = int(args[1]) if len(args) > 1 else 500
    seed = int(args[2]) if len(args) > 2 else 1
    work = tempfile.mkdtemp(prefix="pgtablediff-")
    weir_proc, weir_dsn = scalar.start_weir(binary, work)
    stop_pg, pg_dsn = (None, os.environ["PG_DSN"]) if os.environ.get("PG_DSN") else scalar.start_postgres(work)
    database = f"weir_table_differential_{os.getpid()}"
    admin = None
    try:
        # Weir compares text by its bytes (Postgres' "C" collation) and changes the case of
        # every Unicode letter (a UTF-8 character type).
        admin = scalar.connect_when_up(pg_dsn)
        admin.execute(f"CREATE DATABASE {database} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C.UTF-8' "
                      "ENCODING 'UTF8'")
        pg = text_connection(f"{pg_dsn} dbname={database}")
        pg.execute("SET TimeZone = 'UTC'")
        diff = Differential(text_connection(weir_dsn), pg)
        rng = random.Random(seed)
        gen = QueryGen(rng)
        statements, keys = create_tables(diff, Values(rng), rows=24)
        write_both(diff, statements)
        views_made = view_checks = 0
        batch = 10
        for start in range(0, queries, batch):
            generated = [gen.query() for _ in range(min(batch, queries - start))]
            views = {}
            for i, (sql, ordered) in enumerate(generated):
                weir, pg_result = diff.both(sql)
                diff.check("query", sql, weir, pg_result, ordered)
                name = f"dv{start + i}"
                created = run(diff.weir, f"CREATE MATERIALIZED VIEW {name} AS {sql}")
                if created[0] == "ok":
                    views[name] = (sql, ordered)
                elif created[1] == "0A":
                    diff.not_a_view[re.sub(r"\d+", "N", created[2])[:90]] += 1
                elif pg_result[0] == "ok":
                    diff.check("view (create)", sql, created, pg_result)
            views_made += len(views)
            for round_ in range(3):
                if round_:
                    write_both(diff, gen.writes(lambda: next(keys)))
                flush(diff, views)
                for name, (sql, ordered) in views.items():
                    view_checks += 1
                    # A view keeps no order: its rows are compared as a multiset.
                    diff.check("view" if round_ == 0 else "view after writes", sql,
                               run(diff.weir, f"SELECT * FROM {name}"), run(diff.pg, sql))
            for name in views:
                run(diff.weir, f"DROP MATERIALIZED VIEW {name}")
        diff.report(f"{queries} queries (seed {seed}), {views_made} as materialized views, {view_checks} view reads")
    finally:
        weir_proc.kill()
        if admin is not None:
            try:
                admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            except psycopg.Error:
                pass
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    if strict and diff.unexplained:
        sys.exit(1)


if __name__ == "__main__":
    main()
