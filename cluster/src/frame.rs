//! Runtime [`Message`]s as data-plane frames and back: a batch as one Arrow IPC stream
//! (with its ops, when it has them, as a last `__weir_op` column), watermarks and idleness
//! as proto fields, barriers as their JSON documents.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int8Array, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use weir_executor::message::{Barrier, Message, StreamBatch};

use crate::error::{ClusterError, ClusterResult};
use crate::proto::{data_frame::Kind, DataFrame};

/// The column that carries a changelog batch's ops across processes.
pub const OP_COLUMN: &str = "__weir_op";

/// A channel's message as the frame that carries it.
pub fn encode(channel: u64, message: &Message) -> ClusterResult<DataFrame> {
    let kind = match message {
        Message::Batch(batch) => Kind::Batch(encode_batch(batch)?),
        Message::Watermark(w) => Kind::Watermark(*w),
        Message::Idle => Kind::Idle(Default::default()),
        Message::Barrier(barrier) => Kind::BarrierJson(serde_json::to_vec(barrier)?),
    };
    Ok(DataFrame { channel, kind: Some(kind) })
}

/// What a frame carries for its channel.
#[derive(Debug)]
pub enum Decoded {
    Open,
    Message(Message),
    Close,
}

pub fn decode(kind: Kind) -> ClusterResult<Decoded> {
    Ok(match kind {
        Kind::Open(_) => Decoded::Open,
        Kind::Close(_) => Decoded::Close,
        Kind::Batch(bytes) => Decoded::Message(Message::Batch(decode_batch(&bytes)?)),
        Kind::Watermark(w) => Decoded::Message(Message::Watermark(w)),
        Kind::Idle(_) => Decoded::Message(Message::Idle),
        Kind::BarrierJson(json) => {
            Decoded::Message(Message::Barrier(serde_json::from_slice::<Barrier>(&json)?))
        }
    })
}

fn encode_batch(batch: &StreamBatch) -> ClusterResult<Vec<u8>> {
    let data = match &batch.ops {
        None => batch.data.clone(),
        Some(ops) => {
            let schema = batch.data.schema();
            let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
            fields.push(Arc::new(Field::new(OP_COLUMN, DataType::Int8, false)));
            let mut columns = batch.data.columns().to_vec();
            columns.push(Arc::new(ops.clone()) as ArrayRef);
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?
        }
    };
    let mut bytes = Vec::with_capacity(data.get_array_memory_size() + 512);
    let mut writer = StreamWriter::try_new(&mut bytes, &data.schema())?;
    writer.write(&data)?;
    writer.finish()?;
    drop(writer);
    Ok(bytes)
}

fn decode_batch(bytes: &[u8]) -> ClusterResult<StreamBatch> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let data = reader
        .next()
        .transpose()?
        .ok_or_else(|| ClusterError::Protocol("a batch frame holds no record batch".into()))?;
    let schema = data.schema();
    let last = schema.fields().len().checked_sub(1);
    match last.filter(|&i| schema.field(i).name() == OP_COLUMN) {
        None => Ok(StreamBatch::inserts(data)),
        Some(i) => {
            let ops = data
                .column(i)
                .as_any()
                .downcast_ref::<Int8Array>()
                .cloned()
                .ok_or_else(|| ClusterError::Protocol(format!("{OP_COLUMN} is not an Int8 column")))?;
            if ops.null_count() > 0 {
                return Err(ClusterError::Protocol(format!("{OP_COLUMN} has nulls")));
            }
            let mut data = data;
            data.remove_column(i);
            Ok(StreamBatch::with_ops(data, ops))
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap()
    }

    fn round_trip(message: &Message) -> Message {
        let frame = encode(7, message).unwrap();
        assert_eq!(frame.channel, 7);
        match decode(frame.kind.unwrap()).unwrap() {
            Decoded::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn batches_keep_their_rows_and_ops() {
        let inserts = StreamBatch::inserts(batch());
        match round_trip(&Message::Batch(inserts)) {
            Message::Batch(b) => {
                assert_eq!(b.data, batch());
                assert!(b.ops.is_none());
            }
            other => panic!("{other:?}"),
        }
        let changes = StreamBatch::with_ops(batch(), Int8Array::from(vec![1, -1, 1]));
        match round_trip(&Message::Batch(changes)) {
            Message::Batch(b) => {
                assert_eq!(b.data, batch(), "the op column is not a data column");
                assert_eq!(b.ops, Some(Int8Array::from(vec![1, -1, 1])));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn control_messages_round_trip() {
        assert!(matches!(round_trip(&Message::Watermark(-42)), Message::Watermark(-42)));
        assert!(matches!(round_trip(&Message::Idle), Message::Idle));
        match round_trip(&Message::Barrier(Barrier::checkpoint(9))) {
            Message::Barrier(b) => assert!(b.epoch == 9 && b.checkpoint),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupt_batch_is_an_error_not_a_panic() {
        let frame = encode(1, &Message::Batch(StreamBatch::inserts(batch()))).unwrap();
        let Some(Kind::Batch(mut bytes)) = frame.kind else { panic!() };
        bytes.truncate(bytes.len() / 2);
        assert!(decode(Kind::Batch(bytes)).is_err());
        assert!(decode(Kind::Batch(vec![0xff; 64])).is_err());
    }
}
