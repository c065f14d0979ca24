//! Weir against a real PostgreSQL. `sql-tests/differential/pg_differential.py` runs random
//! scalar expressions over every supported type on both; `pg_table_differential.py` runs
//! random queries over tables (aggregates, GROUP BY, DISTINCT, ORDER BY ... LIMIT, joins,
//! subqueries) as batch queries and as materialized views, before and after random writes.
//! Each fails on any difference that docs/sql-reference.md ("Differences from PostgreSQL")
//! does not explain. The scripts start their own PostgreSQL (the Debian `postgresql`
//! package, which `./dev test` installs) and their own Weir, each on a private port.

use std::path::Path;
use std::process::Command;

pub async fn random_expressions_agree_with_postgres() -> Result<(), String> {
    // 3000 queries take about 15 seconds.
    run_differential("pg_differential.py", "1000", &["1", "2", "3"])
}

pub async fn random_table_queries_and_views_agree_with_postgres() -> Result<(), String> {
    // Every query is also a materialized view, read again after two rounds of writes: 200
    // queries take about 20 seconds in a debug build.
    run_differential("pg_table_differential.py", "100", &["1", "2"])
}

/// Runs `script` with `queries` per seed and `--strict`; an unexplained difference fails.
fn run_differential(script: &str, queries: &str, seeds: &[&str]) -> Result<(), String> {
    if std::fs::read_dir("/usr/lib/postgresql").map_or(true, |mut d| d.next().is_none()) {
        return Err("PostgreSQL is not installed: `./dev test` installs the Debian postgresql package; \
                    on another machine run `apt-get install postgresql`"
            .into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/differential").join(script);
    let mut failures = Vec::new();
    for seed in seeds {
        let out = Command::new("python3")
            .arg(&script)
            .args([env!("CARGO_BIN_EXE_weir"), queries, seed, "--strict"])
            .env_remove("PG_DSN")
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        let report = String::from_utf8_lossy(&out.stdout);
        println!("{}", report.lines().next().unwrap_or("(no report)"));
        if !out.status.success() {
            failures.push(format!("seed {seed}:\n{report}\n{}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "differences from PostgreSQL that docs/sql-reference.md does not explain (fix them, or \
             document them there and teach the script's KNOWN list):\n{}",
            failures.join("\n")
        )),
    }
}
