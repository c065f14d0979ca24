//! Two data planes in one test process, connected over loopback TCP as two processes'
//! would be.

use std::collections::BTreeMap;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use weir_executor::message::StreamBatch;
use weir_executor::task_manager::InputChannel;

use super::*;

/// Serves `plane`'s data service on an ephemeral loopback port; returns its address and a
/// handle that stops the server when aborted.
async fn serve(plane: &Arc<NetworkDataPlane>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let service = plane.service();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    (address, server)
}

fn descriptor(task: TaskId, inputs: &[ChannelId], remote: &[(ChannelId, &str)]) -> TaskDescriptor {
    let json = serde_json::json!({
        "id": task,
        "slot": 0,
        "vertex": {"id": 0, "parallelism": 1, "source": null, "inputs": [], "chain": []},
        "input_schemas": [],
        "inputs": [],
        "outputs": [],
    });
    let mut desc: TaskDescriptor = serde_json::from_value(json).unwrap();
    desc.inputs = inputs.iter().map(|c| InputChannel { channel: *c, edge: 0 }).collect();
    desc.remote_outputs = remote.iter().map(|(c, a)| (*c, a.to_string())).collect::<BTreeMap<_, _>>();
    desc
}

fn batch(values: Vec<i64>) -> Message {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let data = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap();
    Message::Batch(StreamBatch::inserts(data))
}

fn value(message: &Message) -> i64 {
    match message {
        Message::Batch(b) => b.data.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0),
        other => panic!("expected a batch, got {other:?}"),
    }
}

/// Collects the failures the planes report.
struct Failures(mpsc::UnboundedSender<TaskEvent>);

impl JobManagerEndpoint for Failures {
    fn report(&self, event: TaskEvent) -> ExecResult<()> {
        let _ = self.0.send(event);
        Ok(())
    }
}

/// A plane that sends every batch as it comes (no coalescing): these tests count messages.
fn plane(secret: ClusterSecret) -> Arc<NetworkDataPlane> {
    NetworkDataPlane::configured(secret, None, ExchangeBatching { rows: 1, linger: Duration::ZERO })
}

const PRODUCER: TaskId = TaskId { job: 1, vertex: 0, subtask: 0 };
const CONSUMER: TaskId = TaskId { job: 1, vertex: 1, subtask: 0 };

#[tokio::test]
async fn messages_cross_in_order_and_close_ends_the_input() {
    let (producer, consumer) = (plane(ClusterSecret::default()), plane(ClusterSecret::default()));
    let (address, _server) = serve(&consumer).await;
    producer.prepare(&descriptor(PRODUCER, &[], &[(5, &address)]));
    consumer.prepare(&descriptor(CONSUMER, &[5], &[]));
    let mut input = consumer.open_receiver(5).unwrap();
    let output = producer.open_sender(5).unwrap();
    // More than the credits and queues hold: the producer runs ahead only as far as they go.
    let producing = tokio::spawn(async move {
        for i in 0..100 {
            output.send(batch(vec![i])).await.unwrap();
            if i % 10 == 0 {
                output.send(Message::Watermark(i)).await.unwrap();
            }
        }
        output.send(Message::Barrier(weir_executor::message::Barrier::checkpoint(3))).await.unwrap();
    });
    let mut next = 0;
    loop {
        match input.recv().await {
            Some(Message::Batch(b)) => {
                assert_eq!(value(&Message::Batch(b)), next);
                next += 1;
            }
            Some(Message::Watermark(w)) => assert_eq!(w, next - 1),
            Some(Message::Barrier(b)) => {
                assert_eq!((next, b.epoch), (100, 3), "the barrier comes after every batch before it");
            }
            Some(Message::Idle) => panic!("no idle was sent"),
            None => break,
        }
    }
    assert_eq!(next, 100);
    producing.await.unwrap();
}

#[tokio::test]
async fn small_batches_are_coalesced_and_never_held_past_a_barrier_or_the_linger() {
    let producer = NetworkDataPlane::new(ClusterSecret::default());
    let consumer = plane(ClusterSecret::default());
    let (address, _server) = serve(&consumer).await;
    producer.prepare(&descriptor(PRODUCER, &[], &[(6, &address)]));
    consumer.prepare(&descriptor(CONSUMER, &[6], &[]));
    let mut input = consumer.open_receiver(6).unwrap();
    let output = producer.open_sender(6).unwrap();
    for i in 0..100 {
        output.send(batch(vec![i])).await.unwrap();
    }
    output.send(Message::Barrier(weir_executor::message::Barrier::new(1))).await.unwrap();
    let (mut rows, mut messages) = (Vec::new(), 0);
    loop {
        match input.recv().await.unwrap() {
            Message::Batch(b) => {
                messages += 1;
                let values = b.data.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                rows.extend(values.values().iter().copied());
            }
            Message::Barrier(b) => {
                assert_eq!(b.epoch, 1);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rows, (0..100).collect::<Vec<i64>>(), "every row, in order, before the barrier");
    assert!(messages < 100, "{messages} messages for 100 one-row batches");
    // A lone batch still goes, once its linger is over, with nothing after it.
    output.send(batch(vec![7])).await.unwrap();
    assert_eq!(value(&input.recv().await.unwrap()), 7);
    // Closing flushes what waits and then ends the input.
    output.send(batch(vec![8])).await.unwrap();
    drop(output);
    assert_eq!(value(&input.recv().await.unwrap()), 8);
    assert!(input.recv().await.is_none());
}

#[tokio::test]
async fn a_slow_consumer_holds_its_producer_back_without_stopping_other_channels() {
    let (producer, consumer) = (plane(ClusterSecret::default()), plane(ClusterSecret::default()));
    let (address, _server) = serve(&consumer).await;
    producer.prepare(&descriptor(PRODUCER, &[], &[(1, &address), (2, &address)]));
    consumer.prepare(&descriptor(CONSUMER, &[1, 2], &[]));
    let mut slow = consumer.open_receiver(1).unwrap();
    let mut fast = consumer.open_receiver(2).unwrap();
    let (to_slow, to_fast) = (producer.open_sender(1).unwrap(), producer.open_sender(2).unwrap());
    // Nobody reads channel 1: the producer can get only so far ahead.
    let mut sent = 0;
    while sent < 1000 {
        match tokio::time::timeout(Duration::from_millis(300), to_slow.send(batch(vec![sent]))).await {
            Ok(result) => result.unwrap(),
            Err(_) => break,
        }
        sent += 1;
    }
    // Its local queue, the credits in flight, and the consumer's queue: a few times the
    // channel capacity, never the whole stream.
    assert!(
        sent >= CHANNEL_CAPACITY as i64 && sent <= 4 * CHANNEL_CAPACITY as i64,
        "sent {sent} before blocking"
    );
    // Channel 2 on the same connection still flows.
    for i in 0..200 {
        to_fast.send(batch(vec![i])).await.unwrap();
        assert_eq!(value(&fast.recv().await.unwrap()), i);
    }
    // Reading the slow channel lets it continue, in order.
    for i in 0..sent {
        assert_eq!(value(&slow.recv().await.unwrap()), i);
    }
    to_slow.send(batch(vec![sent])).await.unwrap();
    assert_eq!(value(&slow.recv().await.unwrap()), sent);
}

#[tokio::test]
async fn a_producer_process_that_dies_fails_the_consumer_and_does_not_end_its_input() {
    let consumer = NetworkDataPlane::new(ClusterSecret::default());
    let (events, mut failures) = mpsc::unbounded_channel();
    consumer.report_to(Arc::new(Failures(events)));
    let (address, _server) = serve(&consumer).await;
    consumer.prepare(&descriptor(CONSUMER, &[9], &[]));
    let mut input = consumer.open_receiver(9).unwrap();
    // The producer lives in a runtime of its own, which is then shut down: its tasks and
    // sockets vanish as a killed process's would.
    let producer_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let output = {
        let _entered = producer_runtime.enter();
        let producer = plane(ClusterSecret::default());
        producer.prepare(&descriptor(PRODUCER, &[], &[(9, &address)]));
        producer.open_sender(9).unwrap()
    };
    output.send(batch(vec![1])).await.unwrap();
    assert_eq!(value(&input.recv().await.unwrap()), 1);
    producer_runtime.shutdown_background();
    match tokio::time::timeout(Duration::from_secs(10), failures.recv()).await {
        Ok(Some(TaskEvent::Failed { task, error, .. })) => {
            assert_eq!(task, CONSUMER);
            assert!(error.contains("lost"), "{error}");
        }
        other => panic!("expected a failure report, got {other:?}"),
    }
    // The input did not end: a lost connection is not a finished producer.
    assert!(tokio::time::timeout(Duration::from_millis(300), input.recv()).await.is_err());
    consumer.release(&[9]);
    drop(output);
}

#[tokio::test]
async fn a_producer_without_the_secret_is_refused() {
    let consumer = NetworkDataPlane::new(ClusterSecret::new(Some("right".into())));
    let producer = plane(ClusterSecret::new(Some("wrong".into())));
    let (events, mut failures) = mpsc::unbounded_channel();
    producer.report_to(Arc::new(Failures(events)));
    let (address, _server) = serve(&consumer).await;
    producer.prepare(&descriptor(PRODUCER, &[], &[(4, &address)]));
    let mut input = consumer.open_receiver(4).unwrap();
    let output = producer.open_sender(4).unwrap();
    let _ = output.send(batch(vec![1])).await;
    match tokio::time::timeout(Duration::from_secs(10), failures.recv()).await {
        Ok(Some(TaskEvent::Failed { task, error, .. })) => {
            assert_eq!(task, PRODUCER);
            assert!(error.contains("cluster secret"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), input.recv()).await.is_err(),
        "nothing got through"
    );
}
