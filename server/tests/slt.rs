//! The sqllogictest engine: statements go over the simple query protocol with
//! tokio-postgres; values come back as Postgres prints them. Errors are rendered as
//! `<SQLSTATE> <message>` so `.slt` files can match on the code: `statement error 42P01`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::SimpleQueryMessage;

use crate::support::cluster::TestCluster;
use crate::support::TestServer;

pub fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/slt");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
}

/// Where a `.slt` file runs: a standalone server, or a JobManager with TaskManagers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Standalone,
    Cluster,
}

/// Task slots of each of a test cluster's TaskManagers: every view is a job that holds as
/// many slots as its parallelism, and a file creates dozens of views.
const CLUSTER_SLOTS: usize = 64;

pub async fn run_file(path: PathBuf, complete: bool) -> Result<(), String> {
    run_file_on(path, complete, Target::Standalone).await
}

pub async fn run_file_on(path: PathBuf, complete: bool, target: Target) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let work_dir = dir.path().join("work");
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    // File sources and sinks may use the test data and this file's scratch directory, and
    // nothing else (sql-tests/slt/file_access.slt checks the refusals).
    let config = dir.path().join("weir.toml");
    let allowed =
        format!("[file]\nallowed_dirs = [{:?}, {:?}]\n", data_dir(), work_dir.display().to_string());
    std::fs::write(&config, allowed).map_err(|e| e.to_string())?;
    let (server, cluster) = match target {
        Target::Standalone => {
            let args = ["--config".into(), config.display().to_string()];
            (Some(TestServer::start_with(&dir.path().join("data"), &args)), None)
        }
        Target::Cluster => {
            let cluster = TestCluster::start(dir.path(), 3, CLUSTER_SLOTS, Some(&config));
            cluster.wait_for_taskmanagers(3).await?;
            (None, Some(cluster))
        }
    };
    let server_log = || match (&server, &cluster) {
        (Some(server), _) => tail(&server.log(), 40),
        (_, Some(cluster)) => cluster.logs(30),
        _ => String::new(),
    };
    let conn = match (&server, &cluster) {
        (Some(server), _) => server.connection_string(),
        (_, Some(cluster)) => cluster.jobmanager.connection_string(),
        _ => return Err("no server".into()),
    };
    let work_dir = work_dir.display().to_string();
    let mut runner = sqllogictest::Runner::new(move || {
        let conn = conn.clone();
        let work_dir = work_dir.clone();
        async move { Weir::connect(&conn, work_dir).await }
    });
    let result = if complete {
        runner
            .update_test_file(
                &path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner.run_file_async(&path).await.map_err(|e| e.display(true).to_string())
    };
    result.map_err(|e| format!("{}: {e}\n--- server log ---\n{}", path.display(), server_log()))
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One connection. In statements, `__DATA_DIR__` becomes the absolute path of
/// `sql-tests/data` (input files for sources) and `__WORK_DIR__` a scratch directory of this
/// test file (sink output, generated files).
pub struct Weir {
    client: tokio_postgres::Client,
    work_dir: String,
}

pub fn data_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/data").display().to_string()
}

#[derive(Debug)]
pub struct WeirError(String);

impl std::fmt::Display for WeirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WeirError {}

impl From<tokio_postgres::Error> for WeirError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => WeirError(format!("{} {}", db.code().code(), db.message())),
            None => WeirError(e.to_string()),
        }
    }
}

impl Weir {
    async fn connect(conn: &str, work_dir: String) -> Result<Self, WeirError> {
        let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { client, work_dir })
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Weir {
    type Error = WeirError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, WeirError> {
        let sql = sql.replace("__DATA_DIR__", &data_dir()).replace("__WORK_DIR__", &self.work_dir);
        let messages = self.client.simple_query(&sql).await?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut affected = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => columns = Some(desc.len()),
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        match columns {
            Some(n) => Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; n], rows }),
            None => Ok(DBOutput::StatementComplete(affected)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "weir"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}
