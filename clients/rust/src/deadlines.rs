//! Deadlines for many calls with one timer per timeout value, as the Node client's DeadlineQueue: calls that
//! share a timeout are added in the order they are made, so their deadlines come in order too. A FIFO whose
//! timer only ever waits for its head; a call answered in time is skipped when its turn comes. A tokio timer
//! per call would cost a timer-wheel registration and removal on every record call.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

pub(crate) struct DeadlineQueue {
    /// (deadline, correlation id, call seq), earliest first.
    entries: VecDeque<(Instant, u32, u64)>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) task: AbortHandle,
}

impl DeadlineQueue {
    pub(crate) fn new(wake: Arc<Notify>, task: AbortHandle) -> Self {
        Self { entries: VecDeque::new(), wake, task }
    }

    /// Adds a call; `live` says whether a queued call is still pending (used to drop answered ones when the
    /// queue grows well past the calls in flight, so it stays O(pending), not O(rate x timeout)).
    pub(crate) fn push(&mut self, at: Instant, id: u32, seq: u64, in_flight: usize, live: impl Fn(u32, u64) -> bool) {
        match self.entries.back() {
            Some(&(last, _, _)) if at < last => {
                // A call that waited for a connection carries its earlier deadline: keep the queue sorted.
                let i = self.entries.partition_point(|e| e.0 <= at);
                self.entries.insert(i, (at, id, seq));
                if i == 0 {
                    self.wake.notify_one();
                }
            }
            Some(_) => self.entries.push_back((at, id, seq)),
            None => {
                self.entries.push_back((at, id, seq));
                self.wake.notify_one();
            }
        }
        if self.entries.len() > 1024 && self.entries.len() > 2 * in_flight {
            self.entries.retain(|&(_, id, seq)| live(id, seq));
        }
    }

    pub(crate) fn head(&self) -> Option<Instant> {
        self.entries.front().map(|e| e.0)
    }

    /// Pops every entry due at `now`, handing each to `expire`.
    pub(crate) fn pop_due(&mut self, now: Instant, mut expire: impl FnMut(u32, u64)) {
        while let Some(&(at, id, seq)) = self.entries.front() {
            if at > now {
                break;
            }
            self.entries.pop_front();
            expire(id, seq);
        }
    }

    /// Nothing is in flight: every entry is of an answered call.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue() -> DeadlineQueue {
        let task = tokio::spawn(async {});
        DeadlineQueue::new(Arc::new(Notify::new()), task.abort_handle())
    }

    #[tokio::test]
    async fn due_entries_pop_in_deadline_order_even_when_added_out_of_order() {
        let mut q = queue();
        let t = Instant::now();
        q.push(t + Duration::from_millis(10), 1, 1, 3, |_, _| true);
        q.push(t + Duration::from_millis(30), 2, 2, 3, |_, _| true);
        q.push(t + Duration::from_millis(20), 3, 3, 3, |_, _| true);
        assert_eq!(q.head(), Some(t + Duration::from_millis(10)));
        let mut got = Vec::new();
        q.pop_due(t + Duration::from_millis(25), |id, _| got.push(id));
        assert_eq!(got, vec![1, 3], "due ones only, earliest first");
        assert_eq!(q.head(), Some(t + Duration::from_millis(30)));
    }

    #[tokio::test]
    async fn answered_calls_do_not_pile_up() {
        let mut q = queue();
        let t = Instant::now() + Duration::from_secs(60);
        // 100,000 calls, each answered before the next: only the last is live.
        for i in 0..100_000u32 {
            q.push(t, i, u64::from(i), 1, |id, _| id == i);
            assert!(q.entries.len() <= 1025, "bounded by max(1024, 2 x in flight)");
        }
    }
}
