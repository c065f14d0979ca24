//! Tests of the `file` connector: formats, types, malformed rows, splits, offsets, options.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::FileConnector;
use crate::connectors::file_access::FileAccess;
use crate::connectors::{Connector, ConnectorOptions, ReadOutcome, RowError, SplitLimit, SplitReader};
use crate::sources::reader_pool::ReaderPool;

/// These tests read temporary files wherever they are; confinement is tested in
/// `file_access`.
fn anywhere() -> FileAccess {
    FileAccess::new(&["/"]).expect("root")
}

fn schema(fields: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields.iter().map(|(n, t, null)| Field::new(*n, t.clone(), *null)).collect::<Vec<_>>(),
    ))
}

fn options(pairs: &[(&str, &str)]) -> ConnectorOptions {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(content.as_bytes()).expect("write");
    path
}

fn connector(path: &Path, extra: &[(&str, &str)], schema: SchemaRef) -> FileConnector {
    let path = path.to_string_lossy().into_owned();
    let mut opts = options(extra);
    opts.insert("path".into(), path);
    FileConnector::new(&opts, schema, &anywhere(), SplitLimit::default()).expect("valid options")
}

/// Reads a split to its end: its batches and row errors.
fn read_all(reader: &mut dyn SplitReader) -> (Vec<RecordBatch>, Vec<RowError>) {
    let mut batches = Vec::new();
    let mut errors = Vec::new();
    loop {
        let outcome = reader.next_batch().expect("read");
        errors.extend(reader.take_errors());
        match outcome {
            ReadOutcome::Batch(b) => {
                assert!(b.num_rows() > 0, "batches are never empty");
                batches.push(b);
            }
            ReadOutcome::Wait(_) => {}
            ReadOutcome::Finished => break,
        }
    }
    assert!(matches!(reader.next_batch().expect("read"), ReadOutcome::Finished));
    (batches, errors)
}

/// Rows as `a|b|c` strings, NULL spelled `NULL`.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("fmt"))
            .collect();
        for row in 0..batch.num_rows() {
            out.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    out
}

fn read_csv(content: &str, extra: &[(&str, &str)], schema: SchemaRef) -> (Vec<String>, Vec<RowError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "t.csv", content);
    let mut opts = vec![("format", "csv")];
    opts.extend_from_slice(extra);
    let c = connector(&path, &opts, schema);
    assert_eq!(c.splits(), 1);
    assert!(c.bounded());
    let mut reader = c.open(0).expect("open");
    let (batches, errors) = read_all(reader.as_mut());
    (rows(&batches), errors)
}

fn err(location: &str, reason: &str) -> RowError {
    RowError { location: location.into(), reason: reason.into() }
}

fn two_columns() -> SchemaRef {
    schema(&[("id", DataType::Int64, true), ("name", DataType::Utf8, true)])
}

#[test]
fn csv_basic_types_and_timestamps_with_millis() {
    let s = schema(&[
        ("a", DataType::Int16, true),
        ("b", DataType::Int32, true),
        ("c", DataType::Int64, true),
        ("d", DataType::Float32, true),
        ("e", DataType::Float64, true),
        ("f", DataType::Decimal128(10, 2), true),
        ("g", DataType::Boolean, true),
        ("h", DataType::Utf8, true),
        ("i", DataType::Date32, true),
        ("j", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ("k", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true),
        ("l", DataType::Binary, true),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let content = "1,2,3,1.5,2.25,12.34,true,hello,2024-01-02,2024-01-02 03:04:05.123,2024-01-02T03:04:05.5,xyz\n\
                   -1,-2,-3,-0.5,1e3,-0.01,FALSE,,2000-02-29,2024-01-02 03:04:05,2024-01-02 03:04:05.000001,\n";
    let path = write(dir.path(), "types.csv", content);
    let c = connector(&path, &[("format", "csv")], Arc::clone(&s));
    let (batches, errors) = read_all(c.open(0).expect("open").as_mut());
    assert_eq!(errors, vec![]);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.schema(), s);
    assert_eq!(b.column(0).as_primitive::<Int16Type>().values(), &[1, -1]);
    assert_eq!(b.column(1).as_primitive::<Int32Type>().values(), &[2, -2]);
    assert_eq!(b.column(2).as_primitive::<Int64Type>().values(), &[3, -3]);
    assert_eq!(b.column(3).as_primitive::<Float32Type>().values(), &[1.5, -0.5]);
    assert_eq!(b.column(4).as_primitive::<Float64Type>().values(), &[2.25, 1000.0]);
    assert_eq!(b.column(5).as_primitive::<Decimal128Type>().values(), &[1234, -1]);
    let g = b.column(6).as_boolean();
    assert!(g.value(0) && !g.value(1));
    let h = b.column(7).as_string::<i32>();
    assert_eq!(h.value(0), "hello");
    assert!(h.is_null(1), "an empty unquoted field is NULL");
    // 2024-01-02 is day 19724 since 1970-01-01.
    assert_eq!(b.column(8).as_primitive::<Date32Type>().values(), &[19724, 11016]);
    let base = (19724_i64 * 86_400 + 3 * 3600 + 4 * 60 + 5) * 1_000_000;
    assert_eq!(b.column(9).as_primitive::<TimestampMicrosecondType>().values(), &[base + 123_000, base]);
    assert_eq!(b.column(10).as_primitive::<TimestampMicrosecondType>().values(), &[base + 500_000, base + 1]);
    let l = b.column(11).as_binary::<i32>();
    assert_eq!(l.value(0), b"xyz");
    assert!(l.is_null(1));
}

#[test]
fn csv_header_is_skipped() {
    let (rows, errors) = read_csv("id,name\n1,a\n2,b\n", &[("header", "true")], two_columns());
    assert_eq!(rows, vec!["1|a", "2|b"]);
    assert!(errors.is_empty());
    // Without header = 'true' the header line is a malformed row (line 1).
    let (rows, errors) = read_csv("id,name\n1,a\n", &[], two_columns());
    assert_eq!(rows, vec!["1|a"]);
    assert_eq!(errors, vec![err("t.csv line 1", "column id: cannot parse \"id\" as bigint")]);
}

#[test]
fn csv_tab_delimiter_both_spellings() {
    for delimiter in ["\t", "\\t"] {
        let (rows, errors) = read_csv("1\ta,b\n2\tc\n", &[("delimiter", delimiter)], two_columns());
        assert_eq!(rows, vec!["1|a,b", "2|c"]);
        assert!(errors.is_empty());
    }
    let (rows, _) = read_csv("1;x\n", &[("delimiter", ";")], two_columns());
    assert_eq!(rows, vec!["1|x"]);
}

#[test]
fn csv_quoted_fields() {
    let content = "1,\"a,b\"\n2,\"he said \"\"hi\"\"\"\n3,\"two\nlines\"\n4,plain\"quote\nx,5\n6,\"\"\n";
    let (rows, errors) = read_csv(content, &[], two_columns());
    assert_eq!(rows, vec!["1|a,b", "2|he said \"hi\"", "3|two\nlines", "4|plain\"quote", "6|"]);
    // The quoted newline spans lines 3-4, so the bad row is on line 6.
    assert_eq!(errors, vec![err("t.csv line 6", "column id: cannot parse \"x\" as bigint")]);
}

#[test]
fn csv_empty_fields_are_null_but_quoted_empty_text_is_empty() {
    let s = schema(&[
        ("id", DataType::Int64, true),
        ("name", DataType::Utf8, true),
        ("n", DataType::Int32, true),
    ]);
    let (rows, errors) = read_csv(",,\n1,\"\",\"\"\n2,,3\n", &[], s);
    assert_eq!(rows, vec!["NULL|NULL|NULL", "1||NULL", "2|NULL|3"]);
    assert!(errors.is_empty());
}

#[test]
fn csv_crlf_and_no_trailing_newline() {
    let (rows, errors) = read_csv("1,a\r\n\r\n2,\"b\r\nc\"\r\n3,d", &[], two_columns());
    assert_eq!(rows, vec!["1|a", "2|b\r\nc", "3|d"]);
    assert!(errors.is_empty());
}

#[test]
fn csv_malformed_rows_are_skipped_with_line_numbers() {
    let s = schema(&[
        ("id", DataType::Int64, false),
        ("price", DataType::Int64, true),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]);
    let content = "id,price,ts\n\
                   1,10,2024-01-01 00:00:00.001\n\
                   2,abc,2024-01-01 00:00:00\n\
                   3,30\n\
                   4,40,2024-13-01 00:00:00\n\
                   \n\
                   5,50,2024-01-01T00:00:05\n\
                   ,60,2024-01-01 00:00:06\n\
                   7,70,2024-01-01 00:00:07,extra\n\
                   8,80,2024-01-01 00:00:08\n";
    let (rows, errors) = read_csv(content, &[("header", "true")], s);
    assert_eq!(
        rows,
        vec!["1|10|2024-01-01T00:00:00.001", "5|50|2024-01-01T00:00:05", "8|80|2024-01-01T00:00:08"]
    );
    assert_eq!(
        errors,
        vec![
            err("t.csv line 3", "column price: cannot parse \"abc\" as bigint"),
            err("t.csv line 4", "expected 3 fields, found 2"),
            err("t.csv line 5", "column ts: cannot parse \"2024-13-01 00:00:00\" as timestamp"),
            err("t.csv line 8", "column id: NULL in a NOT NULL column"),
            err("t.csv line 9", "expected 3 fields, found 4"),
        ]
    );
}

#[test]
fn csv_large_file_spans_batches_and_buffer_refills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut content = String::new();
    let total = 200_000;
    let bad_line = 123_457;
    for i in 1..=total {
        if i == bad_line {
            content.push_str("oops,not a number\n");
        } else {
            content.push_str(&format!("{i},name number {i} with some padding text\n"));
        }
    }
    assert!(content.len() > 2 * super::text::READ_CHUNK, "file crosses buffer refills");
    let path = write(dir.path(), "big.csv", &content);
    let c = connector(&path, &[("format", "csv")], two_columns());
    let (batches, errors) = read_all(c.open(0).expect("open").as_mut());
    assert!(batches.len() > 10);
    assert!(batches.iter().all(|b| b.num_rows() <= crate::connectors::DEFAULT_BATCH_ROWS));
    let ids: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    let expected: Vec<i64> = (1..=total as i64).filter(|&i| i != bad_line as i64).collect();
    assert_eq!(ids, expected);
    assert_eq!(errors, vec![err("big.csv line 123457", "column id: cannot parse \"oops\" as bigint")]);
}

#[test]
fn decoding_ahead_on_a_pool_gives_the_batches_errors_and_offsets_of_a_plain_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut content = String::from("id,name\n");
    for i in 1..=200_000 {
        match i {
            77_777 => content.push_str("oops,not a number\n"),
            // A quoted field across lines, and blank lines, in later buffers.
            99_999 => content.push_str("99999,\"two\nlines\"\n\n\n"),
            _ => content.push_str(&format!("{i},name number {i} with some padding text\n")),
        }
    }
    assert!(content.len() > 2 * super::text::READ_CHUNK, "file crosses buffer refills");
    let path = write(dir.path(), "big.csv", &content);
    for batch_size in ["8192", "1000"] {
        let c = connector(
            &path,
            &[("format", "csv"), ("header", "true"), ("batch.size", batch_size)],
            two_columns(),
        );
        let plain = read_with_offsets(c.open(0).expect("open"));
        let pooled = read_with_offsets(open_pooled(&c, 0));
        assert_eq!(plain.0.iter().map(Vec::len).sum::<usize>(), 199_999);
        assert_eq!(plain.1, vec![err("big.csv line 77778", "column id: cannot parse \"oops\" as bigint")]);
        assert_eq!(pooled, plain, "batch.size {batch_size}");
    }

    // Byte ranges read on pools hold every row once, errors at their lines in the file.
    let whole = connector(&path, &[("format", "csv"), ("header", "true")], two_columns());
    let (whole_batches, whole_errors, _) = read_with_offsets(whole.open(0).expect("open"));
    let ranged =
        connector(&path, &[("format", "csv"), ("header", "true"), ("split.size", "1MB")], two_columns());
    assert!(ranged.splits() > 5);
    let (mut all, mut errors) = (Vec::new(), Vec::new());
    for split in 0..ranged.splits() {
        let (batches, e, _) = read_with_offsets(open_pooled(&ranged, split));
        all.extend(batches.into_iter().flatten());
        errors.extend(e);
    }
    assert_eq!(all, whole_batches.into_iter().flatten().collect::<Vec<_>>());
    assert_eq!(errors, whole_errors);

    let mut json = String::new();
    for i in 0..100_000 {
        json.push_str(&if i == 5_000 {
            "nope\n".to_string()
        } else {
            format!("{{\"id\":{i},\"name\":\"n{i}\"}}\n")
        });
    }
    let path = write(dir.path(), "big.json", &json);
    let c = connector(&path, &[("format", "json")], two_columns());
    let plain = read_with_offsets(c.open(0).expect("open"));
    assert_eq!(plain.1.len(), 1);
    assert_eq!(read_with_offsets(open_pooled(&c, 0)), plain);
}

#[test]
fn a_record_longer_than_the_room_before_a_buffer_spans_the_read_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "x".repeat(300_000);
    let mut content = String::new();
    let mut expected = Vec::new();
    let mut i = 0;
    // Short rows up to just before the first read boundary, then rows longer than the
    // headroom, so one of them is cut by each of the next boundaries.
    while content.len() < super::text::READ_CHUNK - 1000 {
        content.push_str(&format!("{i},short\n"));
        expected.push(format!("{i}|short"));
        i += 1;
    }
    for _ in 0..40 {
        content.push_str(&format!("{i},\"{long}\"\n"));
        expected.push(format!("{i}|{long}"));
        i += 1;
    }
    content.push_str(&format!("{i},last"));
    expected.push(format!("{i}|last"));
    let path = write(dir.path(), "long.csv", &content);
    let c = connector(&path, &[("format", "csv")], two_columns());
    for reader in [c.open(0).expect("open"), open_pooled(&c, 0)] {
        let (batches, errors, _) = read_with_offsets(reader);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(batches.into_iter().flatten().eq(expected.iter().cloned()));
    }
}

#[test]
fn columns_a_job_does_not_use_are_placeholders_but_still_checked() {
    let s = schema(&[
        ("id", DataType::Int64, false),
        ("name", DataType::Utf8, false),
        ("price", DataType::Int64, true),
        ("note", DataType::Utf8, true),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]);
    let mut content = String::new();
    for i in 0..3000 {
        let line = match i {
            // Malformed only in columns the job does not use: still skipped.
            100 => "100,,1,n,2024-01-01 00:00:00\n".to_string(),
            200 => "200,x,oops,n,2024-01-01 00:00:00\n".to_string(),
            // Quoted: the general path, same placeholders.
            300 => "300,\"q, x\",3,\"n\",2024-01-01 00:00:00\n".to_string(),
            _ => format!("{i},name {i},{i},note {i},2024-01-01 00:00:{:02}\n", i % 60),
        };
        content.push_str(&line);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "u.csv", &content);
    let c = connector(&path, &[("format", "csv"), ("batch.size", "256")], s);
    let (all, all_errors, _) = read_with_offsets(c.open(0).expect("open"));
    assert_eq!(all_errors.len(), 2, "{all_errors:?}");
    for pooled in [false, true] {
        let mut reader = if pooled { open_pooled(&c, 0) } else { c.open(0).expect("open") };
        reader.read_only(&[0, 4]);
        let mut batches = Vec::new();
        let mut errors = Vec::new();
        loop {
            let outcome = reader.next_batch().expect("read");
            errors.extend(reader.take_errors());
            match outcome {
                ReadOutcome::Batch(b) => batches.push(b),
                ReadOutcome::Wait(_) => {}
                ReadOutcome::Finished => break,
            }
        }
        assert_eq!(errors, all_errors, "the same rows are malformed");
        // The used columns are read; the others hold zeros and empty strings.
        let id_and_ts = |row: &String| {
            let fields: Vec<&str> = row.split('|').collect();
            format!("{}|{}", fields[0], fields[4])
        };
        let used: Vec<String> = rows(&batches).iter().map(id_and_ts).collect();
        let expected: Vec<String> = all.iter().flatten().map(id_and_ts).collect();
        assert_eq!(used, expected);
        for batch in &batches {
            assert_eq!(batch.column(1).as_string::<i32>().iter().flatten().collect::<String>(), "");
            assert!(batch.column(2).as_primitive::<Int64Type>().values().iter().all(|v| *v == 0));
            assert_eq!(batch.column(1).null_count() + batch.column(2).null_count(), 0);
        }
    }
}

#[test]
fn glob_over_several_files_gives_one_split_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "b.csv", "2,b\n");
    write(dir.path(), "a.csv", "1,a\n");
    write(dir.path(), "c.csv", "3,c\n4,d\n");
    write(dir.path(), "other.txt", "not csv\n");
    let c = connector(&dir.path().join("*.csv"), &[("format", "csv")], two_columns());
    assert_eq!(c.splits(), 3);
    let names: Vec<String> = c.files().iter().map(|p| super::display_name(p)).collect();
    assert_eq!(names, vec!["a.csv", "b.csv", "c.csv"]);
    let per_split: Vec<Vec<String>> =
        (0..3).map(|i| rows(&read_all(c.open(i).expect("open").as_mut()).0)).collect();
    assert_eq!(per_split, vec![vec!["1|a"], vec!["2|b"], vec!["3|c", "4|d"]]);
    assert!(c.open(3).is_err());
}

/// Opens `split` with a pool of two threads decoding ahead of the reads, as a running
/// source does.
fn open_pooled(c: &FileConnector, split: usize) -> Box<dyn SplitReader> {
    let mut reader = c.open(split).expect("open");
    reader.decode_on(&ReaderPool::new(2));
    reader
}

/// Reads a split to its end: its rows, row errors and the offset after each outcome.
fn read_with_offsets(
    mut reader: Box<dyn SplitReader>,
) -> (Vec<Vec<String>>, Vec<RowError>, Vec<serde_json::Value>) {
    let (mut batches, mut errors, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let outcome = reader.next_batch().expect("read");
        errors.extend(reader.take_errors());
        offsets.push(reader.offset());
        match outcome {
            ReadOutcome::Batch(b) => batches.push(rows(&[b])),
            ReadOutcome::Wait(_) => {}
            ReadOutcome::Finished => return (batches, errors, offsets),
        }
    }
}

/// Reading with a stop-and-resume after every batch gives the uninterrupted result.
fn assert_resume_equals_uninterrupted(c: &FileConnector) {
    assert_resume_equals_uninterrupted_with(c, |c| c.open(0).expect("open"));
    assert_resume_equals_uninterrupted_with(c, |c| open_pooled(c, 0));
}

fn assert_resume_equals_uninterrupted_with(
    c: &FileConnector,
    open: impl Fn(&FileConnector) -> Box<dyn SplitReader>,
) {
    let (whole, whole_errors) = read_all(open(c).as_mut());
    let whole = rows(&whole);
    let mut resumed = Vec::new();
    let mut resumed_errors = Vec::new();
    let mut offset: Option<serde_json::Value> = None;
    loop {
        let mut reader = open(c);
        if let Some(o) = &offset {
            reader.seek(o).expect("seek");
        }
        let outcome = reader.next_batch().expect("read");
        resumed_errors.extend(reader.take_errors());
        match outcome {
            ReadOutcome::Batch(b) => resumed.extend(rows(&[b])),
            ReadOutcome::Wait(_) => {}
            ReadOutcome::Finished => break,
        }
        offset = Some(reader.offset());
    }
    assert_eq!(resumed, whole);
    assert_eq!(resumed_errors, whole_errors);
}

#[test]
fn seek_resumes_where_the_offset_was_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = "id,name\n1,a\n2,\"b\nb\"\nbad,x\n3,c\n\n4,d\n5,e\n6,f\n7,g";
    let path = write(dir.path(), "r.csv", content);
    let c = connector(&path, &[("format", "csv"), ("header", "true"), ("batch.size", "2")], two_columns());
    assert_resume_equals_uninterrupted(&c);

    let mut reader = c.open(0).expect("open");
    let ReadOutcome::Batch(first) = reader.next_batch().expect("read") else { panic!("expected a batch") };
    assert_eq!(rows(&[first]), vec!["1|a", "2|b\nb"]);
    // Header (1 line) + row 1 (1 line) + row 2 (2 lines) = 4 lines, 20 bytes.
    assert_eq!(reader.offset(), serde_json::json!({"byte": 20, "line": 4}));
    let mut resumed = c.open(0).expect("open");
    resumed.seek(&reader.offset()).expect("seek");
    let (rest, errors) = read_all(resumed.as_mut());
    assert_eq!(rows(&rest), vec!["3|c", "4|d", "5|e", "6|f", "7|g"]);
    assert_eq!(errors, vec![err("r.csv line 5", "column id: cannot parse \"bad\" as bigint")]);

    let json = write(dir.path(), "r.json", "{\"id\":1}\n{\"id\":2}\nnope\n{\"id\":3}\n{\"id\":4}\n");
    let c = connector(&json, &[("format", "json"), ("batch.size", "1")], two_columns());
    assert_resume_equals_uninterrupted(&c);
}

#[test]
fn json_lines() {
    let s = schema(&[
        ("id", DataType::Int64, false),
        ("name", DataType::Utf8, true),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ("ok", DataType::Boolean, true),
    ]);
    let content = r#"{"id": 1, "name": "a", "ts": "2024-01-01 00:00:00.250", "ok": true, "extra": [1, 2]}
{"id": 2}
{"id": 3, "name": "c"
{"id": "x", "name": "d"}

{"name": "no id"}
{"id": "4", "name": 5, "ts": "2024-01-01T00:00:01"}
[1, 2]
"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "e.json", content);
    let c = connector(&path, &[("format", "json")], s);
    let (batches, errors) = read_all(c.open(0).expect("open").as_mut());
    assert_eq!(
        rows(&batches),
        vec!["1|a|2024-01-01T00:00:00.250|true", "2|NULL|NULL|NULL", "4|5|2024-01-01T00:00:01|NULL"]
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(errors[0].location, "e.json line 3");
    assert!(errors[0].reason.starts_with("invalid JSON"), "{}", errors[0].reason);
    assert_eq!(errors[1], err("e.json line 4", "column id: cannot parse \"x\" as bigint"));
    assert_eq!(errors[2], err("e.json line 6", "column id: NULL in a NOT NULL column"));
    assert_eq!(errors[3], err("e.json line 8", "expected a JSON object"));
}

#[test]
fn parquet_by_name_with_casts_and_resume() {
    use arrow::array::{Int32Array, StringArray, TimestampMillisecondArray};
    use datafusion::parquet::arrow::ArrowWriter;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.parquet");
    let file_schema = Arc::new(Schema::new(vec![
        Field::new("Extra", DataType::Utf8, true),
        Field::new("Name", DataType::Utf8, true),
        Field::new("ID", DataType::Int32, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("qty", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&file_schema),
        vec![
            Arc::new(StringArray::from(vec!["e1", "e2", "e3", "e4"])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c"), Some("d")])),
            Arc::new(Int32Array::from(vec![1, 2, 3, 4])),
            Arc::new(TimestampMillisecondArray::from(vec![1000, 2000, 3000, 4000])),
            Arc::new(StringArray::from(vec!["10", "x", "30", "40"])),
        ],
    )
    .expect("batch");
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).expect("create"), file_schema, None)
        .expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let s = schema(&[
        ("id", DataType::Int64, false),
        ("name", DataType::Utf8, true),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ("qty", DataType::Int64, true),
    ]);
    let c = connector(&path, &[("format", "parquet"), ("batch.size", "3")], Arc::clone(&s));
    let (batches, errors) = read_all(c.open(0).expect("open").as_mut());
    assert_eq!(
        rows(&batches),
        vec!["1|a|1970-01-01T00:00:01|10", "3|c|1970-01-01T00:00:03|30", "4|d|1970-01-01T00:00:04|40"]
    );
    assert_eq!(errors, vec![err("p.parquet row 2", "column qty: cannot convert \"x\" to bigint")]);

    let mut reader = c.open(0).expect("open");
    let _ = reader.next_batch().expect("read");
    assert_eq!(reader.offset(), serde_json::json!({"row": 3}));
    let mut resumed = c.open(0).expect("open");
    resumed.seek(&reader.offset()).expect("seek");
    assert_eq!(rows(&read_all(resumed.as_mut()).0), vec!["4|d|1970-01-01T00:00:04|40"]);
    assert_resume_equals_uninterrupted(&c);

    let missing = schema(&[("id", DataType::Int64, true), ("price", DataType::Int64, true)]);
    let mut opts = options(&[("format", "parquet")]);
    opts.insert("path".into(), path.to_string_lossy().into_owned());
    let e =
        FileConnector::new(&opts, missing, &anywhere(), SplitLimit::default()).expect_err("missing column");
    assert!(e.to_string().contains("no column 'price'"), "{e}");
}

#[test]
fn a_truncated_parquet_file_is_malformed_data_and_the_others_are_read() {
    use arrow::array::Int64Array;
    use datafusion::parquet::arrow::ArrowWriter;

    let dir = tempfile::tempdir().expect("tempdir");
    let file_schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(Arc::clone(&file_schema), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])
            .expect("batch");
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, file_schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    std::fs::write(dir.path().join("a.parquet"), &bytes).expect("write");
    std::fs::write(dir.path().join("b.parquet"), &bytes[..bytes.len() / 2]).expect("write");

    let c = connector(
        &dir.path().join("*.parquet"),
        &[("format", "parquet")],
        schema(&[("id", DataType::Int64, false)]),
    );
    assert_eq!(c.splits(), 2);
    let (good, errors) = read_all(c.open(0).expect("open").as_mut());
    assert_eq!((rows(&good), errors), (vec!["1".to_string(), "2".into(), "3".into()], vec![]));
    let (cut, errors) = read_all(c.open(1).expect("open").as_mut());
    assert!(cut.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].location, "b.parquet");
    assert!(errors[0].reason.contains("not a readable Parquet file"), "{errors:?}");

    // Only truncated files: nothing to read, refused when the source is created.
    let mut opts = options(&[("format", "parquet")]);
    opts.insert("path".into(), dir.path().join("b.parquet").to_string_lossy().into_owned());
    let e = FileConnector::new(
        &opts,
        schema(&[("id", DataType::Int64, false)]),
        &anywhere(),
        SplitLimit::default(),
    )
    .expect_err("no readable file");
    assert!(e.to_string().contains("b.parquet' is not a readable Parquet file"), "{e}");
}

#[test]
fn option_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "o.csv", "1,a\n");
    let p = path.to_string_lossy().into_owned();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("format", "csv")], "needs option 'path'"),
        (vec![("path", &p)], "needs option 'format'"),
        (vec![("path", &p), ("format", "xml")], "unknown format 'xml'"),
        (
            vec![("path", &p), ("format", "csv"), ("delimiter", ";;")],
            "option 'delimiter' must be a single character",
        ),
        (vec![("path", &p), ("format", "csv"), ("delimiter", "\"")], "option 'delimiter' cannot be"),
        (
            vec![("path", &p), ("format", "csv"), ("header", "yes")],
            "option 'header' must be 'true' or 'false'",
        ),
        (vec![("path", &p), ("format", "csv"), ("batch.size", "0")], "option 'batch.size' must be"),
        (vec![("path", &p), ("format", "csv"), ("colour", "red")], "unknown option 'colour'"),
        (
            vec![("path", &p), ("format", "json"), ("header", "true")],
            "option 'header' only applies to format 'csv'",
        ),
        (
            vec![("path", "/nonexistent/dir/*.csv"), ("format", "csv")],
            "no file matches path '/nonexistent/dir/*.csv'",
        ),
        (vec![("path", "[unclosed"), ("format", "csv")], "not a valid glob pattern"),
        (vec![("path", &p), ("format", "parquet")], "not a readable Parquet file"),
    ];
    for (opts, expected) in cases {
        let e = FileConnector::new(&options(&opts), two_columns(), &anywhere(), SplitLimit::default())
            .expect_err(expected);
        assert!(e.to_string().contains(expected), "{opts:?}: got '{}', expected '{expected}'", e);
    }
    let list = schema(&[("l", DataType::List(Arc::new(Field::new("item", DataType::Int64, true))), true)]);
    let e = FileConnector::new(
        &options(&[("path", &p), ("format", "csv")]),
        list,
        &anywhere(),
        SplitLimit::default(),
    )
    .expect_err("type");
    assert!(e.to_string().contains("is not supported"), "{e}");
}

#[test]
fn splits_past_the_cap_are_refused_before_they_are_listed() {
    let dir = tempfile::tempdir().expect("tmp");
    for i in 0..3 {
        write(dir.path(), &format!("f{i}.csv"), "1,a\n2,b\n");
    }
    let glob = dir.path().join("*.csv").to_string_lossy().into_owned();
    let limit = SplitLimit::new(2);
    let e = FileConnector::new(
        &options(&[("path", &glob), ("format", "csv")]),
        two_columns(),
        &anywhere(),
        limit,
    )
    .expect_err("3 files");
    assert_eq!(e.sqlstate(), Some("53400"));
    assert!(e.to_string().contains("matches 3 files"), "{e}");
    // One byte per split of a single file: refused without listing a range per byte.
    let one = dir.path().join("f0.csv").to_string_lossy().into_owned();
    let opts = options(&[("path", &one), ("format", "csv"), ("split.size", "1")]);
    let e = FileConnector::new(&opts, two_columns(), &anywhere(), limit).expect_err("8 splits");
    assert!(e.to_string().contains("[sources] max_splits"), "{e}");
    assert!(FileConnector::new(&opts, two_columns(), &anywhere(), SplitLimit::new(8)).is_ok());
}

/// Throughput of a Nexmark-bid-shaped CSV (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn csv_bid_throughput() {
    let s = schema(&[
        ("auction", DataType::Int64, true),
        ("bidder", DataType::Int64, true),
        ("price", DataType::Int64, true),
        ("channel", DataType::Utf8, true),
        ("url", DataType::Utf8, true),
        ("date_time", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ("extra", DataType::Utf8, true),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut content = String::new();
    let total = 1_000_000;
    for i in 0..total {
        content.push_str(&format!(
            "{},{},{},channel-{},https://www.nexmark.com/item.htm?query=1&channel_id={},2015-07-15 00:00:{:02}.{:03},\n",
            1000 + i % 977,
            2000 + i % 1013,
            100 + i % 5000,
            i % 4,
            i % 10_000,
            (i / 1000) % 60,
            i % 1000
        ));
    }
    let path = write(dir.path(), "bids.csv", &content);
    let c = connector(&path, &[("format", "csv")], s);
    let start = std::time::Instant::now();
    let (batches, errors) = read_all(c.open(0).expect("open").as_mut());
    let elapsed = start.elapsed();
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, total);
    assert!(errors.is_empty());
    println!(
        "{n} bid rows ({} MB) in {elapsed:?}: {:.2} M rows/s",
        content.len() / 1_000_000,
        n as f64 / elapsed.as_secs_f64() / 1e6
    );
}

#[test]
fn a_large_text_file_is_read_as_byte_ranges_that_together_hold_every_row_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut content = String::from("id,name\n");
    for i in 0..500 {
        match i {
            // A quoted field with a newline, and a malformed row in a later range.
            137 => content.push_str("137,\"two\nlines\"\n"),
            400 => content.push_str("oops,bad\n"),
            _ => content.push_str(&format!("{i},name-{i}\n")),
        }
    }
    let path = write(dir.path(), "big.csv", &content);
    let whole = connector(&path, &[("format", "csv"), ("header", "true")], two_columns());
    assert_eq!(whole.splits(), 1, "below the default split size");
    let (batches, whole_errors) = read_all(whole.open(0).expect("open").as_mut());
    let expected = rows(&batches);

    let ranged =
        connector(&path, &[("format", "csv"), ("header", "true"), ("split.size", "1KB")], two_columns());
    assert!(ranged.splits() > 5, "{} splits", ranged.splits());
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for split in 0..ranged.splits() {
        let (batches, e) = read_all(ranged.open(split).expect("open").as_mut());
        all.extend(rows(&batches));
        errors.extend(e);
    }
    assert_eq!(all, expected, "the ranges read every row once, in order");
    assert_eq!(all.len(), 499);
    // The malformed row is reported with its line in the whole file (the header is line 1,
    // and the quoted field takes two lines).
    assert_eq!(errors, whole_errors);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].location, "big.csv line 403");
}

#[test]
fn split_size_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "t.csv", "1,a\n").to_string_lossy().into_owned();
    for bad in ["0", "12XB", "-1", "MB"] {
        let opts = options(&[("path", &path), ("format", "csv"), ("split.size", bad)]);
        let e = FileConnector::new(&opts, two_columns(), &anywhere(), SplitLimit::default()).expect_err(bad);
        assert!(e.to_string().contains("split.size"), "{e}");
    }
}

/// Dates and timestamps read as a cast reads them (values from PostgreSQL 15): no seconds,
/// `T`, a zone (ignored by `timestamp`), a date's digits alone, an abbreviation; text that
/// is not a date is a malformed row, and a quoted empty field is NULL.
#[test]
fn csv_and_json_read_dates_and_timestamps_as_postgres_does() {
    let s = schema(&[
        ("id", DataType::Int64, true),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ("tz", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true),
        ("d", DataType::Date32, true),
    ]);
    let content = "1,2020-01-01 12:00,2020-01-01T12:00:00Z,20200101\n\
                   2,2020-01-01T12:00:00Z,2020-01-01 12:00+02,2020-01-01 23:59\n\
                   3,noon,2020-01-01 12:00 pst,2020-01-01\n\
                   4,2020-01-01 12:00:00.1234567,2020-01-01 12:00 PST,2021-02-29\n\
                   5,\"\",2020-07-01 12:00 Europe/Paris,\n";
    let (csv_rows, errors) = read_csv(content, &[], Arc::clone(&s));
    assert_eq!(
        csv_rows,
        vec![
            "1|2020-01-01T12:00:00|2020-01-01T12:00:00Z|2020-01-01",
            "2|2020-01-01T12:00:00|2020-01-01T10:00:00Z|2020-01-01",
            "5|NULL|2020-07-01T10:00:00Z|NULL",
        ]
    );
    assert_eq!(
        errors,
        vec![
            err("t.csv line 3", "column ts: cannot parse \"noon\" as timestamp"),
            err("t.csv line 4", "column d: cannot parse \"2021-02-29\" as date"),
        ]
    );

    let json = r#"{"id": 1, "ts": "2020-01-01 12:00", "tz": "2020-01-01T12:00:00Z", "d": "20200101"}
{"id": 2, "ts": "2020-01-01 12:00:00.1234567", "tz": "2020-01-01 12:00 pst", "d": "2020-01-01 23:59"}
{"id": 3, "ts": "noon"}
"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "t.json", json);
    let c = connector(&path, &[("format", "json")], s);
    let (batches, errors) = read_all(c.open(0).expect("open").as_mut());
    assert_eq!(
        rows(&batches),
        vec![
            "1|2020-01-01T12:00:00|2020-01-01T12:00:00Z|2020-01-01",
            "2|2020-01-01T12:00:00.123457|2020-01-01T20:00:00Z|2020-01-01",
        ]
    );
    assert_eq!(errors, vec![err("t.json line 3", "column ts: cannot parse \"noon\" as timestamp")]);
}
