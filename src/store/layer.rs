//! Layers that wrap any [`Store`]: retry with backoff, a bound on operations in flight,
//! request counting, a key prefix, and the conditional-write probe.
//!
//! Backends send each operation once; what every target needs is added here, once, so the
//! directory target gets the same retries and limits as S3. All but the prefix run each operation
//! inside something ([`Around`]): [`Layered`] applies one to every method.
//! [`Prefixed`] rewrites keys; [`Probe`] answers [`Store::conditional_writes`] by trying.
//! [`crate::target::open`] stacks them, outermost first: probe, retry, limit, count, prefix,
//! backend — so every attempt of a retried operation is counted and holds a permit only while
//! it runs, never while it backs off.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::{
    Attributes, Body, Condition, Fetched, ObjectInfo, Page, Part, Recovery, Store, StoreError,
    Support,
};
use crate::retry::{Attempt, Retry};

/// Something every operation of a store runs inside.
pub trait Around: Send + Sync {
    /// Run `operation` (perhaps more than once, perhaps after waiting).
    fn around<T>(
        &self,
        operation: &mut dyn FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;

    /// Whether `inner` honours conditional writes: a capability, not a request, so by default
    /// asked straight (no retry, no permit, not counted).
    fn conditional_writes(&self, inner: &dyn Store) -> Result<Support, StoreError> {
        inner.conditional_writes()
    }
}

/// Retry transient failures with backoff ([`Recovery::Transient`], [`Recovery::RetryAfter`]).
impl Around for Retry {
    fn around<T>(
        &self,
        operation: &mut dyn FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(|| match operation() {
            Ok(value) => Attempt::Done(value),
            Err(e) => match e.recovery {
                Recovery::Transient => Attempt::Transient(e),
                Recovery::RetryAfter(after) => Attempt::RetryAfter(e, after),
                Recovery::Permanent | Recovery::Unsupported => Attempt::Permanent(e),
            },
        })
    }
}

/// At most so many operations in flight at once, whatever the number of callers.
#[derive(Debug)]
pub struct Limit {
    most: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

impl Limit {
    /// At most `most` (at least 1) at once.
    pub fn new(most: usize) -> Limit {
        Limit {
            most: most.max(1),
            running: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Operations running now.
    pub fn running(&self) -> usize {
        self.running.lock().map(|n| *n).unwrap_or(0)
    }
}

impl Around for Limit {
    fn around<T>(
        &self,
        operation: &mut dyn FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        {
            // A poisoned lock only means another operation panicked; the count is still right.
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            while *running >= self.most {
                running = self.freed.wait(running).unwrap_or_else(|p| p.into_inner());
            }
            *running += 1;
        }
        let result = operation();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        self.freed.notify_one();
        result
    }
}

/// Counts the operations sent (each attempt of a retried one, each page of a listing, each
/// part of an upload): the `requests` of a report.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Operations counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Around for Counter {
    fn around<T>(
        &self,
        operation: &mut dyn FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        operation()
    }
}

/// A store whose every operation runs inside `around`.
pub struct Layered<A, S> {
    around: A,
    inner: S,
}

impl<A: Around, S: Store> Layered<A, S> {
    /// `inner`, each operation run inside `around`.
    pub fn new(around: A, inner: S) -> Self {
        Layered { around, inner }
    }
}

impl<A: Around, S: Store> Store for Layered<A, S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StoreError> {
        self.around
            .around(&mut || self.inner.list_page(prefix, after, max))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.around.around(&mut || self.inner.head(key))
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        self.around.around(&mut || self.inner.get(key))
    }

    fn put(&self, key: &str, body: &Body, attributes: &Attributes) -> Result<(), StoreError> {
        self.around
            .around(&mut || self.inner.put(key, body, attributes))
    }

    fn put_if(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        condition: &Condition,
    ) -> Result<bool, StoreError> {
        self.around
            .around(&mut || self.inner.put_if(key, body, attributes, condition))
    }

    fn conditional_writes(&self) -> Result<Support, StoreError> {
        self.around.conditional_writes(&self.inner)
    }

    fn copy(
        &self,
        source: &str,
        key: &str,
        size: u64,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        self.around
            .around(&mut || self.inner.copy(source, key, size, attributes))
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.around.around(&mut || self.inner.delete_many(keys))
    }

    fn create_multipart(
        &self,
        key: &str,
        attributes: &Attributes,
    ) -> Result<Option<String>, StoreError> {
        self.around
            .around(&mut || self.inner.create_multipart(key, attributes))
    }

    fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u16,
        body: &Body,
        crc32: u32,
    ) -> Result<String, StoreError> {
        self.around
            .around(&mut || self.inner.put_part(key, upload, number, body, crc32))
    }

    fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        parts: &[Part],
    ) -> Result<(), StoreError> {
        self.around
            .around(&mut || self.inner.complete_multipart(key, upload, parts))
    }

    fn abort_multipart(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.around
            .around(&mut || self.inner.abort_multipart(key, upload))
    }

    fn clean_stale(&self, prefix: &str, age: Duration) -> Result<u64, StoreError> {
        self.around
            .around(&mut || self.inner.clean_stale(prefix, age))
    }
}

/// A store seen under a key prefix (`s3://bucket/prefix/`): every key is the inner store's
/// key with `prefix` removed, and nothing outside the prefix is visible.
pub struct Prefixed<S> {
    prefix: String,
    inner: S,
}

impl<S: Store> Prefixed<S> {
    /// `inner`'s keys under `prefix` (empty, or ending in `/`).
    pub fn new(prefix: &str, inner: S) -> Self {
        Prefixed {
            prefix: prefix.to_string(),
            inner,
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// An error of the inner store, naming the key as the caller knows it.
    fn unprefixed(&self, mut e: StoreError) -> StoreError {
        if let Some(key) = e.key.as_deref().and_then(|k| k.strip_prefix(&self.prefix)) {
            e.key = Some(key.to_string());
        }
        e
    }
}

impl<S: Store> Store for Prefixed<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StoreError> {
        let mut page = self
            .inner
            .list_page(&self.full(prefix), after, max)
            .map_err(|e| self.unprefixed(e))?;
        page.objects
            .retain_mut(|info| match info.key.strip_prefix(&self.prefix) {
                Some(key) => {
                    info.key = key.to_string();
                    true
                }
                None => false,
            });
        Ok(page)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let info = self
            .inner
            .head(&self.full(key))
            .map_err(|e| self.unprefixed(e))?;
        Ok(info.map(|info| ObjectInfo {
            key: key.to_string(),
            ..info
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        self.inner
            .get(&self.full(key))
            .map_err(|e| self.unprefixed(e))
    }

    fn put(&self, key: &str, body: &Body, attributes: &Attributes) -> Result<(), StoreError> {
        self.inner
            .put(&self.full(key), body, attributes)
            .map_err(|e| self.unprefixed(e))
    }

    fn put_if(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        condition: &Condition,
    ) -> Result<bool, StoreError> {
        self.inner
            .put_if(&self.full(key), body, attributes, condition)
            .map_err(|e| self.unprefixed(e))
    }

    fn conditional_writes(&self) -> Result<Support, StoreError> {
        self.inner.conditional_writes()
    }

    fn copy(
        &self,
        source: &str,
        key: &str,
        size: u64,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        self.inner
            .copy(&self.full(source), &self.full(key), size, attributes)
            .map_err(|e| self.unprefixed(e))
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        let keys: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        self.inner
            .delete_many(&keys)
            .map_err(|e| self.unprefixed(e))
    }

    fn create_multipart(
        &self,
        key: &str,
        attributes: &Attributes,
    ) -> Result<Option<String>, StoreError> {
        self.inner
            .create_multipart(&self.full(key), attributes)
            .map_err(|e| self.unprefixed(e))
    }

    fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u16,
        body: &Body,
        crc32: u32,
    ) -> Result<String, StoreError> {
        self.inner
            .put_part(&self.full(key), upload, number, body, crc32)
            .map_err(|e| self.unprefixed(e))
    }

    fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        parts: &[Part],
    ) -> Result<(), StoreError> {
        self.inner
            .complete_multipart(&self.full(key), upload, parts)
            .map_err(|e| self.unprefixed(e))
    }

    fn abort_multipart(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        self.inner
            .abort_multipart(&self.full(key), upload)
            .map_err(|e| self.unprefixed(e))
    }

    fn clean_stale(&self, prefix: &str, age: Duration) -> Result<u64, StoreError> {
        self.inner
            .clean_stale(&self.full(prefix), age)
            .map_err(|e| self.unprefixed(e))
    }
}

/// Key prefix (outside `v2/`, so no client or listing of the site sees it) of the objects
/// written to find out whether a store honours conditional writes; `gc` removes any a killed
/// run left.
pub const PROBE_PREFIX: &str = ".regpress-probe-";

/// Answers [`Support::Unknown`] once per run by trying: a probe object written twice with
/// [`Condition::Absent`] (the second must be refused) and once with a wrong
/// [`Condition::Matches`] (refused too), then deleted. R2 and AWS S3 pass; Garage 2.5 writes
/// all three. Every other operation passes straight through.
#[derive(Debug, Default)]
pub struct Probe {
    known: OnceLock<Support>,
}

/// A store whose [`Store::conditional_writes`] is found out by trying ([`Probe`]).
pub type Probed<S> = Layered<Probe, S>;

impl<S: Store> Probed<S> {
    /// `inner`, probed when first asked.
    pub fn probed(inner: S) -> Self {
        Layered::new(Probe::default(), inner)
    }
}

impl Probe {
    fn probe(inner: &dyn Store) -> Result<Support, StoreError> {
        let key = format!("{PROBE_PREFIX}{:016x}", fastrand::u64(..));
        let bytes: Arc<[u8]> = Arc::from(&b"{}"[..]);
        let attributes = Attributes {
            content_type: "application/json".to_string(),
            cache_control: "no-store".to_string(),
            sha256: crate::digest::Digest::of_bytes(&bytes),
        };
        let body = Body::Bytes(bytes);
        // A store that refuses the header outright does not implement it.
        let attempt =
            |condition: &Condition| match inner.put_if(&key, &body, &attributes, condition) {
                Err(e) if e.recovery == Recovery::Unsupported => Ok(None),
                other => other.map(Some),
            };
        let honoured = attempt(&Condition::Absent)? == Some(true)
            && attempt(&Condition::Absent)? == Some(false)
            && attempt(&Condition::Matches("0123456789abcdef".to_string()))? == Some(false);
        inner.delete(&key)?;
        Ok(if honoured { Support::Yes } else { Support::No })
    }
}

impl Around for Probe {
    fn around<T>(
        &self,
        operation: &mut dyn FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        operation()
    }

    fn conditional_writes(&self, inner: &dyn Store) -> Result<Support, StoreError> {
        if let Some(known) = self.known.get() {
            return Ok(*known);
        }
        let support = match inner.conditional_writes()? {
            Support::Unknown => Probe::probe(inner)?,
            known => known,
        };
        Ok(*self.known.get_or_init(|| support))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::AtomicUsize;

    fn attributes(bytes: &[u8]) -> Attributes {
        Attributes {
            content_type: "application/json".into(),
            cache_control: "no-store".into(),
            sha256: crate::digest::Digest::of_bytes(bytes),
        }
    }

    /// A store whose first `failures` puts fail with `recovery`.
    struct Flaky {
        inner: MemoryStore,
        failures: AtomicUsize,
        recovery: Recovery,
    }

    impl Flaky {
        fn fail(&self, key: &str) -> Result<(), StoreError> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(StoreError::new("flaky", Some(key), "503").recovering(self.recovery));
            }
            Ok(())
        }
    }

    impl Store for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn list_page(&self, p: &str, a: Option<&str>, m: usize) -> Result<Page, StoreError> {
            self.inner.list_page(p, a, m)
        }
        fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
            self.inner.head(key)
        }
        fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
            self.inner.get(key)
        }
        fn put(&self, key: &str, body: &Body, a: &Attributes) -> Result<(), StoreError> {
            self.fail(key)?;
            self.inner.put(key, body, a)
        }
        fn put_if(
            &self,
            key: &str,
            body: &Body,
            a: &Attributes,
            c: &Condition,
        ) -> Result<bool, StoreError> {
            self.inner.put_if(key, body, a, c)
        }
        fn conditional_writes(&self) -> Result<Support, StoreError> {
            Ok(Support::Unknown)
        }
        fn copy(&self, s: &str, k: &str, n: u64, a: &Attributes) -> Result<bool, StoreError> {
            self.inner.copy(s, k, n, a)
        }
        fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
            self.inner.delete_many(keys)
        }
        fn clean_stale(&self, p: &str, age: Duration) -> Result<u64, StoreError> {
            self.inner.clean_stale(p, age)
        }
    }

    fn flaky(failures: usize, recovery: Recovery) -> Flaky {
        Flaky {
            inner: MemoryStore::new("flaky"),
            failures: AtomicUsize::new(failures),
            recovery,
        }
    }

    fn quick() -> Retry {
        Retry {
            attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        }
    }

    #[test]
    fn retries_transient_failures_and_counts_every_attempt() {
        let counter = Counter::default();
        let store = Layered::new(
            quick(),
            Layered::new(counter.clone(), flaky(2, Recovery::Transient)),
        );
        let body = Body::Bytes(Arc::from(&b"{}"[..]));
        store.put("k", &body, &attributes(b"{}")).unwrap();
        assert_eq!(counter.get(), 3);
        assert!(store.get("k").unwrap().is_some());

        let store = Layered::new(quick(), flaky(5, Recovery::Transient));
        let e = store.put("k", &body, &attributes(b"{}")).unwrap_err();
        assert!(e.reason.contains("gave up after 3 attempts"), "{e}");

        let counter = Counter::default();
        let store = Layered::new(
            quick(),
            Layered::new(counter.clone(), flaky(1, Recovery::Permanent)),
        );
        assert_eq!(
            store
                .put("k", &body, &attributes(b"{}"))
                .unwrap_err()
                .reason,
            "503"
        );
        assert_eq!(counter.get(), 1, "a permanent failure is not retried");
    }

    #[test]
    fn the_limit_bounds_operations_in_flight() {
        struct Slow {
            limit: Arc<Limit>,
            most: AtomicUsize,
        }
        impl Around for Slow {
            fn around<T>(
                &self,
                operation: &mut dyn FnMut() -> Result<T, StoreError>,
            ) -> Result<T, StoreError> {
                self.most.fetch_max(self.limit.running(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                operation()
            }
        }
        let limit = Arc::new(Limit::new(3));
        let slow = Slow {
            limit: limit.clone(),
            most: AtomicUsize::new(0),
        };
        struct Shared(Arc<Limit>);
        impl Around for Shared {
            fn around<T>(
                &self,
                operation: &mut dyn FnMut() -> Result<T, StoreError>,
            ) -> Result<T, StoreError> {
                self.0.around(operation)
            }
        }
        let store = Layered::new(
            Shared(limit.clone()),
            Layered::new(slow, MemoryStore::new("m")),
        );
        std::thread::scope(|scope| {
            for n in 0..12 {
                let store = &store;
                scope.spawn(move || store.head(&format!("k{n}")).unwrap());
            }
        });
        assert_eq!(limit.running(), 0);
        assert_eq!(store.inner.around.most.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_prefix_hides_everything_outside_it() {
        let inner = MemoryStore::new("m");
        let body = Body::Bytes(Arc::from(&b"x"[..]));
        inner.put("outside", &body, &attributes(b"x")).unwrap();
        let store = Prefixed::new("p/", inner);
        store.put("v2/a", &body, &attributes(b"x")).unwrap();
        let keys: Vec<String> = store.list("").unwrap().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["v2/a"]);
        assert_eq!(store.head("v2/a").unwrap().unwrap().key, "v2/a");
        assert!(store.head("outside").unwrap().is_none());
        assert!(store.inner.head("p/v2/a").unwrap().is_some());
        assert!(store.copy("v2/a", "v2/b", 1, &attributes(b"x")).unwrap());
        store.delete("v2/a").unwrap();
        let keys: Vec<String> = store
            .list("v2/")
            .unwrap()
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(keys, ["v2/b"]);
    }

    #[test]
    fn the_probe_finds_out_once_and_leaves_nothing() {
        let honest = Probed::probed(flaky(0, Recovery::Transient));
        assert_eq!(honest.conditional_writes().unwrap(), Support::Yes);
        assert_eq!(honest.conditional_writes().unwrap(), Support::Yes);
        assert!(honest.list("").unwrap().is_empty());

        let ignoring = Probed::probed(MemoryStore::ignoring_conditions("m"));
        assert_eq!(ignoring.conditional_writes().unwrap(), Support::No);
        assert!(ignoring.list("").unwrap().is_empty());
    }
}
