//! Rate-limited logging, so that a failure repeated by every request (the database server is
//! down, a damaged file is asked for again and again) writes a few lines, not one per request.
//!
//! - [`Throttle`]: a line per distinct message at most once per interval, the next one telling
//!   how many were left out. [`error`] and [`server_error`] use one shared throttle.
//! - [`Outage`]: a resource that is down. One line when it goes down, at most one summary line
//!   per interval while it stays down, one line when it is back.
//!
//! Both take the current time as an argument, so their tests need no sleeping.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How often a repeated message (or an outage summary) is logged at most.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Distinct messages tracked at once; beyond, new ones share one slot (and so one line per
/// interval), so that many distinct failures still cannot flood the log.
const MAX_KEYS: usize = 1024;
const OVERFLOW_KEY: &str = "\0other messages";

/// Lets a message through once per interval; see [`Throttle::check`].
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

#[derive(Debug)]
struct Slot {
    logged_at: Instant,
    suppressed: u64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self { interval, slots: Mutex::new(HashMap::new()) }
    }

    /// Whether a line for `key` should be written at `now`: `Some(n)` if so, `n` being how
    /// many were left out since the last one; `None` to leave it out.
    pub fn check(&self, key: &str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let interval = self.interval;
        let fresh = |slot: &Slot| now.saturating_duration_since(slot.logged_at) < interval;
        let key = if slots.contains_key(key) || slots.len() < MAX_KEYS {
            key
        } else {
            // Forget what is no longer suppressed; if still full, use the shared slot.
            slots.retain(|k, slot| k == OVERFLOW_KEY || fresh(slot) || slot.suppressed > 0);
            if slots.len() < MAX_KEYS { key } else { OVERFLOW_KEY }
        };
        match slots.get_mut(key) {
            Some(slot) if fresh(slot) => {
                slot.suppressed += 1;
                None
            }
            Some(slot) => {
                slot.logged_at = now;
                Some(std::mem::take(&mut slot.suppressed))
            }
            None => {
                slots.insert(key.to_owned(), Slot { logged_at: now, suppressed: 0 });
                Some(0)
            }
        }
    }
}

static ERRORS: LazyLock<Throttle> = LazyLock::new(|| Throttle::new(INTERVAL));

/// Runs `log` (which writes the line) if a line for `key` is due, with the number of repeats
/// left out since the last one. For errors that every request for the same thing would repeat.
pub fn error(key: &str, log: impl FnOnce(u64)) {
    if let Some(suppressed) = ERRORS.check(key, Instant::now()) {
        log(suppressed);
    }
}

/// Logs a request answered with a 5xx status at error level, once per interval for the same
/// status and message.
pub fn server_error(status: u16, error: &dyn Display) {
    let message = error.to_string();
    self::error(&format!("{status} {message}"), |suppressed| {
        if suppressed == 0 {
            tracing::error!(status, error = %message, "request failed");
        } else {
            tracing::error!(
                status,
                error = %message,
                "request failed ({suppressed} more answers with this error in the last {} s were not logged)",
                INTERVAL.as_secs()
            );
        }
    });
}

/// What an [`Outage`] has to say about a failure or a success; `None` from its methods means
/// nothing (the outage is already reported, or there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutageEvent {
    /// The first failure after a success (or the start).
    Started,
    /// The outage goes on: `failures` since the last line, `over` this long.
    StillDown { failures: u64, over: Duration },
    /// The first success after failures: the outage lasted `after`, with `failures` in all.
    Recovered { after: Duration, failures: u64 },
}

/// Tracks whether a resource (the database server) is down; see [`OutageEvent`].
#[derive(Debug)]
pub struct Outage {
    interval: Duration,
    /// Lets successes skip the lock while all is well.
    down: AtomicBool,
    state: Mutex<Option<Down>>,
}

#[derive(Debug)]
struct Down {
    since: Instant,
    reported_at: Instant,
    since_report: u64,
    total: u64,
}

impl Outage {
    pub fn new(interval: Duration) -> Self {
        Self { interval, down: AtomicBool::new(false), state: Mutex::new(None) }
    }

    /// Records a failure at `now`.
    pub fn failure(&self, now: Instant) -> Option<OutageEvent> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.down.store(true, Ordering::Release);
        match state.as_mut() {
            None => {
                *state = Some(Down { since: now, reported_at: now, since_report: 0, total: 1 });
                Some(OutageEvent::Started)
            }
            Some(down) => {
                down.total += 1;
                down.since_report += 1;
                let over = now.saturating_duration_since(down.reported_at);
                if over < self.interval {
                    return None;
                }
                down.reported_at = now;
                Some(OutageEvent::StillDown { failures: std::mem::take(&mut down.since_report), over })
            }
        }
    }

    /// Records a success at `now`.
    pub fn success(&self, now: Instant) -> Option<OutageEvent> {
        if !self.down.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.down.store(false, Ordering::Release);
        let down = state.take()?;
        Some(OutageEvent::Recovered { after: now.saturating_duration_since(down.since), failures: down.total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn throttle_once_per_interval_with_counts() {
        let throttle = Throttle::new(10 * S);
        let t0 = Instant::now();
        assert_eq!(throttle.check("a", t0), Some(0));
        // 10,000 repeats within the interval: none logged.
        for i in 0..10_000u32 {
            assert_eq!(throttle.check("a", t0 + Duration::from_micros(u64::from(i) * 900)), None);
        }
        // Another message is not held back by the first.
        assert_eq!(throttle.check("b", t0 + S), Some(0));
        assert_eq!(throttle.check("b", t0 + 2 * S), None);
        // After the interval: one line, telling how many were left out.
        assert_eq!(throttle.check("a", t0 + 10 * S), Some(10_000));
        assert_eq!(throttle.check("a", t0 + 11 * S), None);
        assert_eq!(throttle.check("a", t0 + 25 * S), Some(1));
        assert_eq!(throttle.check("b", t0 + 25 * S), Some(1));
        // A message that comes back long after: logged, nothing left out.
        assert_eq!(throttle.check("a", t0 + 100 * S), Some(0));
    }

    #[test]
    fn throttle_bounds_distinct_messages() {
        let throttle = Throttle::new(10 * S);
        let t0 = Instant::now();
        let logged = (0..5 * MAX_KEYS).filter(|i| throttle.check(&format!("m{i}"), t0).is_some()).count();
        // The first MAX_KEYS, then one line for all the others.
        assert_eq!(logged, MAX_KEYS + 1);
        assert!(throttle.slots.lock().unwrap().len() <= MAX_KEYS + 1);
        // Once the interval is over, stale slots make room again.
        assert_eq!(throttle.check("new", t0 + 11 * S), Some(0));
    }

    #[test]
    fn outage_start_summaries_recovery() {
        let outage = Outage::new(10 * S);
        let t0 = Instant::now();
        assert_eq!(outage.success(t0), None);
        assert_eq!(outage.failure(t0), Some(OutageEvent::Started));
        // 20 s at 10,000 failures per second: two summary lines, no more.
        let mut events = Vec::new();
        for i in 1..=200_000u64 {
            events.extend(outage.failure(t0 + Duration::from_micros(i * 100)));
        }
        assert_eq!(
            events,
            [
                OutageEvent::StillDown { failures: 100_000, over: 10 * S },
                OutageEvent::StillDown { failures: 100_000, over: 10 * S },
            ]
        );
        assert_eq!(outage.success(t0 + 21 * S), Some(OutageEvent::Recovered { after: 21 * S, failures: 200_001 }));
        assert_eq!(outage.success(t0 + 22 * S), None);
        // A new outage is reported again.
        assert_eq!(outage.failure(t0 + 30 * S), Some(OutageEvent::Started));
        assert_eq!(outage.failure(t0 + 31 * S), None);
        assert_eq!(outage.success(t0 + 32 * S), Some(OutageEvent::Recovered { after: 2 * S, failures: 2 }));
    }
}
