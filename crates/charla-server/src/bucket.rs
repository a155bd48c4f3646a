//! The token bucket behind every rate limit: flood control (`say` and
//! `nick`, docs/protocol.md rules 10 and 21), the request budget of each
//! session, and room creation per client address. An empty bucket answers
//! `rate_limited` and the request is dropped.
//!
//! Invariants: a bucket starts full, never holds more than `burst` tokens,
//! and refills continuously at `rate` tokens per second; a `rate` of 0
//! turns flood control off.

use std::time::Instant;

/// A bucket of `burst` tokens, refilled at `rate` per second.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket (rule 10).
    pub(crate) fn full(burst: u32) -> TokenBucket {
        TokenBucket::full_at(burst, Instant::now())
    }

    fn full_at(burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            updated: now,
        }
    }

    /// Takes one token if there is one; always succeeds when `rate` is 0.
    pub(crate) fn take(&mut self, rate: f64, burst: u32) -> bool {
        self.take_at(rate, burst, Instant::now())
    }

    /// Whether the bucket has refilled to `burst` (so forgetting it and
    /// starting a full one later changes nothing).
    pub(crate) fn is_full(&self, rate: f64, burst: u32) -> bool {
        rate <= 0.0 || self.tokens + self.updated.elapsed().as_secs_f64() * rate >= f64::from(burst)
    }

    fn take_at(&mut self, rate: f64, burst: u32, now: Instant) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let refill = now.saturating_duration_since(self.updated).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_new_bucket_allows_a_full_burst_then_refuses() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full_at(3, start);
        for _ in 0..3 {
            assert!(bucket.take_at(1.0, 3, start));
        }
        assert!(!bucket.take_at(1.0, 3, start));
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full_at(1, start);
        assert!(bucket.take_at(4.0, 1, start));
        assert!(!bucket.take_at(4.0, 1, start + Duration::from_millis(200)));
        // 0.2 s refilled 0.8 tokens, the next 0.05 s brings the first whole one.
        assert!(bucket.take_at(4.0, 1, start + Duration::from_millis(250)));
        assert!(!bucket.take_at(4.0, 1, start + Duration::from_millis(250)));
    }

    #[test]
    fn a_long_pause_refills_no_more_than_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full_at(2, start);
        assert!(bucket.take_at(10.0, 2, start));
        assert!(bucket.take_at(10.0, 2, start));
        let later = start + Duration::from_secs(3600);
        assert!(bucket.take_at(10.0, 2, later));
        assert!(bucket.take_at(10.0, 2, later));
        assert!(!bucket.take_at(10.0, 2, later));
    }

    #[test]
    fn a_zero_rate_turns_flood_control_off() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full_at(0, start);
        for _ in 0..1000 {
            assert!(bucket.take_at(0.0, 0, start));
        }
    }
}
