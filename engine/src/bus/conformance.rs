//! The behaviour every [`Bus`] must show, written once and run against each implementation
//! (`embedded::tests` and `nats::tests` instantiate it with [`conformance_tests!`]). Timings are
//! short (hundreds of milliseconds) so the suite stays quick, with generous upper bounds so a
//! loaded machine does not make it flaky.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Bus, BusError, Consumer, ConsumerSpec, Delivered, Outgoing, StreamSpec};
use crate::runtime::processor::BoxFuture;

/// A bus under test that can be restarted (server restart, or reopening the store).
pub(crate) trait Fixture: Send {
    fn bus(&self) -> Arc<dyn Bus>;
    /// Stops the bus and starts it again on the same storage; returns once it is usable.
    fn restart(&mut self) -> BoxFuture<'_, ()>;
    /// Whether each redelivery carries the next delivery count. nats-server 2.9 sometimes does
    /// not: when an ack-wait redelivery meets a pull request at the instant it expires, the
    /// request gets neither the message nor its timeout status, and the next request receives
    /// the message with the previous count (seen as deliveries `[1, 1]` for `max_deliver` 2,
    /// about once in 20 runs). The number of deliveries is still bounded by `max_deliver`.
    fn exact_delivery_counts(&self) -> bool {
        true
    }
}

const ACK_WAIT: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(3);

fn stream(name: &str, subjects: &[&str]) -> StreamSpec {
    StreamSpec::new(name, subjects.iter().map(|s| s.to_string()).collect())
}

fn consumer(stream: &str, durable: &str, filter: &str) -> ConsumerSpec {
    ConsumerSpec {
        stream: stream.into(),
        durable_name: durable.into(),
        filter_subject: filter.into(),
        ack_wait: ACK_WAIT,
        max_deliver: None,
        max_ack_pending: 1000,
    }
}

/// A consumer whose unacked messages do not come back during the test, for cases that wait to
/// see that something is absent.
fn patient(stream: &str, durable: &str, filter: &str) -> ConsumerSpec {
    ConsumerSpec { ack_wait: Duration::from_secs(30), ..consumer(stream, durable, filter) }
}

fn msg(subject: &str, id: &str, body: &str) -> Outgoing {
    Outgoing {
        subject: subject.into(),
        msg_id: id.into(),
        headers: vec![("X-Test".into(), id.into())],
        payload: Bytes::from(body.to_string()),
    }
}

async fn publish(bus: &dyn Bus, subject: &str, id: &str, body: &str) -> super::PubAck {
    bus.publish(msg(subject, id, body), WAIT).await.unwrap_or_else(|e| panic!("publish {id}: {e}"))
}

fn body(d: &Delivered) -> String {
    String::from_utf8(d.payload.to_vec()).unwrap()
}

/// Fetches until `n` messages arrived or `within` passed.
async fn fetch_n(c: &mut dyn Consumer, n: usize, within: Duration) -> Vec<Delivered> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
        out.extend(c.fetch(n - out.len(), wait).await.unwrap());
    }
    out
}

async fn ack_all(msgs: Vec<Delivered>) {
    for m in msgs {
        m.ack.ack().await.unwrap();
    }
}

pub(crate) async fn ordering_per_subject(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("ORD", &["ord.>"])).await.unwrap();
    for i in 0..30 {
        let subject = if i % 3 == 0 { "ord.a" } else { "ord.b" };
        publish(&*bus, subject, &format!("m{i}"), &format!("{i}")).await;
    }
    let mut c = bus.consumer(&consumer("ORD", "ord", "ord.>")).await.unwrap();
    let got = fetch_n(&mut *c, 30, WAIT).await;
    let seen: Vec<(String, u64)> = got.iter().map(|d| (d.subject.clone(), body(d).parse().unwrap())).collect();
    for subject in ["ord.a", "ord.b"] {
        let order: Vec<u64> = seen.iter().filter(|(s, _)| s == subject).map(|(_, i)| *i).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{subject} out of order: {order:?}");
    }
    assert_eq!(seen.len(), 30);
    assert!(got.iter().all(|d| d.delivered == 1));
    assert!(got.windows(2).all(|w| w[0].stream_sequence < w[1].stream_sequence));
    assert_eq!(got[0].header("X-Test"), Some("m0"), "headers travel");
    ack_all(got).await;
    assert!(c.fetch(10, Duration::from_millis(300)).await.unwrap().is_empty(), "acked messages came back");
}

pub(crate) async fn redelivery_after_the_ack_timeout(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("RED", &["red"])).await.unwrap();
    publish(&*bus, "red", "r1", "one").await;
    let mut c = bus.consumer(&consumer("RED", "red", "red")).await.unwrap();
    let first = fetch_n(&mut *c, 1, WAIT).await;
    let delivered_at = Instant::now();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].delivered, 1);
    drop(first); // neither acked nor naked
    let again = fetch_n(&mut *c, 1, WAIT).await;
    let elapsed = delivered_at.elapsed();
    assert_eq!(again.len(), 1, "not redelivered after the ack timeout");
    assert_eq!(again[0].delivered, 2);
    assert_eq!(body(&again[0]), "one");
    assert!(elapsed >= ACK_WAIT - Duration::from_millis(50), "redelivered after {elapsed:?}, before the ack wait");
    ack_all(again).await;
}

pub(crate) async fn nak_redelivers_after_the_backoff(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("NAK", &["nak"])).await.unwrap();
    publish(&*bus, "nak", "n1", "x").await;
    let mut spec = consumer("NAK", "nak", "nak");
    spec.ack_wait = Duration::from_secs(30);
    let mut c = bus.consumer(&spec).await.unwrap();
    let mut got = fetch_n(&mut *c, 1, WAIT).await;
    for (delivery, delay_ms) in [(1u32, 300u64), (2, 700)] {
        let m = got.pop().unwrap();
        assert_eq!(m.delivered, delivery);
        let delay = Duration::from_millis(delay_ms);
        let naked_at = Instant::now();
        m.ack.nak(delay).await.unwrap();
        got = fetch_n(&mut *c, 1, WAIT).await;
        let elapsed = naked_at.elapsed();
        assert_eq!(got.len(), 1, "not redelivered after a nak");
        assert!(elapsed >= delay - Duration::from_millis(50), "nak({delay:?}) redelivered after {elapsed:?}");
        assert!(elapsed < delay + Duration::from_millis(1500), "nak({delay:?}) redelivered after {elapsed:?}");
    }
    assert_eq!(got[0].delivered, 3);
    ack_all(got).await;
}

pub(crate) async fn max_deliver_then_no_more_and_term_stops_at_once(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("MAX", &["max.*"])).await.unwrap();
    publish(&*bus, "max.timeout", "a", "a").await;
    let mut spec = consumer("MAX", "max", "max.timeout");
    spec.max_deliver = Some(2);
    let mut c = bus.consumer(&spec).await.unwrap();
    let mut deliveries = Vec::new();
    // Never settled: redelivered on each ack timeout until max_deliver, then never again.
    let deadline = Instant::now() + Duration::from_secs(8);
    while deliveries.len() < 2 && Instant::now() < deadline {
        deliveries.extend(c.fetch(1, Duration::from_millis(200)).await.unwrap().iter().map(|m| m.delivered));
    }
    let quiet_until = Instant::now() + ACK_WAIT * 4;
    while Instant::now() < quiet_until {
        deliveries.extend(c.fetch(1, Duration::from_millis(200)).await.unwrap().iter().map(|m| m.delivered));
    }
    if f.exact_delivery_counts() {
        assert_eq!(deliveries, vec![1, 2], "max_deliver 2");
    } else {
        assert_eq!(deliveries.len(), 2, "max_deliver 2: {deliveries:?}");
        assert!(deliveries[0] == 1 && deliveries[1] <= 2, "delivery counts {deliveries:?}");
    }

    publish(&*bus, "max.term", "b", "b").await;
    let mut c = bus.consumer(&consumer("MAX", "term", "max.term")).await.unwrap();
    let got = fetch_n(&mut *c, 1, WAIT).await;
    assert_eq!(got.len(), 1);
    for m in got {
        m.ack.term().await.unwrap();
    }
    let later = c.fetch(1, ACK_WAIT * 3).await.unwrap();
    assert!(later.is_empty(), "a terminated message came back");
}

pub(crate) async fn dedupe_by_message_id(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("DUP", &["dup"])).await.unwrap();
    let first = publish(&*bus, "dup", "same-id", "1").await;
    let second = publish(&*bus, "dup", "same-id", "2").await;
    let other = publish(&*bus, "dup", "other-id", "3").await;
    assert!(!first.duplicate);
    assert!(second.duplicate, "the second publish of an id must be a duplicate");
    assert_eq!(second.sequence, first.sequence);
    assert!(other.sequence > first.sequence && !other.duplicate);
    let mut c = bus.consumer(&patient("DUP", "dup", "dup")).await.unwrap();
    let got = fetch_n(&mut *c, 3, Duration::from_millis(1500)).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["1", "3"]);
    ack_all(got).await;
}

pub(crate) async fn a_durable_consumer_resumes_after_a_restart(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("DUR", &["dur"])).await.unwrap();
    for i in 0..10 {
        publish(&*bus, "dur", &format!("d{i}"), &i.to_string()).await;
    }
    let spec = consumer("DUR", "dur", "dur");
    let mut c = bus.consumer(&spec).await.unwrap();
    let first = fetch_n(&mut *c, 4, WAIT).await;
    assert_eq!(first.iter().map(body).collect::<Vec<_>>(), vec!["0", "1", "2", "3"]);
    ack_all(first).await;
    let unacked = fetch_n(&mut *c, 1, WAIT).await;
    assert_eq!(body(&unacked[0]), "4");
    drop((unacked, c, bus));
    f.restart().await;
    let bus = f.bus();
    let mut c = retry(|| bus.consumer(&spec)).await;
    let rest = fetch_n(&mut *c, 6, WAIT).await;
    let mut bodies: Vec<u64> = rest.iter().map(|d| body(d).parse().unwrap()).collect();
    bodies.sort();
    assert_eq!(bodies, vec![4, 5, 6, 7, 8, 9], "acked ones must not return, unacked ones must");
    ack_all(rest).await;
    let extra = c.fetch(10, ACK_WAIT * 2).await.unwrap();
    assert!(
        extra.is_empty(),
        "came back after acks: {:?}",
        extra.iter().map(|d| (body(d), d.delivered)).collect::<Vec<_>>()
    );
}

/// Calls `op` until it succeeds (a restarted server takes a moment to be reachable).
async fn retry<'a, T>(op: impl Fn() -> BoxFuture<'a, Result<T, BusError>>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match op().await {
            Ok(t) => return t,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "bus not ready yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("bus not usable after restart: {e}"),
        }
    }
}

pub(crate) async fn wildcards_route_and_filter(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("WILD", &["wild.>"])).await.unwrap();
    for subject in ["wild.a.x", "wild.b.x", "wild.a.y", "wild.a.x.deep"] {
        publish(&*bus, subject, subject, subject).await;
    }
    assert!(bus.publish(msg("elsewhere", "e", "e"), Duration::from_secs(2)).await.is_err(), "no stream takes it");
    let mut star = bus.consumer(&patient("WILD", "star", "wild.*.x")).await.unwrap();
    let got = fetch_n(&mut *star, 2, WAIT).await;
    assert_eq!(got.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>(), vec!["wild.a.x", "wild.b.x"]);
    assert!(star.fetch(5, Duration::from_millis(300)).await.unwrap().is_empty());
    ack_all(got).await;
    let mut tail = bus.consumer(&patient("WILD", "tail", "wild.a.>")).await.unwrap();
    let got = fetch_n(&mut *tail, 3, WAIT).await;
    assert_eq!(
        got.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>(),
        vec!["wild.a.x", "wild.a.y", "wild.a.x.deep"]
    );
    ack_all(got).await;
}

pub(crate) async fn limits_discard_old_messages(f: &mut dyn Fixture) {
    let bus = f.bus();
    let mut spec = stream("LIM", &["lim"]);
    spec.max_messages = Some(5);
    bus.ensure_stream(&spec).await.unwrap();
    for i in 0..8 {
        publish(&*bus, "lim", &format!("l{i}"), &i.to_string()).await;
    }
    let mut c = bus.consumer(&patient("LIM", "lim", "lim")).await.unwrap();
    let got = fetch_n(&mut *c, 8, Duration::from_millis(1500)).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["3", "4", "5", "6", "7"]);
    ack_all(got).await;

    let mut spec = stream("BYTES", &["bytes"]);
    spec.max_bytes = Some(4000);
    bus.ensure_stream(&spec).await.unwrap();
    for i in 0..10 {
        publish(&*bus, "bytes", &format!("b{i}"), &format!("{i}{}", "x".repeat(999))).await;
    }
    let mut c = bus.consumer(&patient("BYTES", "bytes", "bytes")).await.unwrap();
    let got = fetch_n(&mut *c, 10, Duration::from_millis(1500)).await;
    let firsts: Vec<String> = got.iter().map(|d| body(d)[..1].to_string()).collect();
    assert!((2..=3).contains(&got.len()), "max_bytes 4000 keeps 2 or 3 of 1 KB messages: {firsts:?}");
    assert_eq!(firsts.last().map(String::as_str), Some("9"), "the newest is kept");
    ack_all(got).await;

    let mut spec = stream("AGE", &["age"]);
    spec.max_age = Some(Duration::from_secs(1));
    bus.ensure_stream(&spec).await.unwrap();
    publish(&*bus, "age", "old", "old").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    publish(&*bus, "age", "new", "new").await;
    let mut c = bus.consumer(&patient("AGE", "age", "age")).await.unwrap();
    let got = fetch_n(&mut *c, 2, Duration::from_millis(1500)).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["new"], "max_age removes old messages");
    ack_all(got).await;

    let mut spec = stream("NEW", &["new"]);
    spec.max_messages = Some(2);
    spec.discard = super::spec::DiscardPolicy::New;
    bus.ensure_stream(&spec).await.unwrap();
    publish(&*bus, "new", "n0", "0").await;
    publish(&*bus, "new", "n1", "1").await;
    assert!(bus.publish(msg("new", "n2", "2"), WAIT).await.is_err(), "discard: new refuses when full");
}

/// What a stream no longer holds is reported missing (discarded by a limit, or the stream
/// gone); what it holds, consumed or not, is not.
pub(crate) async fn missing_reports_only_what_the_stream_lost(f: &mut dyn Fixture) {
    let bus = f.bus();
    let mut spec = stream("GONE", &["gone"]);
    spec.max_messages = Some(3);
    bus.ensure_stream(&spec).await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..3 {
        seqs.push(publish(&*bus, "gone", &format!("g{i}"), &i.to_string()).await.sequence);
    }
    assert_eq!(bus.missing("GONE", &seqs).await.unwrap(), Vec::<u64>::new(), "all held, none consumed");
    // Consumed and acked: still in a limits stream, so not lost.
    let mut c = bus.consumer(&patient("GONE", "gone", "gone")).await.unwrap();
    ack_all(fetch_n(&mut *c, 3, WAIT).await).await;
    assert_eq!(bus.missing("GONE", &seqs).await.unwrap(), Vec::<u64>::new());
    // Two more push the two oldest out.
    for i in 3..5 {
        publish(&*bus, "gone", &format!("g{i}"), &i.to_string()).await;
    }
    assert_eq!(bus.missing("GONE", &seqs).await.unwrap(), seqs[..2].to_vec());
    let beyond = seqs[2] + 100;
    assert_eq!(bus.missing("GONE", &[seqs[2], beyond]).await.unwrap(), vec![beyond], "never stored");
    assert_eq!(bus.missing("NO_SUCH_STREAM", &seqs).await.unwrap(), seqs, "the stream is gone");
}

/// Embedded only: nats-server 2.9 hands a pull request more than `max_ack_pending` messages, so
/// the subscriber bounds what it holds itself rather than relying on the server.
pub(crate) async fn max_ack_pending_bounds_what_is_in_flight(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("MAP", &["map"])).await.unwrap();
    for i in 0..10 {
        publish(&*bus, "map", &format!("p{i}"), &i.to_string()).await;
    }
    let mut spec = consumer("MAP", "map", "map");
    spec.max_ack_pending = 3;
    spec.ack_wait = Duration::from_secs(30);
    let mut c = bus.consumer(&spec).await.unwrap();
    let first = fetch_n(&mut *c, 10, Duration::from_millis(1500)).await;
    assert_eq!(first.len(), 3, "max_ack_pending 3");
    ack_all(first).await;
    let next = fetch_n(&mut *c, 3, WAIT).await;
    assert_eq!(next.iter().map(body).collect::<Vec<_>>(), vec!["3", "4", "5"]);
    ack_all(next).await;
}

pub(crate) async fn a_message_larger_than_max_payload_is_refused_not_truncated(f: &mut dyn Fixture) {
    let bus = f.bus();
    bus.ensure_stream(&stream("BIG", &["big"])).await.unwrap();
    let max = bus.max_payload();
    assert!(max >= 1024 * 1024, "max_payload {max}");
    let big = Outgoing { payload: Bytes::from(vec![0u8; max + 1]), ..msg("big", "b", "") };
    assert!(matches!(bus.publish(big, WAIT).await, Err(BusError::TooLarge { .. })));
}

/// One `#[tokio::test]` per conformance case, each with a fresh fixture from `$make`.
macro_rules! conformance_tests {
    ($make:expr) => {
        conformance_tests!(@cases $make;
            ordering_per_subject,
            redelivery_after_the_ack_timeout,
            nak_redelivers_after_the_backoff,
            max_deliver_then_no_more_and_term_stops_at_once,
            dedupe_by_message_id,
            a_durable_consumer_resumes_after_a_restart,
            wildcards_route_and_filter,
            limits_discard_old_messages,
            missing_reports_only_what_the_stream_lost,
            a_message_larger_than_max_payload_is_refused_not_truncated
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let mut fixture = $make.await;
                crate::bus::conformance::$case(&mut fixture).await;
            }
        )*
    };
}
pub(crate) use conformance_tests;
