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

use std::io::Read;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
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
pub const BUFFERED: u64 = 40 * 1024 * 1024;
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
        let Body::File { len, .. } = body else {
            return store.put(key, body, attributes);
        };
        if !self.proves(*len) {
            return store.put(key, body, attributes);
        }
        let Some(upload) = store.create_multipart(key, attributes)? else {
            // A store without parts is sent the file whole; it was not verified before, so
            // read it first (the directory store also checks while it copies).
            prove(body, &attributes.sha256)
                .map_err(|reason| StoreError::new(store.name(), Some(key), reason))?;
            return store.put(key, body, attributes);
        };
        let part_size = self.part_size.max(len.div_ceil(MAX_PARTS));
        let result = put_parts(store, key, &upload, body, part_size, attributes);
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
fn put_parts(
    store: &dyn Store,
    key: &str,
    upload: &str,
    body: &Body,
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
        // Buffers come back once sent, to be read into again.
        let (give_back, spent) = channel::<Arc<[u8]>>();
        let handles: Vec<_> = (0..senders)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let give_back = give_back.clone();
                scope.spawn(move || send_parts(store, key, upload, &queue, &give_back))
            })
            .collect();
        // Once every sender has stopped (say, on a failure), the queue is gone and reading
        // stops at the next part.
        drop((queue, give_back));
        let buffers = Buffers {
            spent,
            made: 0,
            most: senders + 1,
        };
        let read = read_parts(body, part_size, &attributes.sha256, buffers, &to_send);
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
        .or_else(|e| completed_earlier(store, key, body.len(), &attributes.sha256, e))
}

/// Take parts off `queue` and upload them until it is empty and closed, or one fails; each
/// part's buffer goes back through `give_back` once sent.
fn send_parts(
    store: &dyn Store,
    key: &str,
    upload: &str,
    queue: &Mutex<Receiver<ReadPart>>,
    give_back: &Sender<Arc<[u8]>>,
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
        if let Body::Bytes(bytes) = body {
            // The reader may be gone (it stopped early); the buffer is then just freed.
            let _ = give_back.send(bytes);
        }
        sent.push(Part {
            number: part.number,
            etag,
            crc32: part.crc32,
        });
    }
}

/// The part buffers of one upload: at most `most` of them, each reused once its part is
/// sent, so a file of any size is read through the same few allocations.
struct Buffers {
    spent: Receiver<Arc<[u8]>>,
    made: u64,
    most: u64,
}

impl Buffers {
    /// A buffer of exactly `len` bytes to read into: a spent one when it has that size and
    /// nothing else holds it, a new one while fewer than `most` were made; otherwise wait for
    /// one to come back. `None` once no sender is left to give one back.
    fn take(&mut self, len: usize) -> Option<Arc<[u8]>> {
        loop {
            let reused = match self.spent.try_recv() {
                Ok(buffer) => Some(buffer),
                Err(_) if self.made < self.most => None,
                Err(_) => Some(self.spent.recv().ok()?),
            };
            match reused {
                Some(buffer) if buffer.len() == len && Arc::strong_count(&buffer) == 1 => {
                    return Some(buffer);
                }
                // Still held by a request not yet dropped, or the wrong size (the last
                // part): let it go and make one in its place.
                Some(_) => self.made -= 1,
                None => {}
            }
            if self.made < self.most {
                self.made += 1;
                return Some(Arc::from(vec![0u8; len]));
            }
        }
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
    body: &Body,
    part_size: u64,
    expected: &Digest,
    mut buffers: Buffers,
    to_send: &SyncSender<ReadPart>,
) -> Result<(), String> {
    let mut file = body.reader().map_err(|e| e.to_string())?;
    let mut whole = Sha256::new();
    let mut total = 0u64;
    for number in 1.. {
        let want = part_size.min(body.len() - total);
        if want == 0 {
            break;
        }
        let number = u16::try_from(number).map_err(|_| "too many parts".to_string())?;
        let Some(mut bytes) = buffers.take(want as usize) else {
            return Ok(());
        };
        let Some(into) = Arc::get_mut(&mut bytes) else {
            return Err("a part buffer is still in use".into());
        };
        let n = fill(&mut file, into).map_err(|e| format!("cannot read {body}: {e}"))?;
        whole.update(&into[..n]);
        total += n as u64;
        if n < into.len() {
            break;
        }
        let part = ReadPart {
            number,
            crc32: crc32fast::hash(&bytes),
            bytes,
        };
        if to_send.send(part).is_err() {
            return Ok(());
        }
    }
    let actual = format!("sha256:{}", hex::encode(whole.finalize()));
    verdict(body, total, &actual, expected)
}

/// Read into all of `buffer` unless the reader ends first; how many bytes were read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Read the file section once and check it has `expected` digest.
fn prove(body: &Body, expected: &Digest) -> Result<(), String> {
    let file = body.reader().map_err(|e| e.to_string())?;
    let (actual, total) =
        crate::digest::hash_reader(file, |_| {}).map_err(|e| format!("cannot read {body}: {e}"))?;
    verdict(body, total, actual.as_str(), expected)
}

/// The section read must be all of `body`, hashing to `expected`.
fn verdict(body: &Body, total: u64, actual: &str, expected: &Digest) -> Result<(), String> {
    let len = body.len();
    if total != len || actual != expected.as_str() {
        return Err(format!(
            "{body} does not have the blob's digest {expected} ({len} bytes) but {actual} \
             ({total} bytes): changed since the layout was written or verified; nothing was \
             stored"
        ));
    }
    Ok(())
}
