//! `check --repair` of blobs: write again, from the config's layouts, a blob that a crawl found
//! missing or holding other bytes than its digest names.
//!
//! A store can lose or damage an object after it was published (a bad disk, an operator's
//! mistake, a bucket restored from an old copy); a re-publish does not notice, since it trusts
//! a content-addressed key of the right size. The crawl of `regpress check` hashes every blob as
//! clients get it, and names the bad ones ([`crate::check::BadBlob`]). This writes each one
//! again when a layout holds a file of that digest, hashed first: nothing is written that is
//! not the bytes its key names. Tag lists and the catalog are repaired by
//! [`crate::lists::repair`].

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::check::BadBlob;
use crate::digest::{Digest, hash_reader};
use crate::site::{self, BLOB_CONTENT_TYPE, CACHE_IMMUTABLE};
use crate::store::upload::Uploads;
use crate::store::{Attributes, Body, Store, StoreError};

/// What became of one bad blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BlobRepair {
    /// Written again from this layout file.
    Rewritten {
        /// The target key.
        key: String,
        /// The layout file its bytes came from.
        from: PathBuf,
    },
    /// No layout holds a file with these bytes: nothing was written.
    NotHeld {
        /// The target key.
        key: String,
    },
}

/// Write each of `bad` again into `store` from the first of `layouts` holding a file that
/// hashes to its digest, with its recorded size: one answer per entry of `bad`, in order.
/// Stops at the first write that fails.
pub fn blobs(
    store: &dyn Store,
    uploads: &Uploads,
    layouts: &[PathBuf],
    bad: &[BadBlob],
) -> Result<Vec<BlobRepair>, StoreError> {
    let mut done = Vec::new();
    for blob in bad {
        let Ok(digest) = Digest::parse(&blob.digest) else {
            let key = format!("v2/{}/blobs/{}", blob.repository, blob.digest);
            done.push(BlobRepair::NotHeld { key });
            continue;
        };
        let key = site::blob_key(&blob.repository, &digest);
        let held = layouts
            .iter()
            .find_map(|layout| holds(layout, &digest, blob.size));
        let Some(from) = held else {
            done.push(BlobRepair::NotHeld { key });
            continue;
        };
        let attributes = Attributes {
            content_type: BLOB_CONTENT_TYPE.to_string(),
            cache_control: CACHE_IMMUTABLE.to_string(),
            sha256: digest,
        };
        uploads.put(
            store,
            &key,
            &Body::file(from.clone(), blob.size),
            &attributes,
        )?;
        done.push(BlobRepair::Rewritten { key, from });
    }
    Ok(done)
}

/// The file of `layout` holding the `size` bytes of `digest`, hashed to be sure.
fn holds(layout: &Path, digest: &Digest, size: u64) -> Option<PathBuf> {
    let (algorithm, hex) = digest.as_str().split_once(':')?;
    let path = layout.join("blobs").join(algorithm).join(hex);
    let file = File::open(&path).ok()?;
    let (actual, len) = hash_reader(file, |_| {}).ok()?;
    (actual == *digest && len == size).then_some(path)
}
