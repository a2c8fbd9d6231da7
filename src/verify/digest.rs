//! Parallel, streamed checking of blob sizes and sha256 digests.
//!
//! Layers can be gigabytes; they are hashed in chunks straight from disk on all cores (rayon),
//! and a blob is never held in memory whole.

use std::fs::File;

use rayon::prelude::*;

use super::Blob;
use crate::digest::hash_reader;
use crate::error::Problem;
use crate::progress::{self, Progress};

/// Check every blob; return the ones that failed, each with its reason.
pub fn check_blobs<'a>(blobs: &[&'a Blob], mode: progress::Mode) -> Vec<(&'a Blob, Problem)> {
    let total: u64 = blobs.iter().map(|b| b.size).sum();
    let progress = Progress::start(mode, "verify", blobs.len() as u64, total);
    let failures: Vec<(&Blob, Problem)> = blobs
        .par_iter()
        .filter_map(|blob| {
            let result = check_blob(blob, &progress);
            progress.add_item();
            result.err().map(|p| (*blob, p))
        })
        .collect();
    progress.finish();
    failures
}

fn check_blob(blob: &Blob, progress: &Progress) -> Result<(), Problem> {
    let file = File::open(&blob.path).map_err(|e| {
        Problem::at(
            &blob.digest,
            format!("cannot open {}: {e}", blob.path.display()),
        )
    })?;
    let on_disk = file
        .metadata()
        .map_err(|e| Problem::at(&blob.digest, format!("cannot stat blob: {e}")))?
        .len();
    if on_disk != blob.size {
        return Err(Problem::at(
            &blob.digest,
            format!(
                "size mismatch: descriptor says {} bytes, blob has {on_disk}",
                blob.size
            ),
        ));
    }
    let (actual, read) = hash_reader(file, |n| progress.add_bytes(n))
        .map_err(|e| Problem::at(&blob.digest, format!("cannot read blob: {e}")))?;
    if read != blob.size {
        return Err(Problem::at(
            &blob.digest,
            format!(
                "blob changed while reading: {read} bytes read, expected {}",
                blob.size
            ),
        ));
    }
    if actual != blob.digest {
        return Err(Problem::at(
            &blob.digest,
            format!("digest mismatch: content hashes to {actual}"),
        ));
    }
    Ok(())
}
