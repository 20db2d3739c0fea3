//! The queue set of one priority level, as Kubernetes' `queueset` runs
//! it: a concurrency limit in seats; for a `Queue` level, `queues` FIFO
//! queues, a flow shuffle-sharded to the least loaded queue of its hand,
//! rejected when that queue holds `queueLengthLimit` requests and the
//! level is full, and dispatched by fair queuing (the queue whose head
//! has the smallest virtual finish time goes next, virtual time advancing
//! at the level's concurrency shared among its active queues); a
//! `Reject` level runs what fits and rejects the rest at once; an
//! `Exempt` level runs everything. Every request takes one seat.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::shufflesharding::Dealer;

/// Kubernetes' estimate of a request's service time, in seconds: the
/// virtual work of a request is its seats times this, corrected by the
/// real service time when it finishes.
const ESTIMATED_SERVICE_SECONDS: f64 = 0.003;

/// What a level does with requests beyond its concurrency limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Not limited (type `Exempt`).
    Exempt,
    /// Rejected at once (`limitResponse.type: Reject`).
    Reject,
    /// Queued (`limitResponse.type: Queue`).
    Queue {
        /// `queuing.queues`.
        queues: usize,
        /// `queuing.handSize`.
        hand_size: usize,
        /// `queuing.queueLengthLimit`.
        queue_length_limit: usize,
    },
}

/// A level's configuration as its queue set uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// What happens beyond the limit.
    pub(crate) limit: Limit,
    /// Seats that may be in use at once.
    pub(crate) concurrency: usize,
}

/// Why a request was not served (Kubernetes' `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Refusal {
    /// Its queue was full.
    QueueFull,
    /// A `Reject` level was full.
    ConcurrencyLimit,
    /// It waited in its queue too long.
    TimeOut,
    /// Its client went away while it waited.
    Cancelled,
}

impl Refusal {
    /// Kubernetes' name for it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::QueueFull => "queue-full",
            Refusal::ConcurrencyLimit => "concurrency-limit",
            Refusal::TimeOut => "time-out",
            Refusal::Cancelled => "cancelled",
        }
    }
}

struct Waiter {
    id: u64,
    seats: usize,
    flow_schema: Arc<str>,
    tx: oneshot::Sender<Seat>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiter>,
    waiting_seats: usize,
    executing: usize,
    seats_in_use: usize,
    /// The virtual time (seat-seconds) at which the queue's next request
    /// is due to start.
    next_dispatch_r: f64,
}

impl Queue {
    fn active(&self) -> bool {
        !self.waiting.is_empty() || self.executing > 0
    }
}

/// Counts of one queue, for the debug dump.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct QueueDump {
    /// Requests waiting.
    pub(crate) waiting: usize,
    /// Requests executing.
    pub(crate) executing: usize,
    /// Seats its executing requests hold.
    pub(crate) seats_in_use: usize,
    /// Its next dispatch time, in seat-seconds.
    pub(crate) next_dispatch_r: f64,
    /// Seats its waiting requests ask for.
    pub(crate) waiting_seats: usize,
}

/// The state of a queue set, for the debug dump and the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Dump {
    /// Requests waiting.
    pub(crate) waiting: usize,
    /// Requests executing.
    pub(crate) executing: usize,
    /// Requests dispatched since it was made.
    pub(crate) dispatched: u64,
    /// Requests rejected (queue full or concurrency limit).
    pub(crate) rejected: u64,
    /// Requests that waited too long.
    pub(crate) timed_out: u64,
    /// Requests whose client went away while they waited.
    pub(crate) cancelled: u64,
    /// The queues.
    pub(crate) queues: Vec<QueueDump>,
    /// Waiting and executing requests by FlowSchema name.
    pub(crate) by_flow_schema: Vec<(String, usize, usize)>,
}

struct State {
    settings: Settings,
    dealer: Option<Dealer>,
    queues: Vec<Queue>,
    active_queues: usize,
    seats_in_use: usize,
    executing: usize,
    waiting: usize,
    waiting_seats: usize,
    /// Virtual time, in seat-seconds.
    current_r: f64,
    last_real: Instant,
    robin: usize,
    enqueues: usize,
    next_id: u64,
    dispatched: u64,
    rejected: u64,
    timed_out: u64,
    cancelled: u64,
    /// Waiting and executing requests by FlowSchema.
    by_flow_schema: HashMap<Arc<str>, (usize, usize)>,
}

/// The queue set of one priority level.
pub(crate) struct QueueSet {
    state: Mutex<State>,
}

/// A seat held by an executing request; dropping it ends the request
/// and dispatches what waits.
pub(crate) struct Seat {
    qs: Arc<QueueSet>,
    queue: Option<usize>,
    seats: usize,
    flow_schema: Arc<str>,
    started: Instant,
    armed: bool,
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            let mut st = self.qs.state.lock();
            st.finish(
                &self.qs,
                self.queue,
                self.seats,
                &self.flow_schema,
                self.started,
            );
        }
    }
}

/// Removes a request from its queue when its waiting ends early (its
/// client went away).
struct Waiting<'a> {
    qs: &'a QueueSet,
    queue: usize,
    id: u64,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut st = self.qs.state.lock();
            if st.remove_waiting(self.queue, self.id) {
                st.cancelled += 1;
            }
        }
    }
}

impl QueueSet {
    /// A queue set with `settings`.
    pub(crate) fn new(settings: Settings) -> Arc<QueueSet> {
        let qs = Arc::new(QueueSet {
            state: Mutex::new(State {
                settings,
                dealer: None,
                queues: Vec::new(),
                active_queues: 0,
                seats_in_use: 0,
                executing: 0,
                waiting: 0,
                waiting_seats: 0,
                current_r: 0.0,
                last_real: Instant::now(),
                robin: 0,
                enqueues: 0,
                next_id: 0,
                dispatched: 0,
                rejected: 0,
                timed_out: 0,
                cancelled: 0,
                by_flow_schema: HashMap::new(),
            }),
        });
        qs.reconfigure(settings);
        qs
    }

    /// Applies new settings; queued requests stay queued (queues beyond a
    /// smaller count drain before they go) and whatever now fits runs.
    pub(crate) fn reconfigure(self: &Arc<Self>, settings: Settings) {
        let mut st = self.state.lock();
        st.sync_time();
        st.settings = settings;
        st.dealer = match settings.limit {
            Limit::Queue {
                queues, hand_size, ..
            } => Dealer::new(queues, hand_size),
            _ => None,
        };
        let desired = st.desired_queues();
        if st.queues.len() < desired {
            st.queues.resize_with(desired, Queue::default);
        }
        st.dispatch_as_much_as_possible(self);
        st.trim_queues();
    }

    /// The current settings.
    pub(crate) fn settings(&self) -> Settings {
        self.state.lock().settings
    }

    /// Starts a request of `flow_schema` whose flow hashes to `hash`:
    /// a seat, at once or after waiting at most `wait_limit` in a queue,
    /// or why it is refused.
    pub(crate) async fn start(
        self: &Arc<Self>,
        hash: u64,
        flow_schema: &Arc<str>,
        wait_limit: Duration,
    ) -> Result<Seat, Refusal> {
        let (queue, id, mut rx) = {
            let mut st = self.state.lock();
            st.sync_time();
            match st.settings.limit {
                Limit::Exempt => return Ok(st.execute_now(self, flow_schema)),
                Limit::Reject => {
                    if !st.can_accommodate(1) {
                        st.rejected += 1;
                        return Err(Refusal::ConcurrencyLimit);
                    }
                    return Ok(st.execute_now(self, flow_schema));
                }
                Limit::Queue {
                    queue_length_limit, ..
                } => {
                    let queue = st.choose_queue(hash);
                    if st.seats_in_use >= st.settings.concurrency
                        && st.queues[queue].waiting.len() >= queue_length_limit
                    {
                        st.rejected += 1;
                        return Err(Refusal::QueueFull);
                    }
                    let (tx, rx) = oneshot::channel();
                    let id = st.enqueue(queue, tx, flow_schema);
                    st.dispatch_as_much_as_possible(self);
                    (queue, id, rx)
                }
            }
        };
        // Dispatched at once (a seat was free): no wait to arm.
        if let Ok(seat) = rx.try_recv() {
            return Ok(seat);
        }
        let mut waiting = Waiting {
            qs: self,
            queue,
            id,
            done: false,
        };
        let outcome = tokio::time::timeout(wait_limit, &mut rx).await;
        waiting.done = true;
        match outcome {
            Ok(Ok(seat)) => Ok(seat),
            Ok(Err(_)) => Err(Refusal::Cancelled),
            Err(_) => {
                {
                    let mut st = self.state.lock();
                    if st.remove_waiting(queue, id) {
                        st.timed_out += 1;
                        return Err(Refusal::TimeOut);
                    }
                }
                // Dispatched as the wait ended: the seat is in the channel.
                rx.try_recv().map_err(|_| Refusal::TimeOut)
            }
        }
    }

    /// The state, for the debug dump and the metrics.
    pub(crate) fn dump(&self) -> Dump {
        let st = self.state.lock();
        let mut by_flow_schema: Vec<_> = st
            .by_flow_schema
            .iter()
            .map(|(fs, (w, e))| (fs.to_string(), *w, *e))
            .collect();
        by_flow_schema.sort();
        Dump {
            waiting: st.waiting,
            executing: st.executing,
            dispatched: st.dispatched,
            rejected: st.rejected,
            timed_out: st.timed_out,
            cancelled: st.cancelled,
            queues: st
                .queues
                .iter()
                .map(|q| QueueDump {
                    waiting: q.waiting.len(),
                    executing: q.executing,
                    seats_in_use: q.seats_in_use,
                    next_dispatch_r: q.next_dispatch_r,
                    waiting_seats: q.waiting_seats,
                })
                .collect(),
            by_flow_schema,
        }
    }
}

impl State {
    fn desired_queues(&self) -> usize {
        match self.settings.limit {
            Limit::Queue { queues, .. } => queues,
            _ => 0,
        }
    }

    /// Advances virtual time to now: at the concurrency the active queues
    /// could use (capped by the limit), shared among them.
    fn sync_time(&mut self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last_real);
        self.last_real = now;
        if self.active_queues > 0 {
            let demand = (self.seats_in_use + self.waiting_seats).min(self.settings.concurrency);
            self.current_r += demand as f64 / self.active_queues as f64 * elapsed.as_secs_f64();
        }
    }

    fn can_accommodate(&self, seats: usize) -> bool {
        match self.settings.limit {
            Limit::Exempt => true,
            _ if seats > self.settings.concurrency => self.executing == 0,
            _ => self.seats_in_use + seats <= self.settings.concurrency,
        }
    }

    fn note(&mut self, flow_schema: &Arc<str>, waiting: isize, executing: isize) {
        let entry = self
            .by_flow_schema
            .entry(flow_schema.clone())
            .or_insert((0, 0));
        entry.0 = entry.0.saturating_add_signed(waiting);
        entry.1 = entry.1.saturating_add_signed(executing);
        if *entry == (0, 0) {
            self.by_flow_schema.remove(flow_schema);
        }
    }

    /// Runs a request of a level without queues.
    fn execute_now(&mut self, qs: &Arc<QueueSet>, flow_schema: &Arc<str>) -> Seat {
        self.seats_in_use += 1;
        self.executing += 1;
        self.dispatched += 1;
        self.note(flow_schema, 0, 1);
        Seat {
            qs: qs.clone(),
            queue: None,
            seats: 1,
            flow_schema: flow_schema.clone(),
            started: Instant::now(),
            armed: true,
        }
    }

    /// Shuffle sharding: the queue of the flow's hand with the least
    /// waiting work, visiting the hand from a rotating offset.
    fn choose_queue(&mut self, hash: u64) -> usize {
        let Some(dealer) = self.dealer else {
            return 0;
        };
        let (hand, n) = dealer.deal(hash);
        let offset = self.enqueues % n;
        self.enqueues = self.enqueues.wrapping_add(1);
        let mut best = hand[offset];
        let mut least = usize::MAX;
        for i in 0..n {
            let q = hand[(offset + i) % n];
            if self.queues[q].waiting_seats < least {
                least = self.queues[q].waiting_seats;
                best = q;
            }
        }
        best
    }

    /// Runs `change` on queue `q`, keeping the count of active queues.
    fn on_queue<R>(&mut self, q: usize, change: impl FnOnce(&mut Queue) -> R) -> R {
        let before = self.queues[q].active();
        let r = change(&mut self.queues[q]);
        match (before, self.queues[q].active()) {
            (false, true) => self.active_queues += 1,
            (true, false) => self.active_queues -= 1,
            _ => {}
        }
        r
    }

    fn enqueue(&mut self, q: usize, tx: oneshot::Sender<Seat>, flow_schema: &Arc<str>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let now_r = self.current_r;
        self.on_queue(q, |queue| {
            if !queue.active() {
                queue.next_dispatch_r = now_r;
            }
            queue.waiting.push_back(Waiter {
                id,
                seats: 1,
                flow_schema: flow_schema.clone(),
                tx,
            });
            queue.waiting_seats += 1;
        });
        self.waiting += 1;
        self.waiting_seats += 1;
        self.note(flow_schema, 1, 0);
        id
    }

    /// Takes request `id` out of queue `q`; false when it is not there
    /// (dispatched already).
    fn remove_waiting(&mut self, q: usize, id: u64) -> bool {
        if q >= self.queues.len() {
            return false;
        }
        let removed = self.on_queue(q, |queue| {
            let at = queue.waiting.iter().position(|w| w.id == id)?;
            let w = queue.waiting.remove(at)?;
            queue.waiting_seats -= w.seats;
            Some(w)
        });
        let Some(w) = removed else {
            return false;
        };
        self.waiting -= 1;
        self.waiting_seats -= w.seats;
        self.note(&w.flow_schema, -1, 0);
        self.trim_queues();
        true
    }

    fn dispatch_as_much_as_possible(&mut self, qs: &Arc<QueueSet>) {
        while self.waiting > 0
            && self.seats_in_use < self.settings.concurrency
            && self.dispatch_one(qs)
        {}
    }

    /// Fair queuing: starts the head of the queue whose head finishes
    /// first in virtual time (ties to the next in round-robin order), if
    /// its seats fit.
    fn dispatch_one(&mut self, qs: &Arc<QueueSet>) -> bool {
        let n = self.queues.len();
        let mut best: Option<(usize, f64)> = None;
        for _ in 0..n {
            self.robin = (self.robin + 1) % n;
            let queue = &self.queues[self.robin];
            if let Some(head) = queue.waiting.front() {
                let finish = queue.next_dispatch_r + head.seats as f64 * ESTIMATED_SERVICE_SECONDS;
                if best.is_none_or(|(_, b)| finish < b) {
                    best = Some((self.robin, finish));
                }
            }
        }
        let Some((q, _)) = best else {
            return false;
        };
        let seats = self.queues[q].waiting.front().map_or(1, |w| w.seats);
        if !self.can_accommodate(seats) {
            return false;
        }
        self.robin = q;
        let Some(w) = self.on_queue(q, |queue| {
            let w = queue.waiting.pop_front()?;
            queue.waiting_seats -= w.seats;
            queue.executing += 1;
            queue.seats_in_use += w.seats;
            queue.next_dispatch_r += w.seats as f64 * ESTIMATED_SERVICE_SECONDS;
            Some(w)
        }) else {
            return false;
        };
        self.waiting -= 1;
        self.waiting_seats -= w.seats;
        self.seats_in_use += w.seats;
        self.executing += 1;
        self.dispatched += 1;
        self.note(&w.flow_schema, -1, 1);
        let seat = Seat {
            qs: qs.clone(),
            queue: Some(q),
            seats: w.seats,
            flow_schema: w.flow_schema.clone(),
            started: Instant::now(),
            armed: true,
        };
        if let Err(mut seat) = w.tx.send(seat) {
            // Its waiter is gone: give the seat back here (dropping it
            // armed would take this lock again).
            seat.armed = false;
            self.cancelled += 1;
            self.release(Some(q), seat.seats, &seat.flow_schema, seat.started);
        }
        true
    }

    fn release(&mut self, queue: Option<usize>, seats: usize, fs: &Arc<str>, started: Instant) {
        self.seats_in_use -= seats;
        self.executing -= 1;
        self.note(fs, 0, -1);
        if let Some(q) = queue.filter(|q| *q < self.queues.len()) {
            let served = started.elapsed().as_secs_f64();
            self.on_queue(q, |queue| {
                queue.executing -= 1;
                queue.seats_in_use -= seats;
                // The virtual time charged at dispatch was an estimate:
                // charge what the request really took.
                queue.next_dispatch_r += seats as f64 * (served - ESTIMATED_SERVICE_SECONDS);
            });
        }
    }

    fn finish(
        &mut self,
        qs: &Arc<QueueSet>,
        queue: Option<usize>,
        seats: usize,
        fs: &Arc<str>,
        started: Instant,
    ) {
        self.sync_time();
        self.release(queue, seats, fs, started);
        self.dispatch_as_much_as_possible(qs);
        self.trim_queues();
    }

    /// Drops idle queues beyond the configured count.
    fn trim_queues(&mut self) {
        let desired = self.desired_queues();
        while self.queues.len() > desired && self.queues.last().is_some_and(|q| !q.active()) {
            self.queues.pop();
        }
        if self.robin >= self.queues.len() {
            self.robin = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(concurrency: usize, queues: usize, hand_size: usize, limit: usize) -> Settings {
        Settings {
            limit: Limit::Queue {
                queues,
                hand_size,
                queue_length_limit: limit,
            },
            concurrency,
        }
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reject_level_refuses_beyond_its_limit() {
        let qs = QueueSet::new(Settings {
            limit: Limit::Reject,
            concurrency: 2,
        });
        let fs: Arc<str> = Arc::from("mine");
        let a = qs.start(0, &fs, WAIT).await.unwrap();
        let _b = qs.start(0, &fs, WAIT).await.unwrap();
        assert_eq!(
            qs.start(0, &fs, WAIT).await.err(),
            Some(Refusal::ConcurrencyLimit)
        );
        drop(a);
        assert!(qs.start(0, &fs, WAIT).await.is_ok());
        let dump = qs.dump();
        assert_eq!((dump.dispatched, dump.rejected), (3, 1));
    }

    #[tokio::test]
    async fn full_queues_reject() {
        // One seat, one queue of two.
        let qs = QueueSet::new(queued(1, 1, 1, 2));
        let fs: Arc<str> = Arc::from("mine");
        let running = qs.start(7, &fs, WAIT).await.unwrap();
        let w1 = tokio::spawn({
            let (qs, fs) = (qs.clone(), fs.clone());
            async move { qs.start(7, &fs, WAIT).await.is_ok() }
        });
        let w2 = tokio::spawn({
            let (qs, fs) = (qs.clone(), fs.clone());
            async move { qs.start(7, &fs, WAIT).await.is_ok() }
        });
        ferrokube_test_wait(|| qs.dump().waiting == 2).await;
        assert_eq!(qs.start(7, &fs, WAIT).await.err(), Some(Refusal::QueueFull));
        drop(running);
        assert!(w1.await.unwrap());
        assert!(w2.await.unwrap());
        let dump = qs.dump();
        assert_eq!((dump.waiting, dump.executing, dump.rejected), (0, 0, 1));
    }

    #[tokio::test]
    async fn waiting_too_long_times_out() {
        let qs = QueueSet::new(queued(1, 1, 1, 5));
        let fs: Arc<str> = Arc::from("mine");
        let _running = qs.start(0, &fs, WAIT).await.unwrap();
        assert_eq!(
            qs.start(0, &fs, Duration::from_millis(20)).await.err(),
            Some(Refusal::TimeOut)
        );
        let dump = qs.dump();
        assert_eq!((dump.waiting, dump.timed_out), (0, 1));
    }

    /// Waits (bounded) until `cond` holds.
    async fn ferrokube_test_wait(cond: impl Fn() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test]
    async fn fair_queuing_serves_the_second_flow_before_the_first_is_done() {
        // One seat, two queues (a hand of one each). Flow A holds the seat
        // and queues 4 more requests, then flow B queues 2. First in,
        // first out would serve B last; fair queuing (virtual finish
        // times) serves B's two among the next three.
        let qs = QueueSet::new(queued(1, 2, 1, 10));
        let fs: Arc<str> = Arc::from("mine");
        let (hash_a, hash_b) = (0u64, 1u64);
        let d = Dealer::new(2, 1).unwrap();
        assert_ne!(d.deal(hash_a).0[0], d.deal(hash_b).0[0]);
        let blocker = qs.start(hash_a, &fs, WAIT).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (flow, hash) in [("a", hash_a); 4].into_iter().chain([("b", hash_b); 2]) {
            let (queue_set, fs, order) = (qs.clone(), fs.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let seat = queue_set.start(hash, &fs, WAIT).await.unwrap();
                order.lock().push(flow);
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(seat);
            }));
            let expected = tasks.len();
            ferrokube_test_wait(|| qs.dump().waiting == expected).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(blocker);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().clone();
        assert_eq!(order.len(), 6);
        assert_eq!(
            order[..3].iter().filter(|f| **f == "b").count(),
            2,
            "{order:?}"
        );
        assert_eq!(order[3..], ["a", "a", "a"], "{order:?}");
    }
}
