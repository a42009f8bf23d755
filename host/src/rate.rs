//! Token buckets: how the server says "not so fast" — guest log lines,
//! control requests per client IP, agent requests per session.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `rate` tokens per second, holding at most `2 × rate`.
#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32) -> Self {
        TokenBucket {
            tokens: 2.0 * rate as f64,
            rate: rate as f64,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(2.0 * self.rate);
        self.last = now;
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self) -> Result<(), Duration> {
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.rate <= 0.0 {
            Err(Duration::from_secs(60))
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// True when the bucket is full again (its key can be forgotten).
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 2.0 * self.rate
    }
}

/// One bucket per key (a client IP, say). Buckets that have refilled are
/// forgotten, so the map holds only recently active keys.
pub struct KeyedLimiter<K> {
    rate: u32,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

/// Keys kept before full buckets are swept out.
const SWEEP_AT: usize = 10_000;

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    /// A limiter of `rate` per second per key (bursts of twice that).
    pub fn new(rate: u32) -> Self {
        KeyedLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how long until one is there.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            let now = Instant::now();
            buckets.retain(|_, b| !b.is_full(now));
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(self.rate))
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_says_when() {
        let mut b = TokenBucket::new(10);
        for _ in 0..20 {
            assert!(b.take().is_ok());
        }
        let wait = b.take().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        let keyed = KeyedLimiter::new(1);
        assert!(keyed.take(&"a").is_ok() && keyed.take(&"a").is_ok());
        assert!(keyed.take(&"a").is_err());
        assert!(keyed.take(&"b").is_ok(), "keys are separate");
    }
}
