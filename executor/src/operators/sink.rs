//! Sink: the end of a `CREATE SINK` job, where rows leave Weir.
//!
//! * `blackhole` consumes and discards every row (what benchmarks use, as in Flink and
//!   RisingWave); the rows still count in `weir_catalog.tasks`.
//! * `file` appends rows to a file as CSV or JSON lines, flushed at every barrier. Only
//!   append-only queries can write to a file (the planner checks), since a file cannot take
//!   back a row. Each subtask writes its own file: `path` for subtask 0, `path.N` for N > 0.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use super::Operator;
use crate::connectors::{check_known_options, OptionError};
use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, StreamBatch};

/// A configured sink, checked at `CREATE SINK`.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    Blackhole,
    File { path: String, format: FileFormat, header: bool },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FileFormat {
    Csv,
    Json,
}

impl SinkConfig {
    pub fn parse(connector: &str, options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        match connector.to_ascii_lowercase().as_str() {
            "blackhole" => {
                check_known_options("blackhole", options, &[])?;
                Ok(SinkConfig::Blackhole)
            }
            "file" => {
                check_known_options("file", options, &["path", "format", "header"])?;
                let path = options
                    .get("path")
                    .cloned()
                    .ok_or_else(|| OptionError("sink connector 'file' needs a path option".into()))?;
                let format = match options.get("format").map(|f| f.to_ascii_lowercase()).as_deref() {
                    Some("csv") | None => FileFormat::Csv,
                    Some("json") => FileFormat::Json,
                    Some(other) => {
                        return Err(OptionError(format!(
                            "unknown sink format '{other}'; use 'csv' or 'json'"
                        )))
                    }
                };
                let header = match options.get("header").map(|h| h.to_ascii_lowercase()).as_deref() {
                    Some("true") => true,
                    Some("false") | None => false,
                    Some(other) => {
                        return Err(OptionError(format!("header must be 'true' or 'false', not '{other}'")))
                    }
                };
                Ok(SinkConfig::File { path, format, header })
            }
            other => Err(OptionError(format!(
                "unknown sink connector '{other}'; the sink connectors are 'blackhole' and 'file'"
            ))),
        }
    }
}

pub struct Sink {
    writer: Option<FileWriter>,
}

struct FileWriter {
    path: String,
    format: FileFormat,
    header: bool,
    wrote_header: bool,
    out: BufWriter<File>,
}

impl Sink {
    pub fn new(config: &SinkConfig, subtask: usize) -> ExecResult<Self> {
        let writer = match config {
            SinkConfig::Blackhole => None,
            SinkConfig::File { path, format, header } => {
                let path = match subtask {
                    0 => path.clone(),
                    n => format!("{path}.{n}"),
                };
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| ExecError::Connector(format!("cannot open sink file {path}: {e}")))?;
                let wrote_header = file.metadata().map(|m| m.len() > 0).unwrap_or(false);
                Some(FileWriter {
                    path,
                    format: *format,
                    header: *header,
                    wrote_header,
                    out: BufWriter::new(file),
                })
            }
        };
        Ok(Self { writer })
    }
}

impl FileWriter {
    fn write(&mut self, batch: &StreamBatch) -> ExecResult<()> {
        match self.format {
            FileFormat::Csv => {
                let with_header = self.header && !self.wrote_header;
                let mut writer =
                    arrow::csv::WriterBuilder::new().with_header(with_header).build(&mut self.out);
                writer.write(&batch.data)?;
                self.wrote_header = true;
            }
            FileFormat::Json => {
                let mut writer = arrow_json::LineDelimitedWriter::new(&mut self.out);
                writer.write(&batch.data)?;
                writer.finish()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> ExecResult<()> {
        self.out.flush().map_err(|e| ExecError::Connector(format!("writing sink file {}: {e}", self.path)))
    }
}

impl Operator for Sink {
    fn name(&self) -> &'static str {
        "Sink"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        _out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        if let Some(writer) = &mut self.writer {
            if batch.ops.as_ref().is_some_and(|ops| ops.values().iter().any(|&op| op < 0)) {
                return Err(ExecError::Internal("file sink received a retraction".into()));
            }
            if batch.num_rows() > 0 {
                writer.write(&batch)?;
            }
        }
        Ok(())
    }

    fn on_barrier(&mut self, _barrier: &Barrier, _out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        match &mut self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;
    use crate::operators::test_util::batch;

    #[test]
    fn file_sink_appends_csv_and_flushes_at_barriers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let options =
            BTreeMap::from([("path".to_string(), path.clone()), ("header".to_string(), "true".to_string())]);
        let config = SinkConfig::parse("file", &options).expect("config");
        let mut sink = Sink::new(&config, 0).expect("sink");
        let rows = batch(
            vec![
                ("id", std::sync::Arc::new(Int64Array::from(vec![1, 2]))),
                ("name", std::sync::Arc::new(StringArray::from(vec![Some("a"), None]))),
            ],
            None,
        );
        sink.process_batch(0, rows.clone(), &mut vec![]).expect("write");
        sink.process_batch(0, rows, &mut vec![]).expect("write");
        sink.on_barrier(&Barrier::new(1), &mut vec![]).expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "id,name\n1,a\n2,\n1,a\n2,\n");
    }

    #[test]
    fn options_are_checked() {
        assert!(SinkConfig::parse("blackhole", &BTreeMap::new()).is_ok());
        assert!(SinkConfig::parse("file", &BTreeMap::new()).is_err());
        assert!(SinkConfig::parse("kafka", &BTreeMap::new()).is_err());
        let bad = BTreeMap::from([
            ("path".to_string(), "/tmp/x".to_string()),
            ("format".to_string(), "xml".to_string()),
        ]);
        assert!(SinkConfig::parse("file", &bad).is_err());
    }
}
