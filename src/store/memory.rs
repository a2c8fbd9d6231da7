//! A store in memory: the reference the conformance suite holds the real backends to, and a
//! fast, failure-free target for tests of what sits above the trait (layers, lists, gc).

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{
    Attributes, Body, Condition, Fetched, LIST_PAGE, ObjectInfo, Page, Store, StoreError, Support,
};
use crate::digest::Digest;

/// One stored object.
#[derive(Clone, Debug)]
struct Stored {
    bytes: Vec<u8>,
    attributes: Attributes,
    modified: jiff::Timestamp,
}

/// Objects in a map, behind a lock.
#[derive(Debug)]
pub struct MemoryStore {
    name: String,
    objects: Mutex<BTreeMap<String, Stored>>,
    honours_conditions: bool,
}

impl MemoryStore {
    /// An empty store called `name`, honouring conditional writes.
    pub fn new(name: &str) -> MemoryStore {
        MemoryStore {
            name: name.to_string(),
            objects: Mutex::new(BTreeMap::new()),
            honours_conditions: true,
        }
    }

    /// An empty store that, like Garage 2.5, writes whatever the condition says, and cannot
    /// tell anyone so ([`Support::Unknown`]).
    pub fn ignoring_conditions(name: &str) -> MemoryStore {
        MemoryStore {
            honours_conditions: false,
            ..MemoryStore::new(name)
        }
    }

    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, Stored>> {
        // A poisoned map only means a test panicked mid-write; what it holds is still whole.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, key: &str, body: &Body) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        body.reader()
            .and_then(|mut r| r.read_to_end(&mut bytes))
            .map_err(|e| StoreError::new(&self.name, Some(key), format!("cannot read: {e}")))?;
        Ok(bytes)
    }

    fn info(key: &str, stored: &Stored) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size: stored.bytes.len() as u64,
            sha256: Some(stored.attributes.sha256.clone()),
            etag: Some(etag(&stored.bytes)),
            content_type: Some(stored.attributes.content_type.clone()),
            cache_control: Some(stored.attributes.cache_control.clone()),
            modified: Some(stored.modified),
        }
    }
}

/// The ETag of stored bytes: their sha256, hex.
fn etag(bytes: &[u8]) -> String {
    Digest::of_bytes(bytes).hex().to_string()
}

impl Store for MemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StoreError> {
        let objects = self.objects();
        let start = match after {
            Some(after) => Bound::Excluded(after.to_string()),
            None => Bound::Included(prefix.to_string()),
        };
        let mut page = Page::default();
        let max = max.clamp(1, LIST_PAGE);
        for (key, stored) in objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if page.objects.len() == max {
                page.next = page.objects.last().map(|i: &ObjectInfo| i.key.clone());
                break;
            }
            page.objects.push(Self::info(key, stored));
        }
        Ok(page)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.objects().get(key).map(|s| Self::info(key, s)))
    }

    fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        Ok(self.objects().get(key).map(|s| Fetched {
            bytes: s.bytes.clone(),
            etag: Some(etag(&s.bytes)),
        }))
    }

    fn put(&self, key: &str, body: &Body, attributes: &Attributes) -> Result<(), StoreError> {
        let bytes = self.read(key, body)?;
        let actual = Digest::of_bytes(&bytes);
        if actual != attributes.sha256 {
            return Err(StoreError::new(
                &self.name,
                Some(key),
                format!(
                    "source changed since verification: expected {}, read {actual}",
                    attributes.sha256
                ),
            ));
        }
        self.objects().insert(
            key.to_string(),
            Stored {
                bytes,
                attributes: attributes.clone(),
                modified: jiff::Timestamp::now(),
            },
        );
        Ok(())
    }

    fn put_if(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        condition: &Condition,
    ) -> Result<bool, StoreError> {
        if self.honours_conditions {
            // Compare and write under one lock; `put` takes it again, so check first.
            let objects = self.objects();
            let current = objects.get(key).map(|s| etag(&s.bytes));
            let holds = match condition {
                Condition::Absent => current.is_none(),
                Condition::Matches(tag) => current.as_deref() == Some(tag.as_str()),
            };
            if !holds {
                return Ok(false);
            }
            drop(objects);
        }
        self.put(key, body, attributes).map(|()| true)
    }

    fn conditional_writes(&self) -> Result<Support, StoreError> {
        Ok(if self.honours_conditions {
            Support::Yes
        } else {
            Support::Unknown
        })
    }

    fn copy(
        &self,
        source: &str,
        key: &str,
        size: u64,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        let mut objects = self.objects();
        let Some(bytes) = objects.get(source).map(|s| s.bytes.clone()) else {
            return Err(StoreError::new(
                &self.name,
                Some(key),
                format!("copy source {source} does not exist"),
            ));
        };
        if bytes.len() as u64 != size {
            return Err(StoreError::new(
                &self.name,
                Some(key),
                format!(
                    "copy source {source} has {} bytes, expected {size}",
                    bytes.len()
                ),
            ));
        }
        objects.insert(
            key.to_string(),
            Stored {
                bytes,
                attributes: attributes.clone(),
                modified: jiff::Timestamp::now(),
            },
        );
        Ok(true)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        let mut objects = self.objects();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }

    fn clean_stale(&self, _prefix: &str, _age: Duration) -> Result<u64, StoreError> {
        Ok(0)
    }
}
