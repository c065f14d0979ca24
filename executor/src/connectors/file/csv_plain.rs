//! The fast path of CSV decoding, for chunks of plain records: no quotes and no carriage
//! returns inside a record, which is what machine-written CSV nearly always is.
//!
//! The general path (arrow-csv, then [`super::convert::conform`]) parses every record with
//! csv-core's state machine, copies each field into an intermediate string array and reads
//! dates and timestamps from a second string array. Here each record is split at its
//! delimiters in one SIMD pass (`memchr`) and every field is parsed where it lies in the input,
//! straight into its column. On the Nexmark bid file this is most of the source's CPU.
//!
//! Results are the general path's by construction: fields are parsed by the functions
//! arrow-csv calls (Arrow's `Parser` for numbers, `parse_decimal`, its boolean rule; an
//! empty field is NULL) and dates and timestamps by the reader casts and `COPY` use.
//! Whatever this path would not take exactly as the general path takes it — a quote, a
//! `\r`, invalid UTF-8, a record with the wrong number of fields, a value that does not
//! parse — makes it give the chunk back, and [`super::csv::CsvFormat`] decodes it the
//! general way, which isolates and explains malformed records. So this path changes speed,
//! never results.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, PrimitiveBuilder, StringBuilder};
use arrow::compute::kernels::cast_utils::{parse_decimal, Parser};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Schema,
};

use super::convert::{placeholder, Unused};
use super::text::Record;
use crate::functions::text_to_timestamp::read_texts_each;

const QUOTE: u8 = b'"';

/// Where the fields of a chunk's records lie: for record `r` of a source with `n` columns,
/// field `c` is `starts[r * (n + 1) + c] .. starts[r * (n + 1) + c + 1] - 1` (each record
/// ends with one more entry, one past its end, as if a delimiter followed it).
struct Fields<'a> {
    text: &'a str,
    starts: Vec<u32>,
    columns: usize,
    rows: usize,
}

impl<'a> Fields<'a> {
    /// Splits `records` of `chunk`; `None` unless every record is plain and has exactly
    /// `columns` fields.
    fn split(chunk: &'a [u8], records: &[Record], columns: usize, delimiter: u8) -> Option<Self> {
        let text = std::str::from_utf8(chunk).ok()?;
        if chunk.len() >= u32::MAX as usize || columns == 0 {
            return None;
        }
        let mut starts = Vec::with_capacity(records.len() * (columns + 1));
        // One search over all the records (a search per record costs more in starting than
        // in searching: records are short). Between records lie only line ends and blank
        // lines, whose `\r`s are passed over.
        let span = records.first()?.start..records.last()?.end;
        let mut hits = memchr::memchr3_iter(delimiter, QUOTE, b'\r', chunk.get(span.clone())?)
            .map(|i| i + span.start)
            .peekable();
        for record in records {
            while hits.next_if(|&i| i < record.start).is_some() {}
            starts.push(record.start as u32);
            let mut found = 1;
            while let Some(i) = hits.next_if(|&i| i < record.end) {
                if chunk[i] != delimiter || found == columns {
                    return None;
                }
                found += 1;
                starts.push((i + 1) as u32);
            }
            if found != columns {
                return None;
            }
            starts.push((record.end + 1) as u32);
        }
        Some(Fields { text, starts, columns, rows: records.len() })
    }

    /// Column `column`'s field of every record, in order; an empty field is NULL, as
    /// arrow-csv reads it.
    fn column(&self, column: usize) -> impl ExactSizeIterator<Item = Option<&'a str>> + Clone + '_ {
        (0..self.rows).map(move |row| {
            let at = row * (self.columns + 1) + column;
            let (start, end) = (self.starts[at] as usize, self.starts[at + 1] as usize - 1);
            // The bounds are ASCII delimiters (or the record's ends) in valid UTF-8.
            self.text.get(start..end).filter(|field| !field.is_empty())
        })
    }
}

/// The columns of `records`, one per field of `declared`: text and binary columns as text
/// (the read types of the general path, which [`super::convert::conform`] finishes), every
/// other column in its declared type. An `unused` text column is a placeholder (its values
/// are valid UTF-8 and, if it is NOT NULL, none is empty: all there is to check). `None`
/// hands the chunk to the general path.
pub(super) fn decode(
    chunk: &[u8],
    records: &[Record],
    declared: &Schema,
    delimiter: u8,
    unused: &Unused,
) -> Option<Vec<ArrayRef>> {
    let fields = Fields::split(chunk, records, declared.fields().len(), delimiter)?;
    declared
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let values = fields.column(i);
            let array: ArrayRef = match field.data_type() {
                DataType::Int16 => Arc::new(primitive::<Int16Type>(values)?),
                DataType::Int32 => Arc::new(primitive::<Int32Type>(values)?),
                DataType::Int64 => Arc::new(primitive::<Int64Type>(values)?),
                DataType::Float32 => Arc::new(primitive::<Float32Type>(values)?),
                DataType::Float64 => Arc::new(primitive::<Float64Type>(values)?),
                DataType::Decimal128(precision, scale) => {
                    let mut builder = PrimitiveBuilder::<Decimal128Type>::with_capacity(values.len());
                    for value in values {
                        let value =
                            value.map(|v| parse_decimal::<Decimal128Type>(v, *precision, *scale)).transpose();
                        builder.append_option(value.ok()?);
                    }
                    Arc::new(builder.finish().with_precision_and_scale(*precision, *scale).ok()?)
                }
                DataType::Boolean => {
                    let parsed = values.map(|v| v.map_or(Some(None), |text| parse_bool(text).map(Some)));
                    Arc::new(parsed.collect::<Option<BooleanArray>>()?)
                }
                DataType::Utf8 | DataType::Binary if unused.is_unused(i) => {
                    if !field.is_nullable() && values.clone().any(|v| v.is_none()) {
                        return None;
                    }
                    match unused.placeholder(i, values.len()) {
                        Some(blank) if blank.data_type() == &DataType::Utf8 => blank,
                        _ => placeholder(&DataType::Utf8, values.len())?,
                    }
                }
                DataType::Utf8 | DataType::Binary => {
                    let bytes = values.clone().map(|v| v.map_or(0, str::len)).sum();
                    let mut builder = StringBuilder::with_capacity(values.len(), bytes);
                    values.for_each(|v| builder.append_option(v));
                    Arc::new(builder.finish())
                }
                time @ (DataType::Date32 | DataType::Timestamp(..)) => {
                    read_texts_each(values, time, |_, e| Err(e)).ok()?
                }
                _ => return None,
            };
            Some(array)
        })
        .collect()
}

/// Values of a numeric column, parsed as arrow-csv parses them.
fn primitive<'a, T: ArrowPrimitiveType + Parser>(
    values: impl ExactSizeIterator<Item = Option<&'a str>>,
) -> Option<arrow::array::PrimitiveArray<T>> {
    let mut builder = PrimitiveBuilder::<T>::with_capacity(values.len());
    for value in values {
        match value {
            Some(text) => builder.append_value(T::parse(text)?),
            None => builder.append_null(),
        }
    }
    Some(builder.finish())
}

/// A boolean as arrow-csv reads one: `true` or `false` in any case.
fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::RecordBatch;
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

    use super::super::convert::conform;
    use super::super::csv::CsvFormat;
    use super::super::text::{Record, RecordFormat};
    use super::super::CsvOptions;

    fn schema() -> SchemaRef {
        let columns = [
            ("i16", DataType::Int16),
            ("i32", DataType::Int32),
            ("i64", DataType::Int64),
            ("f32", DataType::Float32),
            ("f64", DataType::Float64),
            ("dec", DataType::Decimal128(10, 2)),
            ("b", DataType::Boolean),
            ("s", DataType::Utf8),
            ("d", DataType::Date32),
            ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("ts3", DataType::Timestamp(TimeUnit::Millisecond, None)),
            ("tz", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))),
            ("bin", DataType::Binary),
        ];
        Arc::new(Schema::new(columns.map(|(name, t)| Field::new(name, t, true)).to_vec()))
    }

    /// The records of `chunk`: its non-empty lines (a `\r` before a `\n` ends the line too).
    fn records(chunk: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        let mut start = 0;
        for (line, content) in chunk.split(|b| *b == b'\n').enumerate() {
            let end = start + content.len() - usize::from(content.ends_with(b"\r"));
            if end > start {
                out.push(Record { start, end, line: line as u64 + 1, flag: false });
            }
            start += content.len() + 1;
        }
        out
    }

    /// Both paths' batches for `chunk`, each after `conform`: the fast one only if it took
    /// the chunk.
    fn both(chunk: &[u8]) -> (Option<RecordBatch>, Option<RecordBatch>) {
        let format = CsvFormat::new(schema(), CsvOptions { header: false, delimiter: b',' });
        let records = records(chunk);
        let finish = |columns| conform(columns, &schema(), &mut Vec::new()).expect("conform");
        let general = format.decode_general(chunk, &records).expect("general path");
        assert!(general.errors.is_empty(), "{:?}", general.errors);
        let fast = super::decode(chunk, &records, &schema(), b',', &Default::default()).and_then(finish);
        (fast, finish(general.columns))
    }

    #[test]
    fn plain_records_decode_to_what_the_general_path_gives() {
        let chunk = "\
1,-2,9000000000,1.5,-2.25e3,12.34,true,hello,2024-02-29,2024-01-01 00:00:00.000,2024-01-01 12:00:00.1235,2024-01-01 12:00+02,raw
-32768,2147483647,-9223372036854775808,,0.1,-0.5,FALSE,,1999-12-31,2024-01-01T23:59:59.9999996,2020-01-01,2020-01-01 00:00:00Z,
,,,NaN,inf,,,ünï wörds,,,,,
+7,007,-0,3,4,5,True,a b c,2024-01-01 12:00,1900-06-30 01:02:03,2300-01-01 00:00:00.0005,2024-06-01 12:00 Europe/Paris,x
";
        let (fast, general) = both(chunk.as_bytes());
        let fast = fast.expect("a chunk of plain records takes the fast path");
        assert_eq!(fast, general.expect("good rows"));
        assert_eq!(fast.num_rows(), 4);
    }

    #[test]
    fn line_ends_with_carriage_returns_and_blank_lines_between_records_take_the_fast_path() {
        let good = "1,2,3,1,1,1,true,s,2024-01-01,2024-01-01 00:00,2024-01-01 00:00,2024-01-01 00:00Z,b";
        let chunk = format!("{good}\r\n\r\n\n{good}\r\n{good}\n");
        let (fast, general) = both(chunk.as_bytes());
        let fast = fast.expect("the fast path takes it");
        assert_eq!(fast.num_rows(), 3);
        assert_eq!(fast, general.expect("good rows"));
    }

    #[test]
    fn records_the_fast_path_does_not_take_go_to_the_general_path() {
        let good = "1,2,3,1,1,1,true,s,2024-01-01,2024-01-01 00:00,2024-01-01 00:00,2024-01-01 00:00Z,b\n";
        let cases = [
            // A quoted field.
            good.replace(",s,", ",\"s,t\","),
            // A carriage return inside a record.
            good.replace(",s,", ",s\r,"),
            // Too few and too many fields.
            good.replace(",b\n", "\n"),
            good.replace(",b\n", ",b,c\n"),
        ];
        for case in &cases {
            let chunk = format!("{good}{case}");
            let records = records(chunk.as_bytes());
            assert!(
                super::decode(chunk.as_bytes(), &records, &schema(), b',', &Default::default()).is_none(),
                "{chunk:?}"
            );
        }
        // Values that do not parse, and bytes that are not UTF-8.
        let bad_values = [
            good.replacen("1,", "99999,", 1),
            good.replace(",true,", ",yes,"),
            good.replace(",2024-01-01,", ",2024-02-30,"),
            good.replace(",1,1,1,", ",1,1,123456789,"),
            good.replace(",1,1,1,", ",x,1,1,"),
        ];
        for case in &bad_values {
            let chunk = format!("{good}{case}");
            let records = records(chunk.as_bytes());
            assert!(
                super::decode(chunk.as_bytes(), &records, &schema(), b',', &Default::default()).is_none(),
                "{chunk:?}"
            );
        }
        let mut invalid = good.as_bytes().to_vec();
        invalid[good.find(",s,").expect("s") + 1] = 0xff;
        assert!(super::decode(&invalid, &records(&invalid), &schema(), b',', &Default::default()).is_none());
    }

    #[test]
    fn a_decimal_with_more_places_than_its_scale_reads_as_the_general_path_reads_it() {
        let chunk =
            "1,2,3,1,1,1.005,true,s,2024-01-01,2024-01-01 00:00,2024-01-01 00:00,2024-01-01 00:00Z,b\n";
        let (fast, general) = both(chunk.as_bytes());
        assert_eq!(fast.expect("the fast path takes it"), general.expect("a good row"));
    }

    #[test]
    fn a_decoded_chunk_without_quotes_is_decoded_by_the_fast_path_through_the_format() {
        let chunk = b"1,2,3,1,1,1,true,s,2024-01-01,2024-01-01 00:00,2024-01-01 00:00,2024-01-01 00:00Z,b\n";
        let format = CsvFormat::new(schema(), CsvOptions { header: false, delimiter: b',' });
        let decoded = format.decode(chunk, &records(chunk), &Default::default()).expect("decode");
        // The fast path gives timestamps in their declared type; the general one as text.
        assert_eq!(decoded.columns[9].data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
    }
}
