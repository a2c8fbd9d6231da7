//! Where a site is written: a narrow storage trait, the backends that implement it, and the
//! layers every backend gets.
//!
//! [`Store`] knows keys, bodies and object attributes, nothing of images or plans: the
//! pipeline upstream (verify, plan, diff) decides *what* to write, the store only *how*.
//! Backends ([`dir`], [`s3`], [`memory`]) send each operation once; retry with backoff, the
//! in-flight limit, key prefixing, request counting and the conditional-write probe are
//! [`layer`]s that wrap any backend, as object_store does. [`upload`] writes one object
//! through the trait, in parts when it is large. [`crate::target`] names a target and builds
//! the stack. Every backend passes the one conformance suite in `tests/store_conformance.rs`.

pub mod dir;
pub mod layer;
pub mod memory;
pub mod s3;
pub mod upload;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::digest::Digest;

/// Most keys one [`Store::delete_many`] call may name (the S3 DeleteObjects limit).
pub const DELETE_BATCH: usize = 1000;
/// Most keys one listing page holds (the S3 ListObjectsV2 limit).
pub const LIST_PAGE: usize = 1000;
/// Most bytes one answer of a store may hold ([`Store::get`] of a document, a listing page):
/// regpress reads catalogs, tag lists, manifests and referrers indexes this way, never
/// blobs, so anything longer is refused, naming this limit, before it fills memory.
pub const MAX_GET: u64 = 64 * 1024 * 1024;

/// Where an object's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Small documents held in memory (manifests, lists).
    Bytes(Arc<[u8]>),
    /// `len` bytes of a file from `offset`, streamed from disk (blobs, and parts of them).
    File {
        /// The file.
        path: PathBuf,
        /// Where the body starts in it.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

impl Body {
    /// The whole of a file of `len` bytes.
    pub fn file(path: PathBuf, len: u64) -> Body {
        Body::File {
            path,
            offset: 0,
            len,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader over its bytes (at most `len` of them, for a file).
    pub fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(match self {
            Body::Bytes(bytes) => Box::new(&bytes[..]),
            Body::File { path, offset, len } => {
                let mut file = File::open(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                })?;
                file.seek(SeekFrom::Start(*offset)).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot seek in {}: {e}", path.display()))
                })?;
                Box::new(file.take(*len))
            }
        })
    }
}

/// Where the bytes come from, for messages: the file's path, or the size of a document.
impl std::fmt::Display for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(bytes) => write!(f, "a document of {} bytes", bytes.len()),
            Body::File { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// What a stored object is served with, and the digest its bytes must have. Every write is
/// checked against `sha256` by the store (S3: `x-amz-checksum-sha256`; directory: hashed while
/// copied), so bytes that changed since verification are never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Content-Type to serve it with.
    pub content_type: String,
    /// Cache-Control to serve it with.
    pub cache_control: String,
    /// sha256 of its bytes (for manifests and blobs, their digest).
    pub sha256: Digest,
}

/// What the target knows about one stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// sha256 of its bytes, when the target records it.
    pub sha256: Option<Digest>,
    /// Its ETag without quotes (for single-part uploads, the hex MD5 of its bytes).
    pub etag: Option<String>,
    /// Its Content-Type, when the target reports it.
    pub content_type: Option<String>,
    /// Its Cache-Control, when the target reports it.
    pub cache_control: Option<String>,
    /// When it was last written, when the target reports it.
    pub modified: Option<jiff::Timestamp>,
}

/// One page of a listing, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The objects.
    pub objects: Vec<ObjectInfo>,
    /// Where the next page starts (opaque; pass it back as `after`), `None` on the last page.
    pub next: Option<String>,
}

/// A (small) object's bytes as read, with the tag a conditional write compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its ETag (S3) or content hash (directory): what [`Condition::Matches`] takes.
    pub etag: Option<String>,
}

/// The precondition of a compare-and-swap write ([`Store::put_if`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Only if no object is stored at the key (`If-None-Match: *`).
    Absent,
    /// Only if the stored object still has this ETag (`If-Match`).
    Matches(String),
}

/// Whether a store honours [`Store::put_if`]'s conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// It does (the directory target, R2, AWS S3).
    Yes,
    /// It writes unconditionally (Garage 2.5 ignores the headers).
    No,
    /// The protocol cannot say; [`layer::Probed`] finds out by trying.
    Unknown,
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its number, from 1.
    pub number: u16,
    /// The ETag the store gave it.
    pub etag: String,
    /// CRC-32 of its bytes (the store checks it, `x-amz-checksum-crc32`).
    pub crc32: u32,
}

/// How a failed operation may recover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Trying again will not help (4xx, bad input, a changed source).
    Permanent,
    /// It may work if tried again (5xx, 429, timeout, reset).
    Transient,
    /// It may work if tried again after this long (`Retry-After`).
    RetryAfter(Duration),
    /// The store does not implement what was asked (a conditional header, say).
    Unsupported,
}

/// A failure of the target store, naming the target and, when known, the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target {target}{}: {reason}", key.as_ref().map(|k| format!(": key {k}")).unwrap_or_default())]
pub struct StoreError {
    /// The target as the user named it.
    pub target: String,
    /// The object key involved, if any.
    pub key: Option<String>,
    /// What went wrong.
    pub reason: String,
    /// Whether trying again may help.
    pub recovery: Recovery,
}

impl StoreError {
    /// A permanent failure of `target` at `key`.
    pub fn new(target: &str, key: Option<&str>, reason: impl Into<String>) -> StoreError {
        StoreError {
            target: target.to_string(),
            key: key.map(str::to_string),
            reason: reason.into(),
            recovery: Recovery::Permanent,
        }
    }

    /// The same failure, recovering as `recovery`.
    pub fn recovering(mut self, recovery: Recovery) -> StoreError {
        self.recovery = recovery;
        self
    }
}

impl crate::retry::GiveUp for StoreError {
    fn gave_up(mut self, attempts: u32) -> Self {
        self.reason = self.reason.gave_up(attempts);
        self
    }
}

/// A place objects are written to and read back from. Keys are `/`-separated strings such as
/// `v2/apko/golden/manifests/latest`; nothing here knows what they mean.
///
/// A backend sends each call as one request (or one local operation) and classifies its
/// failures ([`Recovery`]); it does not retry, count or limit: [`layer`]s do.
pub trait Store: Send + Sync {
    /// The target as the user named it (for messages and reports).
    fn name(&self) -> &str;

    /// Up to `max` (at most [`LIST_PAGE`]) objects whose key starts with `prefix`, in key
    /// order, from where the page `after` left off.
    fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StoreError>;

    /// Every object whose key starts with `prefix`, page by page.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        self.list_each(prefix, &mut |info| out.push(info))?;
        Ok(out)
    }

    /// `each` of every object whose key starts with `prefix`, as each page comes in (so a
    /// caller that keeps less of each object never holds a whole listing of them).
    fn list_each(&self, prefix: &str, each: &mut dyn FnMut(ObjectInfo)) -> Result<(), StoreError> {
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(prefix, after.as_deref(), LIST_PAGE)?;
            page.objects.into_iter().for_each(&mut *each);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// What is known about one object, or `None` if it is absent.
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError>;

    /// One (small) object's bytes and ETag, or `None` if it is absent; an error (naming
    /// [`MAX_GET`]) for one longer than that.
    fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError>;

    /// Write one object atomically: a reader sees the old object or the whole new one. Its
    /// bytes must hash to `attributes.sha256`, or nothing is written.
    fn put(&self, key: &str, body: &Body, attributes: &Attributes) -> Result<(), StoreError>;

    /// Write one object only if `condition` holds (compare-and-swap); `false` when it did not
    /// (another writer got there first). Meaningful only where [`Store::conditional_writes`]
    /// is [`Support::Yes`]: other stores may write unconditionally.
    fn put_if(
        &self,
        key: &str,
        body: &Body,
        attributes: &Attributes,
        condition: &Condition,
    ) -> Result<bool, StoreError>;

    /// Whether [`Store::put_if`]'s conditions are honoured.
    fn conditional_writes(&self) -> Result<Support, StoreError>;

    /// Write `key` by copying the identical `size` bytes already stored at `source`, inside
    /// the target (no upload), served with `attributes`. `false` when the store cannot copy an
    /// object this large: upload it instead.
    fn copy(
        &self,
        source: &str,
        key: &str,
        size: u64,
        attributes: &Attributes,
    ) -> Result<bool, StoreError>;

    /// Remove up to [`DELETE_BATCH`] objects (in one request where the target allows it, S3
    /// DeleteObjects); absent keys are not an error.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Remove one object; an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.delete_many(&[key.to_string()])
    }

    /// Start a multipart upload of `key`, returning its id; `None` when the store has no such
    /// thing (write the object with [`Store::put`]).
    fn create_multipart(
        &self,
        key: &str,
        attributes: &Attributes,
    ) -> Result<Option<String>, StoreError> {
        let _ = (key, attributes);
        Ok(None)
    }

    /// Upload part `number` (from 1) of `upload`; its bytes must have the CRC-32 `crc32`.
    /// Returns the part's ETag.
    fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u16,
        body: &Body,
        crc32: u32,
    ) -> Result<String, StoreError> {
        let _ = (upload, number, body, crc32);
        Err(no_multipart(self, key))
    }

    /// Finish `upload` from its `parts`, in order: the object appears whole, or not at all.
    fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        parts: &[Part],
    ) -> Result<(), StoreError> {
        let _ = (upload, parts);
        Err(no_multipart(self, key))
    }

    /// Give up `upload`, freeing its parts.
    fn abort_multipart(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        let _ = upload;
        Err(no_multipart(self, key))
    }

    /// Remove what killed runs left half-done under `prefix` that no reader can see
    /// (incomplete multipart uploads, temporary files) once older than `age`; returns how many
    /// were removed.
    fn clean_stale(&self, prefix: &str, age: Duration) -> Result<u64, StoreError>;
}

/// The error of a multipart call to a store without multipart uploads.
fn no_multipart(store: &(impl Store + ?Sized), key: &str) -> StoreError {
    StoreError::new(
        store.name(),
        Some(key),
        "this store has no multipart uploads",
    )
    .recovering(Recovery::Unsupported)
}
