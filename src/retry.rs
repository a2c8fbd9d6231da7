//! Retries with exponential backoff and full jitter: one policy for everything that talks to a
//! remote service.
//!
//! Object stores answer 5xx, 429 and reset connections as a matter of course; every store
//! operation goes through the retry layer built on [`Retry::run`] (see
//! [`crate::store::layer`]), and so do event deliveries, so callers never sprinkle their own
//! loops.

use std::time::Duration;

/// Longest `Retry-After` honoured; a store asking for more gets retried sooner.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, E = String> {
    /// Done.
    Done(T),
    /// A transient failure (5xx, 429, timeout, reset): try again.
    Transient(E),
    /// A transient failure whose answer said when to try again (`Retry-After`): wait at
    /// least that long (up to [`MAX_RETRY_AFTER`]).
    RetryAfter(E, Duration),
    /// A permanent failure (4xx other than 429, bad input): give up now.
    Permanent(E),
}

/// An error that can say it was the last of several attempts.
pub trait GiveUp {
    /// This error, as the last of `attempts` attempts.
    fn gave_up(self, attempts: u32) -> Self;
}

impl GiveUp for String {
    fn gave_up(self, attempts: u32) -> Self {
        format!("{self} (gave up after {attempts} attempts)")
    }
}

/// A retry policy.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// Run `attempt` until it is done, fails permanently, or runs out of attempts.
    pub fn run<T, E: GiveUp>(&self, mut attempt: impl FnMut() -> Attempt<T, E>) -> Result<T, E> {
        let attempts = self.attempts.max(1);
        let mut asked = Duration::ZERO;
        let mut made = 0;
        loop {
            if made > 0 {
                std::thread::sleep(self.delay(made).max(asked));
            }
            made += 1;
            let last = match attempt() {
                Attempt::Done(v) => return Ok(v),
                Attempt::Permanent(e) => return Err(e),
                Attempt::Transient(e) => {
                    asked = Duration::ZERO;
                    e
                }
                Attempt::RetryAfter(e, after) => {
                    asked = after.min(MAX_RETRY_AFTER);
                    e
                }
            };
            if made >= attempts {
                return Err(last.gave_up(attempts));
            }
        }
    }

    /// Full jitter: a random delay up to the exponential bound.
    fn delay(&self, retry: u32) -> Duration {
        let bound = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max);
        bound.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_failures_only() {
        let quick = Retry {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r = quick.run(|| {
            calls += 1;
            if calls < 3 {
                Attempt::Transient(String::from("503"))
            } else {
                Attempt::Done(calls)
            }
        });
        assert_eq!(r, Ok(3));

        let mut calls = 0;
        let r: Result<(), String> = quick.run(|| {
            calls += 1;
            Attempt::Permanent(String::from("403"))
        });
        assert_eq!((r.unwrap_err().as_str(), calls), ("403", 1));

        let r: Result<(), String> = quick.run(|| Attempt::Transient(String::from("reset")));
        assert!(r.unwrap_err().contains("gave up after 4 attempts"));
    }

    #[test]
    fn retry_after_is_honoured() {
        let quick = Retry {
            attempts: 2,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let started = std::time::Instant::now();
        let mut calls = 0;
        let r = quick.run(|| {
            calls += 1;
            if calls == 1 {
                Attempt::RetryAfter(String::from("429"), Duration::from_millis(300))
            } else {
                Attempt::Done(())
            }
        });
        assert_eq!(r, Ok(()));
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn delays_grow_and_stay_bounded() {
        let r = Retry::default();
        for n in 1..40 {
            assert!(r.delay(n) <= r.max);
        }
    }
}
