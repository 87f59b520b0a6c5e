//! Group commit for a sled database: concurrent writers that each need their write durable share
//! one fsync instead of queueing one each. A flush covers every write applied before it started,
//! so a writer whose write an already finished flush covered returns at once, and one whose write
//! came too late for the running flush starts the next, covering everyone who arrived meanwhile.
//! With eight publishes in flight that turns eight fsyncs in a row into one or two.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct GroupFlush {
    /// Writes applied so far; a write's ticket is its number in this count.
    applied: AtomicU64,
    /// The highest ticket a finished flush covered. Held while flushing, so one flush runs at a time.
    flushed: Mutex<u64>,
}

/// A write applied in memory and not yet known durable.
#[must_use = "a write is durable only once `GroupFlush::durable` returned Ok for its ticket"]
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl GroupFlush {
    /// Called once a write is applied (visible in memory): the ticket to make it durable with.
    pub fn applied(&self) -> Ticket {
        Ticket(self.applied.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Returns once the write of `ticket` is durable, running `flush` unless a flush that started
    /// after the write already covered it. A failed flush covers nothing: the next caller tries.
    pub fn durable<E>(&self, ticket: Ticket, flush: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut flushed = self.flushed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *flushed >= ticket.0 {
            return Ok(());
        }
        // Every ticket up to here belongs to a write applied before this load, so before the flush.
        let covers = self.applied.load(Ordering::SeqCst);
        flush()?;
        *flushed = covers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn a_flush_covers_the_writes_applied_before_it_and_not_later_ones() {
        let group = GroupFlush::default();
        let flushes = AtomicUsize::new(0);
        let flush = || {
            flushes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        };
        let a = group.applied();
        let b = group.applied();
        group.durable(a, flush).unwrap();
        group.durable(b, flush).unwrap(); // covered by the flush a ran
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        let c = group.applied();
        group.durable(c, flush).unwrap(); // applied after that flush: needs its own
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_flush_covers_nothing() {
        let group = GroupFlush::default();
        let a = group.applied();
        assert_eq!(group.durable(a, || Err("disk full")), Err("disk full"));
        let mut ran = false;
        group
            .durable(a, || {
                ran = true;
                Ok::<_, &str>(())
            })
            .unwrap();
        assert!(ran, "the write was never made durable, so the next caller must flush");
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let group = Arc::new(GroupFlush::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (group, flushes) = (group.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let t = group.applied();
                        group
                            .durable(t, || {
                                flushes.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                Ok::<_, ()>(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!(n < 400, "400 writes took {n} flushes: none were shared");
    }
}
