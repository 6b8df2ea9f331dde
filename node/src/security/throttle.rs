//! Throttling of failed password checks (`VerifyRegistrarPassword` and
//! `OpenSession`), per registrar and per source, in this node's memory.
//!
//! Each key (a registrar id, or a source: the calling principal and the
//! client address) counts its failures. Up to a number of free failures
//! nothing happens; each failure beyond them refuses that key for a delay
//! that doubles per failure, from [`FIRST_DELAY_MS`] up to
//! [`MAX_DELAY_MS`]. While a key is refused, checks are answered without
//! looking at the password, so a brute force gets about one guess per
//! [`MAX_DELAY_MS`] per source. A key with no failure for
//! [`FORGET_AFTER_MS`] starts again from zero, so nobody is locked out for
//! good, and a successful check clears its registrar's count (a source's
//! count only decays: success for one registrar must not wash out guesses
//! at another's password from the same source).
//!
//! A source gets fewer free failures than a registrar: one attacker is
//! stopped after [`SOURCE_FREE_FAILURES`] while the registrar, logging in
//! from elsewhere, still gets in; guesses spread over many sources are
//! slowed by the registrar's own count after [`REGISTRAR_FREE_FAILURES`].
//!
//! The limits are per node: the table is not replicated, so an attacker
//! spreading over n nodes gets n times the guesses. Time is the proposer
//! clock's, passed in by the caller (tests move it with the test clock).

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures a source may make before its checks are delayed.
pub const SOURCE_FREE_FAILURES: u32 = 5;
/// Failures a registrar's password may see before its checks are delayed.
pub const REGISTRAR_FREE_FAILURES: u32 = 20;
/// The refusal after the first failure beyond the free ones, ms.
pub const FIRST_DELAY_MS: i64 = 1_000;
/// The longest refusal, ms (five minutes).
pub const MAX_DELAY_MS: i64 = 300_000;
/// A key with no failure for this long is forgotten, ms (fifteen minutes).
pub const FORGET_AFTER_MS: i64 = 900_000;
/// Most keys the table holds; beyond it the stalest entry is dropped.
pub const MAX_TRACKED_KEYS: usize = 10_000;

const _: () = assert!(SOURCE_FREE_FAILURES < REGISTRAR_FREE_FAILURES);
const _: () = assert!(FIRST_DELAY_MS <= MAX_DELAY_MS && MAX_DELAY_MS < FORGET_AFTER_MS);

/// What is throttled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Registrar(String),
    Source(String),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure_ms: i64,
    refused_until_ms: i64,
}

/// A check refused without looking at the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// "registrar" or "source": whose failures caused it.
    pub by: &'static str,
    /// How long until checks are accepted again, ms.
    pub retry_after_ms: i64,
}

/// The failure counts of one node.
#[derive(Debug, Default)]
pub struct PasswordThrottle {
    table: Mutex<HashMap<Key, Entry>>,
}

fn delay_ms(failures: u32, free: u32) -> i64 {
    match failures.checked_sub(free + 1) {
        None => 0,
        // 2^19 s is far past the cap already.
        Some(beyond) => FIRST_DELAY_MS
            .saturating_mul(1 << beyond.min(19))
            .min(MAX_DELAY_MS),
    }
}

impl PasswordThrottle {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The table is plain counters; a panic elsewhere leaves it usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a check of `registrar`'s password from `source` may run at
    /// `now_ms`.
    pub fn check(&self, registrar: &str, source: &str, now_ms: i64) -> Result<(), Throttled> {
        let table = self.lock();
        let keys = [
            ("source", Key::Source(source.into())),
            ("registrar", Key::Registrar(registrar.into())),
        ];
        for (by, key) in keys {
            if let Some(e) = table.get(&key) {
                if e.refused_until_ms > now_ms {
                    return Err(Throttled {
                        by,
                        retry_after_ms: e.refused_until_ms - now_ms,
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts a failed check; returns how long the longer of the two keys
    /// is now refused (0: not at all).
    pub fn failed(&self, registrar: &str, source: &str, now_ms: i64) -> i64 {
        let mut table = self.lock();
        let mut refused_ms = 0;
        for (key, free) in [
            (Key::Source(source.into()), SOURCE_FREE_FAILURES),
            (Key::Registrar(registrar.into()), REGISTRAR_FREE_FAILURES),
        ] {
            if !table.contains_key(&key) && table.len() >= MAX_TRACKED_KEYS {
                evict(&mut table, now_ms);
            }
            let e = table.entry(key).or_insert(Entry {
                failures: 0,
                last_failure_ms: now_ms,
                refused_until_ms: 0,
            });
            if now_ms - e.last_failure_ms >= FORGET_AFTER_MS {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure_ms = now_ms;
            let delay = delay_ms(e.failures, free);
            if delay > 0 {
                e.refused_until_ms = now_ms.saturating_add(delay);
            }
            refused_ms = refused_ms.max(delay);
        }
        refused_ms
    }

    /// Counts a successful check: the registrar's failures are forgotten.
    pub fn succeeded(&self, registrar: &str) {
        self.lock().remove(&Key::Registrar(registrar.into()));
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room for one key: drops every forgotten entry, or else the one
/// whose last failure is oldest.
fn evict(table: &mut HashMap<Key, Entry>, now_ms: i64) {
    let before = table.len();
    table.retain(|_, e| now_ms - e.last_failure_ms < FORGET_AFTER_MS);
    if table.len() < before {
        return;
    }
    let stalest = table
        .iter()
        .min_by_key(|(_, e)| e.last_failure_ms)
        .map(|(k, _)| k.clone());
    if let Some(k) = stalest {
        table.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_000_000;

    #[test]
    fn a_brute_force_from_one_source_is_slowed_and_then_recovers() {
        let t = PasswordThrottle::new();
        for i in 0..SOURCE_FREE_FAILURES {
            t.check("acme", "gw 192.0.2.66", T + i as i64).unwrap();
            assert_eq!(t.failed("acme", "gw 192.0.2.66", T + i as i64), 0);
        }
        let now = T + 10;
        assert_eq!(t.failed("acme", "gw 192.0.2.66", now), FIRST_DELAY_MS);
        let refused = t.check("acme", "gw 192.0.2.66", now).unwrap_err();
        assert_eq!(refused.by, "source");
        assert_eq!(refused.retry_after_ms, FIRST_DELAY_MS);
        // The delay doubles with each further failure, up to the cap.
        let mut now = now + FIRST_DELAY_MS;
        t.check("acme", "gw 192.0.2.66", now).unwrap();
        assert_eq!(t.failed("acme", "gw 192.0.2.66", now), 2 * FIRST_DELAY_MS);
        for _ in 0..20 {
            now += MAX_DELAY_MS;
            t.failed("acme", "gw 192.0.2.66", now);
        }
        assert_eq!(
            t.check("acme", "gw 192.0.2.66", now)
                .unwrap_err()
                .retry_after_ms,
            MAX_DELAY_MS
        );
        // After the window the source may try again, and a quiet spell
        // forgets its failures altogether.
        t.check("acme", "gw 192.0.2.66", now + MAX_DELAY_MS)
            .unwrap();
        let later = now + FORGET_AFTER_MS;
        assert_eq!(t.failed("acme", "gw 192.0.2.66", later), 0);
    }

    #[test]
    fn another_source_still_gets_in_while_one_is_refused() {
        let t = PasswordThrottle::new();
        for i in 0..=SOURCE_FREE_FAILURES {
            t.failed("acme", "gw 192.0.2.66", T + i as i64);
        }
        assert!(t.check("acme", "gw 192.0.2.66", T + 10).is_err());
        t.check("acme", "gw 192.0.2.10", T + 10).unwrap();
        t.check("rival", "gw 192.0.2.10", T + 10).unwrap();
    }

    #[test]
    fn guesses_spread_over_sources_are_slowed_by_the_registrar_count() {
        let t = PasswordThrottle::new();
        for i in 0..=REGISTRAR_FREE_FAILURES {
            t.failed("acme", &format!("gw 198.51.100.{i}"), T);
        }
        let refused = t.check("acme", "gw 192.0.2.10", T).unwrap_err();
        assert_eq!(refused.by, "registrar");
        // Other registrars are untouched, and a success clears acme's count.
        t.check("rival", "gw 198.51.100.1", T).unwrap();
        t.succeeded("acme");
        t.check("acme", "gw 192.0.2.10", T).unwrap();
    }

    #[test]
    fn the_table_is_bounded() {
        let t = PasswordThrottle::new();
        for i in 0..MAX_TRACKED_KEYS + 100 {
            t.failed("acme", &format!("source {i}"), T + i as i64);
        }
        assert!(t.len() <= MAX_TRACKED_KEYS, "{}", t.len());
        // The stalest sources went first: the newest are still counted.
        let newest = format!("source {}", MAX_TRACKED_KEYS + 99);
        for _ in 0..SOURCE_FREE_FAILURES {
            t.failed("rival", &newest, T + MAX_TRACKED_KEYS as i64 + 100);
        }
        assert!(t
            .check("rival", &newest, T + MAX_TRACKED_KEYS as i64 + 100)
            .is_err());
    }
}
