//! `regpress gc`: delete what no tag reaches any more, once it is older than a grace period.
//!
//! Publishing only adds and `publish --prune` only removes tags, so blobs, manifests and
//! referrers of images no longer tagged stay until collected here. Reachability is computed
//! from the bucket itself, never from local state: every tag's manifest, its children and
//! blobs, and for every reachable manifest its referrers index (OCI 1.1:
//! `v2/<repo>/referrers/<digest>`) and everything that index lists, recursively. Only
//! content-addressed keys (`blobs/`, `manifests/sha256:…`, `referrers/`) are ever candidates;
//! tags, tag lists, the catalog and unknown keys are never touched. An unreachable object is
//! kept while younger than the grace period (a client may be mid-pull of an image whose tag
//! just moved, a publish may be uploading it). Deletions go out in batches (DeleteObjects),
//! referrers indexes first, then manifests, then blobs, so a killed collection never leaves a
//! remaining manifest without its blobs. A document that cannot be read or understood stops
//! the collection before anything is deleted: what it references is unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Error;
use crate::layout::MAX_DOCUMENT_SIZE;
use crate::site::{self, Content};
use crate::store::layer::PROBE_PREFIX;
use crate::store::{ObjectInfo, Store, StoreError};
use crate::sync;
use crate::target::{self, TargetSpec};

/// How to collect.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where.
    pub target: TargetSpec,
    /// Unreachable objects younger than this are kept.
    pub grace: Duration,
    /// Report what would be deleted; delete nothing.
    pub dry_run: bool,
    /// Requests in flight at once.
    pub jobs: usize,
}

/// What a collection found and did (`--report FILE`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The target.
    pub target: String,
    /// True when nothing was deleted on purpose.
    pub dry_run: bool,
    /// Grace period in seconds.
    pub grace_seconds: u64,
    /// Keys under `v2/` listed.
    pub objects_listed: u64,
    /// Tags the reachability walk started from.
    pub tags: u64,
    /// Manifests, indexes and referrers indexes read.
    pub documents_read: u64,
    /// Content-addressed objects reachable from a tag.
    pub reachable: u64,
    /// Content-addressed objects no tag reaches.
    pub unreachable: u64,
    /// Their bytes.
    pub unreachable_bytes: u64,
    /// Unreachable objects younger than the grace period, kept.
    pub kept_in_grace: u64,
    /// Unreachable objects old enough to delete (deleted unless a dry run), in deletion order.
    pub garbage: Vec<String>,
    /// Their bytes.
    pub garbage_bytes: u64,
    /// Objects deleted (0 on a dry run).
    pub deleted: u64,
    /// Keys a reachable document refers to that the target does not hold.
    pub missing: Vec<String>,
    /// Requests sent to the target.
    pub requests: u64,
}

/// The references of one manifest, index or referrers index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Manifests and indexes it lists (`manifests`).
    pub manifests: Vec<Digest>,
    /// Config, layers and artifact blobs.
    pub blobs: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentRefs {
    schema_version: Option<serde_json::Value>,
    #[serde(default)]
    manifests: Vec<Reference>,
    config: Option<Reference>,
    #[serde(default)]
    layers: Vec<Reference>,
    #[serde(default)]
    blobs: Vec<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    digest: String,
}

/// Why a stored document's references are unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferencesError {
    /// Larger than any manifest a registry accepts.
    #[error("{size} bytes, over the {MAX_DOCUMENT_SIZE}-byte manifest limit")]
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// Not JSON of the shape of a manifest or index.
    #[error("not a manifest or index: {reason}")]
    NotADocument {
        /// What the JSON parser said.
        reason: String,
    },
    /// Not schema version 2 (a Docker v2 schema 1 manifest, say).
    #[error("schemaVersion is not 2: not a document regpress can collect around")]
    SchemaVersion,
    /// A reference that is not a digest regpress understands.
    #[error("{reason}")]
    BadDigest {
        /// Why the digest was refused.
        reason: String,
    },
}

/// What a stored document refers to. Refuses anything that is not a schema 2 manifest or
/// index, since collecting around a document whose references are unknown could delete
/// content it needs.
pub fn references(bytes: &[u8]) -> Result<References, ReferencesError> {
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return Err(ReferencesError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let doc: DocumentRefs =
        serde_json::from_slice(bytes).map_err(|e| ReferencesError::NotADocument {
            reason: e.to_string(),
        })?;
    if doc.schema_version != Some(serde_json::Value::from(2)) {
        return Err(ReferencesError::SchemaVersion);
    }
    let parse = |r: &Reference| {
        Digest::parse(&r.digest).map_err(|e| ReferencesError::BadDigest {
            reason: e.to_string(),
        })
    };
    Ok(References {
        manifests: doc.manifests.iter().map(parse).collect::<Result<_, _>>()?,
        blobs: doc
            .config
            .iter()
            .chain(&doc.layers)
            .chain(&doc.blobs)
            .map(parse)
            .collect::<Result<_, _>>()?,
    })
}

/// Collect the garbage of `options.target`.
pub fn gc(options: &Options) -> Result<Report, Error> {
    let target = target::open(&options.target, options.jobs)?;
    let store = target.store;
    let pool = sync::worker_pool(options.jobs)?;
    let started = jiff::Timestamp::now();
    let listing = store.list("v2/")?;
    let mut report = Report {
        target: store.name().to_string(),
        dry_run: options.dry_run,
        grace_seconds: options.grace.as_secs(),
        objects_listed: listing.len() as u64,
        ..Report::default()
    };
    let walk = Walk::run(store.as_ref(), &listing, &pool)?;
    report.tags = walk.tags;
    report.documents_read = walk.read;
    report.missing = walk.missing.into_iter().collect();

    let cutoff = started
        .checked_sub(
            jiff::SignedDuration::try_from(options.grace).unwrap_or(jiff::SignedDuration::MAX),
        )
        .unwrap_or(jiff::Timestamp::MIN);
    let old_enough = |info: &ObjectInfo| info.modified.is_some_and(|m| m <= cutoff);
    // Referrers indexes first, then manifests, then blobs; last, probe objects a killed
    // publish left outside `v2/` (see `store::layer::Probed`).
    let mut phases: BTreeMap<u8, Vec<&ObjectInfo>> = BTreeMap::new();
    for info in &listing {
        let Some((_, kind, _)) = site::parse_content_key(&info.key) else {
            continue;
        };
        if walk.reachable.contains(&info.key) {
            report.reachable += 1;
            continue;
        }
        report.unreachable += 1;
        report.unreachable_bytes += info.size;
        if !old_enough(info) {
            report.kept_in_grace += 1;
            continue;
        }
        let order = match kind {
            Content::Referrers => 0,
            Content::Manifest => 1,
            Content::Blob => 2,
        };
        phases.entry(order).or_default().push(info);
    }
    let probes = store.list(PROBE_PREFIX)?;
    phases
        .entry(3)
        .or_default()
        .extend(probes.iter().filter(|i| old_enough(i)));
    for phase in phases.values() {
        report.garbage_bytes += phase.iter().map(|i| i.size).sum::<u64>();
        report.garbage.extend(phase.iter().map(|i| i.key.clone()));
    }
    if !options.dry_run {
        // A failure stops before the next phase.
        for phase in phases.values() {
            let keys: Vec<String> = phase.iter().map(|i| i.key.clone()).collect();
            let (deleted, failures) = sync::delete_in_batches(store.as_ref(), &keys, &pool);
            report.deleted += deleted;
            if let Some(first) = sync::first_failure(failures) {
                return Err(Error::Target(first));
            }
        }
    }
    report.requests = target.requests.get();
    Ok(report)
}

/// The reachability walk over a listing.
struct Walk {
    reachable: BTreeSet<String>,
    missing: BTreeSet<String>,
    tags: u64,
    read: u64,
}

/// What a document to read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// `manifests/<tag>`: its digest is the hash of its bytes.
    Tag,
    /// `manifests/<digest>`.
    Manifest,
    /// `referrers/<digest>`: an index of the manifests that refer to that one.
    Referrers,
}

/// A document to read.
struct ToRead {
    key: String,
    repo: String,
    source: Source,
}

impl Walk {
    fn run(
        store: &dyn Store,
        listing: &[ObjectInfo],
        pool: &rayon::ThreadPool,
    ) -> Result<Walk, Error> {
        let present: HashMap<&str, &ObjectInfo> =
            listing.iter().map(|i| (i.key.as_str(), i)).collect();
        let mut walk = Walk {
            reachable: BTreeSet::new(),
            missing: BTreeSet::new(),
            tags: 0,
            read: 0,
        };
        let mut next: Vec<ToRead> = listing
            .iter()
            .filter_map(|i| {
                site::parse_tag_key(&i.key).map(|(repo, _)| ToRead {
                    key: i.key.clone(),
                    repo: repo.to_string(),
                    source: Source::Tag,
                })
            })
            .collect();
        walk.tags = next.len() as u64;
        // Level by level: each level's documents are read in parallel.
        while !next.is_empty() {
            let level: Vec<Result<Option<ReadDocument>, Error>> = pool.install(|| {
                next.into_par_iter()
                    .map(|doc| read_document(store, doc))
                    .collect()
            });
            next = Vec::new();
            for result in level {
                let Some((doc, digest, refs)) = result? else {
                    continue;
                };
                walk.read += 1;
                walk.visit(&present, &doc, &digest, refs, &mut next);
            }
        }
        Ok(walk)
    }

    /// Mark what `doc` (with digest `digest`) references; queue the documents to read next.
    fn visit(
        &mut self,
        present: &HashMap<&str, &ObjectInfo>,
        doc: &ToRead,
        digest: &Digest,
        refs: References,
        next: &mut Vec<ToRead>,
    ) {
        let repo = doc.repo.as_str();
        let mark = |walk: &mut Walk, key: String| -> bool {
            if !present.contains_key(key.as_str()) {
                walk.missing.insert(key);
                false
            } else {
                walk.reachable.insert(key)
            }
        };
        if doc.source == Source::Tag {
            // The same bytes by digest: reachable, and already being walked here.
            mark(self, site::manifest_key(repo, digest));
        }
        for child in &refs.manifests {
            let key = site::manifest_key(repo, child);
            if mark(self, key.clone()) {
                next.push(ToRead {
                    key,
                    repo: repo.to_string(),
                    source: Source::Manifest,
                });
            }
        }
        for blob in &refs.blobs {
            mark(self, site::blob_key(repo, blob));
        }
        // Signatures, SBOMs and attestations of this manifest, if any were published.
        if doc.source != Source::Referrers {
            let key = site::referrers_key(repo, digest);
            if present.contains_key(key.as_str()) && self.reachable.insert(key.clone()) {
                next.push(ToRead {
                    key,
                    repo: repo.to_string(),
                    source: Source::Referrers,
                });
            }
        }
    }
}

/// A document read: what it was, its digest and its references.
type ReadDocument = (ToRead, Digest, References);

/// Read and parse one document. `None` when it vanished since the listing (a concurrent
/// prune removed a tag).
fn read_document(store: &dyn Store, doc: ToRead) -> Result<Option<ReadDocument>, Error> {
    let Some(fetched) = store.get(&doc.key)? else {
        return Ok(None);
    };
    // A manifest is known by its key's digest (what referrers name), a tag by its bytes'.
    let digest = match site::parse_content_key(&doc.key) {
        Some((_, Content::Manifest, digest)) => digest,
        _ => Digest::of_bytes(&fetched.bytes),
    };
    let refs = references(&fetched.bytes).map_err(|reason| {
        Error::Target(StoreError::new(
            store.name(),
            Some(&doc.key),
            format!("{reason}; nothing was deleted"),
        ))
    })?;
    Ok(Some((doc, digest, refs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_manifests_indexes_and_artifacts() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":1,"mediaType":"x"}}]}}"#,
            d('a')
        );
        let refs = references(index.as_bytes()).unwrap();
        assert_eq!(refs.manifests, [Digest::parse(&d('a')).unwrap()]);
        assert!(refs.blobs.is_empty());
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}"}},"layers":[{{"digest":"{}"}}],"subject":{{"digest":"{}"}}}}"#,
            d('b'),
            d('c'),
            d('e')
        );
        let refs = references(manifest.as_bytes()).unwrap();
        assert_eq!(refs.blobs.len(), 2, "the subject is not a reference");
        let refused = |bad: &str| references(bad.as_bytes()).unwrap_err();
        for bad in ["not json", r#"{"schemaVersion":2,"layers":"x"}"#] {
            assert!(
                matches!(refused(bad), ReferencesError::NotADocument { .. }),
                "{bad}"
            );
        }
        for bad in [
            r#"{"schemaVersion":1,"fsLayers":[]}"#,
            r#"{"manifests":[]}"#,
        ] {
            assert_eq!(refused(bad), ReferencesError::SchemaVersion, "{bad}");
        }
        let bad = r#"{"schemaVersion":2,"layers":[{"digest":"md5:00"}]}"#;
        assert!(matches!(refused(bad), ReferencesError::BadDigest { .. }));
        let big = vec![b' '; MAX_DOCUMENT_SIZE as usize + 1];
        assert_eq!(
            references(&big).unwrap_err(),
            ReferencesError::TooLarge {
                size: MAX_DOCUMENT_SIZE + 1
            }
        );
    }
}
