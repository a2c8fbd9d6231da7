//! Writing one object through the [`Store`] trait: in one request, or, for a large file on a
//! store with multipart uploads, in equal parts (R2 requires equal parts), several in flight.
//!
//! A large file is read once. One reader takes it part by part, in order, into memory: each
//! part's CRC-32 (which the store checks) and the whole file's sha256 come from that read, and
//! the part goes up from the same bytes while the next is read. The upload is completed only
//! when the whole file proved to have its verified digest, and aborted otherwise; so the
//! publish's verification ([`crate::publish::hash`]) leaves these files to this read, and
//! a file changed since it was verified never becomes an object. The parts in memory are
//! bounded ([`BUFFERED`]), so a layer of any size costs the same memory. Parts are store
//! operations like any other, so each goes through the layers (retried on its own, counted,
//! holding a permit only while it is sent).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use super::{Attributes, Body, Part, Store, StoreError};
use crate::digest::Digest;

/// Default size from which files are uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Default part size (all parts but the last are this size, as R2 requires): the AWS CLI's.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Smallest part S3 and R2 accept (but for the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Most parts S3 accepts in one multipart upload.
const MAX_PARTS: u64 = 10_000;
/// Most bytes of one file held in memory at once: the parts in flight and the one being read.
pub const BUFFERED: u64 = 48 * 1024 * 1024;
/// Most parts of one file in flight at once (the in-flight limit of the target holds too).
const MOST_IN_FLIGHT: u64 = 8;

/// When and how to upload in parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploads {
    /// Files at least this large go up in parts.
    pub multipart_threshold: u64,
    /// Size of each part but the last.
    pub part_size: u64,
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

impl Uploads {
    /// Check the part size, and raise the threshold to at least one part.
    pub fn new(multipart_threshold: u64, part_size: u64) -> Result<Uploads, String> {
        if part_size < MIN_PART_SIZE {
            return Err("part size must be at least 5 MiB (S3 and R2 refuse smaller parts)".into());
        }
        Ok(Uploads {
            multipart_threshold: multipart_threshold.max(part_size),
            part_size,
        })
    }

    /// Whether a file of `len` bytes is proven against its digest by its own upload (read
    /// once, in parts), so verification need not read it first.
    pub fn proves(&self, len: u64) -> bool {
        len >= self.multipart_threshold
    }

    /// Write `body` at `key`. A file this proves ([`Uploads::proves`]) is checked against
    /// `attributes.sha256` here, whatever the store.
    pub fn put(
        &self,
        store: &dyn Store,
        key: &str,
        body: &Body,
        attributes: &Attributes,
    ) -> Result<(), StoreError> {
        let Body::File { path, offset, len } = body else {
            return store.put(key, body, attributes);
        };
        if !self.proves(*len) {
            return store.put(key, body, attributes);
        }
        let Some(upload) = store.create_multipart(key, attributes)? else {
            // A store without parts is sent the file whole; it was not verified before, so
            // read it first (the directory store also checks while it copies).
            prove(path, *offset, *len, &attributes.sha256)
                .map_err(|reason| StoreError::new(store.name(), Some(key), reason))?;
            return store.put(key, body, attributes);
        };
        let part_size = self.part_size.max(len.div_ceil(MAX_PARTS));
        let result = put_parts(
            store, key, &upload, path, *offset, *len, part_size, attributes,
        );
        if result.is_err() {
            // Best effort: `clean_stale` removes what an abort that failed leaves.
            let _ = store.abort_multipart(key, &upload);
        }
        result
    }
}

/// A part read and ready to send.
struct ReadPart {
    number: u16,
    bytes: Arc<[u8]>,
    crc32: u32,
}

/// Read the file section in parts, in order, on this thread, and send them on as many
/// threads as [`BUFFERED`] allows; complete the upload once every part is in and the whole
/// proved to be `attributes.sha256`.
#[allow(clippy::too_many_arguments)]
fn put_parts(
    store: &dyn Store,
    key: &str,
    upload: &str,
    path: &Path,
    offset: u64,
    len: u64,
    part_size: u64,
    attributes: &Attributes,
) -> Result<(), StoreError> {
    let failed = |reason: String| StoreError::new(store.name(), Some(key), reason);
    let senders = (BUFFERED / part_size)
        .saturating_sub(1)
        .clamp(1, MOST_IN_FLIGHT);
    let (parts, read) = std::thread::scope(|scope| {
        // A rendezvous channel: a part is read ahead only when a sender is free to take it.
        let (to_send, queue) = sync_channel::<ReadPart>(0);
        let queue = Arc::new(Mutex::new(queue));
        let handles: Vec<_> = (0..senders)
            .map(|_| {
                let queue = Arc::clone(&queue);
                scope.spawn(move || send_parts(store, key, upload, &queue))
            })
            .collect();
        // Once every sender has stopped (say, on a failure), the queue is gone and reading
        // stops at the next part.
        drop(queue);
        let read = read_parts(path, offset, len, part_size, &attributes.sha256, &to_send);
        drop(to_send);
        let mut parts = Vec::new();
        let mut failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(sent)) => parts.extend(sent),
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        (failure.map_or(Ok(parts), Err), read)
    });
    // The file's own verdict first: a part refused because the file changed says less.
    read.map_err(failed)?;
    let mut parts = parts?;
    parts.sort_by_key(|p| p.number);
    store
        .complete_multipart(key, upload, &parts)
        .or_else(|e| completed_earlier(store, key, len, &attributes.sha256, e))
}

/// Take parts off `queue` and upload them until it is empty and closed, or one fails.
fn send_parts(
    store: &dyn Store,
    key: &str,
    upload: &str,
    queue: &Mutex<Receiver<ReadPart>>,
) -> Result<Vec<Part>, StoreError> {
    let mut sent = Vec::new();
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return Ok(sent),
        };
        let Ok(part) = next else {
            return Ok(sent);
        };
        let body = Body::Bytes(part.bytes);
        let etag = store.put_part(key, upload, part.number, &body, part.crc32)?;
        sent.push(Part {
            number: part.number,
            etag,
            crc32: part.crc32,
        });
    }
}

/// A completion retried after the store completed the first attempt but its answer was lost
/// finds the upload gone (`NoSuchUpload`): done, if the object is now there, of the right size
/// and (where the store says) digest; `error` otherwise.
fn completed_earlier(
    store: &dyn Store,
    key: &str,
    len: u64,
    digest: &Digest,
    error: StoreError,
) -> Result<(), StoreError> {
    if !error.reason.contains("NoSuchUpload") {
        return Err(error);
    }
    match store.head(key)? {
        Some(info) if info.size == len && info.sha256.as_ref().is_none_or(|d| d == digest) => {
            Ok(())
        }
        _ => Err(error),
    }
}

/// Read the file section once, in parts of `part_size`, handing each to `to_send` with its
/// CRC-32; the whole section must hash to `expected` (so a layout changed after verification
/// is never completed). Stops early, without a verdict, once nobody takes the parts.
fn read_parts(
    path: &Path,
    offset: u64,
    len: u64,
    part_size: u64,
    expected: &Digest,
    to_send: &SyncSender<ReadPart>,
) -> Result<(), String> {
    let mut file = section_reader(path, offset, len)?;
    let mut whole = Sha256::new();
    let mut total = 0u64;
    for number in 1.. {
        let want = part_size.min(len - total);
        if want == 0 {
            break;
        }
        let number = u16::try_from(number).map_err(|_| "too many parts".to_string())?;
        let mut bytes = Vec::with_capacity(want as usize);
        let n = (&mut file)
            .take(want)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        whole.update(&bytes);
        total += n as u64;
        if (n as u64) < want {
            break;
        }
        let part = ReadPart {
            number,
            crc32: crc32fast::hash(&bytes),
            bytes: Arc::from(bytes),
        };
        if to_send.send(part).is_err() {
            return Ok(());
        }
    }
    let actual = format!("sha256:{}", hex::encode(whole.finalize()));
    verdict(path, len, total, &actual, expected)
}

/// Read the file section once and check it has `expected` digest.
fn prove(path: &Path, offset: u64, len: u64, expected: &Digest) -> Result<(), String> {
    let file = section_reader(path, offset, len)?;
    let (actual, total) = crate::digest::hash_reader(file, |_| {})
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    verdict(path, len, total, actual.as_str(), expected)
}

/// The `len` bytes of `path` from `offset`.
fn section_reader(path: &Path, offset: u64, len: u64) -> Result<impl Read, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
    Ok(file.take(len))
}

/// The section read must be `len` bytes hashing to `expected`.
fn verdict(
    path: &Path,
    len: u64,
    total: u64,
    actual: &str,
    expected: &Digest,
) -> Result<(), String> {
    if total != len || actual != expected.as_str() {
        return Err(format!(
            "{} does not have the blob's digest {expected} ({len} bytes) but {actual} ({total} \
             bytes): changed since the layout was written or verified; nothing was stored",
            path.display()
        ));
    }
    Ok(())
}
