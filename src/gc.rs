//! `regpress gc`: delete what no tag reaches any more, once it is older than a grace period.
//!
//! Publishing only adds and `publish --prune` only removes tags, so blobs, manifests and
//! referrers of images no longer tagged stay until collected here. Reachability is computed
//! from the bucket itself, never from local state: every tag's manifest, its children and
//! blobs, and for every reachable manifest its referrers index (OCI 1.1:
//! `v2/<repo>/referrers/<digest>`) and everything that index lists, recursively (one GET per
//! document; an index the listing shows to hold the empty list, as every manifest without
//! referrers has, is not read). Only
//! content-addressed keys (`blobs/`, `manifests/sha256:…`, `referrers/`) are ever candidates;
//! tags, tag lists, the catalog and unknown keys are never touched.
//!
//! Collection is mark and sweep, so that it never races a publish into a dangling tag. A
//! publish that finds an object in the bucket reuses it; had a collection deleted it between
//! that publish's listing and its tag, the tag would name missing content. So a collection
//! deletes nothing it sees unreachable for the first time: it marks it (an empty object under
//! `v2/<repo>/_marked/`, see [`site::MARKS`], timed by the store's clock), and a later
//! collection deletes it only when the mark is older than the grace period, the object is
//! still unreachable, and it was not written again since (asked of the store once more just before the delete). A publish
//! treats a marked object as absent and writes it anew; one that found it unmarked has had the
//! whole grace period to tag it. So with a grace period longer than any publish takes, a tag
//! never dangles. An unreachable object younger than the grace period is not even marked (a
//! client may be mid-pull of an image whose tag just moved, a publish may be uploading it).
//! `--grace 0s` means no protection: everything unreachable goes at once, as when no publish
//! can be running. Deletions go out in batches (DeleteObjects),
//! referrers indexes first, then manifests, then blobs, so a killed collection never leaves a
//! remaining manifest without its blobs. A document that cannot be read or understood stops
//! the collection before anything is deleted: what it references is unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest as _, Md5};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Error;
use crate::layout::MAX_DOCUMENT_SIZE;
use crate::site::{self, Content};
use crate::store::layer::PROBE_PREFIX;
use crate::store::{Attributes, Body, ObjectInfo, Store, StoreError};
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
    /// Unreachable objects kept: younger than the grace period, or not marked as unreachable
    /// for longer than it (see [`site::MARKS`]), or written again since.
    pub kept_in_grace: u64,
    /// Unreachable objects older than the grace period marked by this run: the first run at
    /// least a grace period later deletes them if they are still unreachable.
    pub marked: u64,
    /// Marks removed: of what was deleted, and of what is reachable or written again.
    pub marks_cleared: u64,
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
    // Taken before anything is read: a publish that saw an object unmarked finished its tags
    // before this moment minus the grace, so the walk below sees them.
    let started = jiff::Timestamp::now();
    let (marks, listing): (Vec<Listed>, Vec<Listed>) = list(store.as_ref(), "v2/")?
        .into_iter()
        .partition(|i| site::parse_mark_key(&i.key).is_some());
    let marks: HashMap<String, Listed> = marks
        .into_iter()
        .filter_map(|m| Some((site::parse_mark_key(&m.key)?, m)))
        .collect();
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

    let verdicts = Verdicts::of(&listing, &walk.reachable, &marks, started, options.grace);
    report.reachable = verdicts.reachable;
    report.unreachable = verdicts.unreachable;
    report.unreachable_bytes = verdicts.unreachable_bytes;
    report.marked = verdicts.to_mark.len() as u64;
    let sweep = if options.dry_run {
        verdicts.sweep
    } else {
        still_as_marked(store.as_ref(), verdicts.sweep, &pool)?
    };
    report.kept_in_grace = report.unreachable - sweep.len() as u64;
    // Referrers indexes first, then manifests, then blobs, then the marks of what went and of
    // what is reachable again; last, probe objects a killed publish left outside `v2/` (see
    // `store::layer::Probed`).
    let mut phases: BTreeMap<u8, Vec<&Listed>> = BTreeMap::new();
    for info in &sweep {
        let order = match site::parse_content_key(&info.key) {
            Some((_, Content::Referrers, _)) => 0,
            Some((_, Content::Manifest, _)) => 1,
            _ => 2,
        };
        phases.entry(order).or_default().push(info);
    }
    let cutoff = cutoff(started, options.grace);
    let probes = list(store.as_ref(), PROBE_PREFIX)?;
    phases.entry(4).or_default().extend(
        probes
            .iter()
            .filter(|i| i.modified.is_some_and(|m| m <= cutoff)),
    );
    for phase in phases.values() {
        report.garbage_bytes += phase.iter().map(|i| i.size).sum::<u64>();
        report.garbage.extend(phase.iter().map(|i| i.key.clone()));
    }
    let spent: Vec<&Listed> = sweep
        .iter()
        .filter_map(|i| marks.get(&i.key))
        .chain(verdicts.stale_marks.iter().filter_map(|k| marks.get(*k)))
        .collect();
    report.marks_cleared = spent.len() as u64;
    phases.insert(3, spent);
    if !options.dry_run {
        // A failure stops before the next phase.
        for (order, phase) in &phases {
            let keys: Vec<String> = phase.iter().map(|i| i.key.clone()).collect();
            let (deleted, failures) = sync::delete_in_batches(store.as_ref(), &keys, &pool);
            if *order != 3 {
                report.deleted += deleted;
            }
            if let Some(first) = sync::first_failure(failures) {
                return Err(Error::Target(first));
            }
        }
        mark(store.as_ref(), &verdicts.to_mark, &pool)?;
    }
    report.requests = target.requests.get();
    Ok(report)
}

/// `started` less the grace period.
fn cutoff(started: jiff::Timestamp, grace: Duration) -> jiff::Timestamp {
    let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
    started.checked_sub(grace).unwrap_or(jiff::Timestamp::MIN)
}

/// What a collection decides for each content-addressed object of a listing.
struct Verdicts<'a> {
    reachable: u64,
    unreachable: u64,
    unreachable_bytes: u64,
    /// Unreachable, marked longer ago than the grace period and not written since: deleted.
    sweep: Vec<Listed>,
    /// Unreachable and older than the grace period, unmarked (or written since marked):
    /// marked now.
    to_mark: Vec<&'a str>,
    /// Marks on what is reachable or written again, or on keys that are gone.
    stale_marks: Vec<&'a str>,
}

impl<'a> Verdicts<'a> {
    /// With no grace period, everything unreachable goes at once (no mark needed). Otherwise
    /// an object goes only once a mark made by an earlier collection, when it was already
    /// unreachable, is older than the grace period: so a publish that found it unmarked has
    /// had the whole grace period to tag it, and a publish that found it marked wrote it anew.
    fn of(
        listing: &'a [Listed],
        reachable: &[bool],
        marks: &'a HashMap<String, Listed>,
        started: jiff::Timestamp,
        grace: Duration,
    ) -> Verdicts<'a> {
        let cutoff = cutoff(started, grace);
        let old = |t: Option<jiff::Timestamp>| t.is_some_and(|t| t <= cutoff);
        let mut verdicts = Verdicts {
            reachable: 0,
            unreachable: 0,
            unreachable_bytes: 0,
            sweep: Vec::new(),
            to_mark: Vec::new(),
            stale_marks: Vec::new(),
        };
        let mut live_marks = BTreeSet::new();
        for (info, &reachable) in listing.iter().zip(reachable) {
            if site::parse_content_key(&info.key).is_none() {
                continue;
            }
            if reachable {
                verdicts.reachable += 1;
                continue;
            }
            verdicts.unreachable += 1;
            verdicts.unreachable_bytes += info.size;
            let mark = marks
                .get(&info.key)
                .filter(|m| m.modified.is_some() && info.modified <= m.modified);
            if mark.is_some() {
                live_marks.insert(info.key.as_str());
            }
            match mark {
                _ if grace.is_zero() => verdicts.sweep.push(info.clone()),
                Some(mark) if old(mark.modified) => verdicts.sweep.push(info.clone()),
                Some(_) => {}
                None if old(info.modified) => verdicts.to_mark.push(&info.key),
                None => {}
            }
        }
        let remarked: BTreeSet<&str> = verdicts.to_mark.iter().copied().collect();
        verdicts.stale_marks = marks
            .keys()
            .map(String::as_str)
            .filter(|k| !live_marks.contains(k) && !remarked.contains(k))
            .collect();
        verdicts
    }
}

/// The objects of `sweep` that are still as the listing found them (which was before their
/// marks), asked again of the store just before they are deleted: one a publish wrote anew
/// since stays.
fn still_as_marked(
    store: &dyn Store,
    sweep: Vec<Listed>,
    pool: &rayon::ThreadPool,
) -> Result<Vec<Listed>, Error> {
    let checked: Vec<Option<Listed>> = pool.install(|| {
        sweep
            .into_par_iter()
            .map(|listed| {
                let Some(now) = store.head(&listed.key)? else {
                    return Ok(None);
                };
                // HEAD gives whole seconds (an HTTP date), a listing milliseconds.
                let second = |t: Option<jiff::Timestamp>| t.map(|t| t.as_second());
                let unchanged =
                    now.size == listed.size && second(now.modified) <= second(listed.modified);
                Ok(unchanged.then_some(listed))
            })
            .collect::<Result<_, StoreError>>()
    })?;
    Ok(checked.into_iter().flatten().collect())
}

/// Write an empty mark on each of `keys`.
fn mark(store: &dyn Store, keys: &[&str], pool: &rayon::ThreadPool) -> Result<(), Error> {
    let attributes = Attributes {
        content_type: "application/octet-stream".to_string(),
        cache_control: "no-store".to_string(),
        sha256: Digest::of_bytes(b""),
    };
    let empty = Body::Bytes(Arc::from(&b""[..]));
    pool.install(|| {
        keys.par_iter()
            .filter_map(|key| site::mark_key(key))
            .try_for_each(|mark| store.put(&mark, &empty, &attributes))
    })?;
    Ok(())
}

/// The reachability walk over a listing.
struct Walk {
    /// Whether each object of the listing (by its place there) is reachable.
    reachable: Vec<bool>,
    missing: BTreeSet<String>,
    tags: u64,
    read: u64,
}

/// One object of a listing, as much of it as a collection needs. The listing of a whole
/// catalog is held until the sweep (half a million keys at 2,000 repositories of 50 tags), so
/// the rest of what the store says of each object (ETag, checksum, headers) is dropped as each
/// page comes in.
#[derive(Clone, Debug)]
struct Listed {
    key: String,
    size: u64,
    modified: Option<jiff::Timestamp>,
    /// Whether it holds the referrers index of a manifest nothing refers to (not read).
    holds_no_referrers: bool,
}

/// Every object under `prefix`, as much of each as a collection needs.
fn list(store: &dyn Store, prefix: &str) -> Result<Vec<Listed>, StoreError> {
    let empty = EmptyReferrers::new();
    let mut out = Vec::new();
    store.list_each(prefix, &mut |info| {
        out.push(Listed {
            holds_no_referrers: empty.held_by(&info),
            key: info.key,
            size: info.size,
            modified: info.modified,
        })
    })?;
    Ok(out)
}

/// The referrers index publish writes for a manifest nothing refers to, as a listing shows it.
struct EmptyReferrers {
    size: u64,
    sha256: Digest,
    md5: String,
}

impl EmptyReferrers {
    fn new() -> EmptyReferrers {
        let bytes = site::referrers_index(Vec::new()).to_string().into_bytes();
        EmptyReferrers {
            size: bytes.len() as u64,
            sha256: Digest::of_bytes(&bytes),
            md5: hex::encode(Md5::digest(&bytes)),
        }
    }

    /// Whether the listing says `info` holds those bytes: the sha256 the target records, else
    /// a single-part ETag (the MD5 of the bytes), and the size.
    fn held_by(&self, info: &ObjectInfo) -> bool {
        info.size == self.size
            && match (&info.sha256, &info.etag) {
                (Some(sha256), _) => *sha256 == self.sha256,
                (None, Some(etag)) => *etag == self.md5,
                (None, None) => false,
            }
    }
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
    fn run(store: &dyn Store, listing: &[Listed], pool: &rayon::ThreadPool) -> Result<Walk, Error> {
        let present: HashMap<&str, usize> = (listing.iter().enumerate())
            .map(|(n, i)| (i.key.as_str(), n))
            .collect();
        let mut walk = Walk {
            reachable: vec![false; listing.len()],
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
        // Level by level: each level's documents are read in parallel, a chunk at a time (so
        // that what is held is a chunk's documents, not a level's).
        while !next.is_empty() {
            let mut level = std::mem::take(&mut next);
            while !level.is_empty() {
                let rest = level.split_off(level.len().saturating_sub(READ_AT_ONCE));
                let chunk: Vec<Result<Option<ReadDocument>, Error>> = pool.install(|| {
                    rest.into_par_iter()
                        .map(|doc| read_document(store, doc))
                        .collect()
                });
                for result in chunk {
                    let Some((doc, digest, refs)) = result? else {
                        continue;
                    };
                    walk.read += 1;
                    walk.visit(listing, &present, &doc, &digest, refs, &mut next);
                }
            }
        }
        Ok(walk)
    }

    /// Mark what `doc` (with digest `digest`) references; queue the documents to read next.
    fn visit(
        &mut self,
        listing: &[Listed],
        present: &HashMap<&str, usize>,
        doc: &ToRead,
        digest: &Digest,
        refs: References,
        next: &mut Vec<ToRead>,
    ) {
        let repo = doc.repo.as_str();
        // Whether `key` was reached for the first time.
        let mark = |walk: &mut Walk, key: String| -> bool {
            match present.get(key.as_str()) {
                Some(&n) => !std::mem::replace(&mut walk.reachable[n], true),
                None => {
                    walk.missing.insert(key);
                    false
                }
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
        // Signatures, SBOMs and attestations of this manifest, if any were published. An
        // index the listing shows to hold the empty list's bytes lists nothing: not read.
        if doc.source != Source::Referrers {
            let key = site::referrers_key(repo, digest);
            let Some(&n) = present.get(key.as_str()) else {
                return;
            };
            let first = !std::mem::replace(&mut self.reachable[n], true);
            if first && !listing[n].holds_no_referrers {
                next.push(ToRead {
                    key,
                    repo: repo.to_string(),
                    source: Source::Referrers,
                });
            }
        }
    }
}

/// Documents read in parallel at once: enough to keep every worker busy.
const READ_AT_ONCE: usize = 4096;

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
