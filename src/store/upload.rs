//! Writing one object through the [`Store`] trait: in one request, or, for a large file on a
//! store with multipart uploads, in equal parts (R2 requires equal parts), in parallel.
//!
//! Parts are store operations like any other, so each goes through the layers (retried on its
//! own, counted, holding a permit only while it is sent). Before the first part, one pass over
//! the file computes every part's sha256 and proves the whole still has the verified digest;
//! a failure after the upload was created aborts it.

use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::{Attributes, Body, Part, Store, StoreError};
use crate::digest::Digest;

/// Default size from which files are uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Default part size (all parts but the last are this size, as R2 requires).
pub const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;
/// Smallest part S3 and R2 accept (but for the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Most parts S3 accepts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

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

    /// Write `body` at `key`.
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
        if *len < self.multipart_threshold {
            return store.put(key, body, attributes);
        }
        let Some(upload) = store.create_multipart(key, attributes)? else {
            return store.put(key, body, attributes);
        };
        let part_size = self.part_size.max(len.div_ceil(MAX_PARTS));
        let result = self.put_parts(
            store, key, &upload, path, *offset, *len, part_size, attributes,
        );
        if result.is_err() {
            // Best effort: `clean_stale` removes what an abort that failed leaves.
            let _ = store.abort_multipart(key, &upload);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn put_parts(
        &self,
        store: &dyn Store,
        key: &str,
        upload: &str,
        path: &Path,
        offset: u64,
        len: u64,
        part_size: u64,
        attributes: &Attributes,
    ) -> Result<(), StoreError> {
        let checksums = part_checksums(path, offset, len, part_size, &attributes.sha256)
            .map_err(|reason| StoreError::new(store.name(), Some(key), reason))?;
        let parts = checksums
            .par_iter()
            .enumerate()
            .map(|(i, sha256)| {
                let number = u16::try_from(i + 1)
                    .map_err(|_| StoreError::new(store.name(), Some(key), "too many parts"))?;
                let start = i as u64 * part_size;
                let body = Body::File {
                    path: path.to_path_buf(),
                    offset: offset + start,
                    len: part_size.min(len - start),
                };
                let etag = store.put_part(key, upload, number, &body, sha256)?;
                Ok(Part {
                    number,
                    etag,
                    sha256: *sha256,
                })
            })
            .collect::<Result<Vec<Part>, StoreError>>()?;
        store
            .complete_multipart(key, upload, &parts)
            .or_else(|e| completed_earlier(store, key, len, &attributes.sha256, e))
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

/// Read the file section once: each part's sha256, and the whole section's digest, which must
/// still be the verified one (so a layout changed after verification is never uploaded).
fn part_checksums(
    path: &Path,
    offset: u64,
    len: u64,
    part_size: u64,
    expected: &Digest,
) -> Result<Vec<[u8; 32]>, String> {
    let section = Body::File {
        path: path.to_path_buf(),
        offset,
        len,
    };
    let mut file = section
        .reader()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut whole = Sha256::new();
    let mut part = Sha256::new();
    let mut in_part = 0u64;
    let mut total = 0u64;
    let mut checksums = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let want = (part_size - in_part).min(buf.len() as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        part.update(&buf[..n]);
        whole.update(&buf[..n]);
        in_part += n as u64;
        total += n as u64;
        if in_part == part_size {
            checksums.push(std::mem::take(&mut part).finalize().into());
            in_part = 0;
        }
    }
    if in_part > 0 {
        checksums.push(part.finalize().into());
    }
    let actual = format!("sha256:{}", hex::encode(whole.finalize()));
    if total != len || actual != expected.as_str() {
        return Err(format!(
            "source changed since verification: expected {expected} ({len} bytes), now {actual} ({total} bytes)"
        ));
    }
    Ok(checksums)
}
