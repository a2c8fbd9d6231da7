//! Bring a target in line with a site plan: inventory, diff, ordered parallel apply, report.
//!
//! The inventory lists each published repository's prefix once (never one request per object).
//! The diff is pure: an object is rewritten only when its bytes, Content-Type or Cache-Control
//! differ. Apply writes phase by phase (see [`Phase`]), each phase in parallel, then (with
//! `--prune`) removes what the desired state has no place for, in batches, so that a run
//! killed at any point leaves no tag pointing at missing content and no listed tag missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use md5::{Digest as _, Md5};
use rayon::prelude::*;
use serde::Serialize;

use crate::digest::Digest;
use crate::error::Error;
use crate::progress::{self, Progress};
use crate::site::{
    self, CATALOG_KEY, Existing, Phase, PublishedTag, ROOT_KEYS, Removal, Site, SiteObject,
};
use crate::store::upload::Uploads;
use crate::store::{Body, Condition, DELETE_BATCH, ObjectInfo, Store, StoreError, Support};

/// What the target holds that matters to this publish.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Known objects by key (the published repositories' prefixes, catalog and root).
    pub objects: HashMap<String, ObjectInfo>,
    /// Tags and repositories to keep.
    pub existing: Existing,
    /// Content-addressed keys a collection has marked as unreachable (see
    /// [`site::MARKS`]). They are not in `objects`: a marked object may be deleted at
    /// any moment, so this run writes it anew rather than relying on it.
    pub marked: BTreeSet<String>,
    /// Whether `objects` holds every key under `v2/` (one listing of it), not only the
    /// published repositories' prefixes.
    pub whole: bool,
}

/// Read the inventory for publishing into `repositories`: the catalog (one GET), then, when
/// `whole` is asked for (`--prune`) or this run publishes at least half the catalog's
/// repositories, one listing of all of `v2/` (a request per 1,000 keys, whatever the number of
/// repositories); otherwise one listing per repository prefix, in parallel on `pool`, and the
/// two root keys. The listings hold gc's marks too ([`site::MARKS`]): a marked object counts
/// as absent.
pub fn take_inventory(
    store: &dyn Store,
    repositories: &BTreeSet<String>,
    whole: bool,
    pool: &rayon::ThreadPool,
) -> Result<Inventory, StoreError> {
    let mut inventory = Inventory::default();
    if let Some(fetched) = store.get(CATALOG_KEY)? {
        let bytes = &fetched.bytes;
        let catalog: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            StoreError::new(
                store.name(),
                Some(CATALOG_KEY),
                format!("existing catalog is not valid JSON ({e}); repair or remove it"),
            )
        })?;
        let repos = catalog["repositories"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        inventory
            .existing
            .repositories
            .extend(repos.iter().filter_map(|r| r.as_str()).map(str::to_string));
        inventory.objects.insert(
            CATALOG_KEY.to_string(),
            ObjectInfo {
                key: CATALOG_KEY.to_string(),
                size: bytes.len() as u64,
                sha256: Some(crate::digest::Digest::of_bytes(bytes)),
                etag: fetched.etag,
                content_type: None,
                cache_control: None,
                modified: None,
            },
        );
    }
    let whole = whole || inventory.existing.repositories.len() <= 2 * repositories.len();
    inventory.whole = whole;
    let mut listings: Vec<Vec<ObjectInfo>> = if whole {
        vec![store.list("v2/")?]
    } else {
        pool.install(|| {
            repositories
                .par_iter()
                .map(|repo| store.list(&site::repository_prefix(repo)))
                .collect::<Result<Vec<_>, StoreError>>()
        })?
    };
    if !whole {
        let roots = ROOT_KEYS.iter().map(|k| store.head(k));
        listings.push(
            roots
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?,
        );
    }
    let mut marks = Vec::new();
    for info in listings.into_iter().flatten() {
        if let Some(marked) = site::parse_mark_key(&info.key) {
            marks.push(marked);
            continue;
        }
        if let Some((repo, tag)) = site::parse_tag_key(&info.key) {
            if whole {
                // Every repository with a tag belongs in the catalog, listed or not.
                inventory.existing.repositories.insert(repo.to_string());
            }
            let tags = inventory.existing.tags.entry(repo.to_string()).or_default();
            tags.insert(tag.to_string());
        }
        if info.key != CATALOG_KEY {
            inventory.objects.insert(info.key.clone(), info);
        }
    }
    for marked in marks {
        if inventory.objects.remove(&marked).is_some() {
            inventory.marked.insert(marked);
        }
    }
    Ok(inventory)
}

/// The entries of the stored referrers indexes at `keys` whose manifests the target still
/// holds (`inventory`), by repository and subject, then by referrer digest, read in parallel
/// on `pool`. A referrer leaves an index only when its manifest is gone.
pub fn held_referrers(
    store: &dyn Store,
    inventory: &Inventory,
    keys: &[String],
    pool: &rayon::ThreadPool,
) -> Result<site::HeldReferrers, StoreError> {
    let read = |key: &String| -> Result<Option<_>, StoreError> {
        let Some((repo, site::Content::Referrers, subject)) = site::parse_content_key(key) else {
            return Ok(None);
        };
        let Some(fetched) = store.get(key)? else {
            return Ok(None);
        };
        let bad = |why: String| {
            StoreError::new(
                store.name(),
                Some(key),
                format!("existing referrers index is {why}; repair or remove it"),
            )
        };
        let index: serde_json::Value = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let listed = index["manifests"]
            .as_array()
            .ok_or_else(|| bad("without a manifests list".to_string()))?;
        let mut entries = BTreeMap::new();
        for entry in listed {
            let digest = entry["digest"]
                .as_str()
                .and_then(|d| Digest::parse(d).ok())
                .ok_or_else(|| bad(format!("listing {entry} without a valid digest")))?;
            if inventory
                .objects
                .contains_key(&site::manifest_key(repo, &digest))
            {
                entries.insert(digest, entry.clone());
            }
        }
        Ok(Some(((repo.to_string(), subject), entries)))
    };
    let held: Vec<Option<_>> =
        pool.install(|| keys.par_iter().map(read).collect::<Result<_, _>>())?;
    Ok(held.into_iter().flatten().collect())
}

/// One planned object and whether it must be written.
#[derive(Clone, Debug)]
pub struct Change {
    /// The object.
    pub object: SiteObject,
    /// False when the target already holds it exactly.
    pub write: bool,
    /// For a blob whose bytes the target holds under another key (or will, once this run's
    /// blob uploads are done): copy from that key instead of uploading.
    pub copy_from: Option<String>,
    /// Write only if the key is still absent (`If-None-Match: *` where the store honours
    /// it): an immutable tag this run creates ([`crate::governance::immutable`]). Another
    /// writer's tag there already is kept if it holds the same bytes, and fails the write if not.
    pub create_only: bool,
    /// Write only if the stored object is still the one the inventory read (compare-and-swap
    /// where the store honours it; `Absent` when there was none): the catalog, which every
    /// publisher rewrites. A lost race is no failure: settling merges this run's repositories
    /// into what the other wrote ([`crate::lists`]).
    pub swap: Option<Condition>,
}

impl Change {
    /// When it is applied: copies run after all blob uploads.
    pub fn phase(&self) -> Phase {
        match self.copy_from {
            Some(_) => Phase::BlobCopies,
            None => self.object.phase,
        }
    }
}

/// Compare the plan with the inventory. Pure. A blob needed under several repositories is
/// uploaded once; its other keys are filled by server-side copies.
pub fn diff(site: &Site, inventory: &Inventory) -> Vec<Change> {
    // Blobs the target already holds, by digest (any repository's key will do as a source).
    let mut held: HashMap<&str, (&str, u64)> = HashMap::new();
    for (key, info) in &inventory.objects {
        if let Some((_, digest)) = key.rsplit_once("/blobs/") {
            // A blob whose stored digest is not its name holds other bytes: never a source.
            if info.sha256.as_ref().is_some_and(|d| d.as_str() != digest) {
                continue;
            }
            held.entry(digest).or_insert((key.as_str(), info.size));
        }
    }
    let mut uploading: HashMap<String, String> = HashMap::new();
    site.objects
        .iter()
        .map(|object| {
            let write = !inventory
                .objects
                .get(&object.key)
                .is_some_and(|have| same(object, have));
            let mut copy_from = None;
            if write && object.phase == Phase::Blobs {
                let digest = object.sha256.as_str();
                copy_from = match held.get(digest) {
                    Some((key, size)) if *size == object.size => Some(key.to_string()),
                    _ => uploading.get(digest).cloned(),
                };
                if copy_from.is_none() {
                    uploading.insert(digest.to_string(), object.key.clone());
                }
            }
            let swap = (write && object.key == CATALOG_KEY).then(|| {
                match inventory.objects.get(CATALOG_KEY) {
                    None => Some(Condition::Absent),
                    Some(held) => held.etag.clone().map(Condition::Matches),
                }
            });
            Change {
                object: object.clone(),
                write,
                copy_from,
                create_only: false,
                swap: swap.flatten(),
            }
        })
        .collect()
}

fn same(want: &SiteObject, have: &ObjectInfo) -> bool {
    let agrees =
        |known: &Option<String>, wanted: &str| known.as_deref().is_none_or(|k| k == wanted);
    have.size == want.size
        && agrees(&have.content_type, &want.content_type)
        && agrees(&have.cache_control, want.cache_control)
        && match (&have.sha256, &have.etag, &want.body) {
            (Some(d), _, _) => *d == want.sha256,
            // A content-addressed key of the right size holds the right bytes: every upload
            // was checked by the store against its sha256.
            _ if want.cache_control == site::CACHE_IMMUTABLE => true,
            // A listing gives no hash, but a single-part upload's ETag is its MD5.
            (None, Some(etag), Body::Bytes(bytes)) => *etag == hex::encode(Md5::digest(bytes)),
            _ => false,
        }
}

/// Beyond this many repositories, a run sweeps all of `v2/` for what killed runs left.
const SWEEP_EACH_UP_TO: usize = 8;

/// Where a killed run may have left incomplete uploads this run should sweep
/// ([`Store::clean_stale`]): the prefix of each repository it uploads blobs to, or all of
/// `v2/` when that is more than a few; none when it uploads nothing. A sweep of `v2/` lists
/// every upload of the bucket, which some stores (Garage) answer by scanning every key.
pub fn upload_prefixes(changes: &[Change]) -> Vec<String> {
    let repositories: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.write && c.copy_from.is_none() && c.object.phase == Phase::Blobs)
        .filter_map(|c| site::parse_content_key(&c.object.key).map(|(repo, _, _)| repo))
        .collect();
    if repositories.len() > SWEEP_EACH_UP_TO {
        return vec!["v2/".to_string()];
    }
    repositories
        .into_iter()
        .map(site::repository_prefix)
        .collect()
}

/// Counts for one phase.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PhaseReport {
    /// The phase, e.g. `blobs`.
    pub phase: String,
    /// Where it comes in publish order (the batches of one run merge by it).
    #[serde(skip)]
    pub order: Option<Phase>,
    /// Objects that need writing.
    pub objects_to_write: u64,
    /// Bytes to upload for them (copies send none).
    pub bytes_to_write: u64,
    /// Objects already in place.
    pub objects_unchanged: u64,
    /// Their bytes.
    pub bytes_unchanged: u64,
    /// Objects to remove (`--prune`).
    pub objects_to_delete: u64,
}

/// What a publish planned and wrote: the counts of its report (`--report FILE`), which
/// [`crate::publish::Report`] completes with what was published.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The target.
    pub target: String,
    /// True when nothing was written on purpose.
    pub dry_run: bool,
    /// Objects written (0 on a dry run).
    pub objects_written: u64,
    /// Bytes uploaded (0 on a dry run; server-side copies send none).
    pub bytes_written: u64,
    /// Of the objects written, those filled by a server-side copy of a blob already stored.
    pub objects_copied: u64,
    /// Objects already in place.
    pub objects_unchanged: u64,
    /// Bytes already in place.
    pub bytes_unchanged: u64,
    /// Objects the plan needed to write.
    pub objects_to_write: u64,
    /// Bytes the plan needed to write.
    pub bytes_to_write: u64,
    /// Per phase, in publish order.
    pub phases: Vec<PhaseReport>,
    /// Objects the desired state removes (`--prune`): tags and tag lists no longer configured.
    pub objects_to_delete: u64,
    /// Of those, removed (0 on a dry run).
    pub objects_deleted: u64,
    /// Tags removed (or, on a dry run, to remove) by `--prune`.
    pub removed_tags: Vec<RemovedTag>,
    /// Tag lists and catalogs rewritten after the writes because they disagreed with the tags
    /// present (a concurrent publisher's race), see [`crate::lists`].
    pub lists_repaired: u64,
    /// Requests sent to the target (listings, reads and writes, retries included).
    pub requests: u64,
    /// Incomplete uploads (or temporary files) of earlier, killed runs removed.
    pub stale_removed: u64,
    /// Package index shards and tag maps (`sbom search`) written after the plan's objects (not
    /// counted in `objects_written`, which are the plan's).
    pub index_written: u64,
    /// Objects gc had marked for collection, written anew rather than reused (see
    /// [`Inventory::marked`]).
    pub marked_rewritten: u64,
    /// Tags `--prune` kept although the config no longer names them: immutable, or kept by
    /// a retention rule.
    pub kept_tags: Vec<KeptTag>,
    /// Every tag published.
    pub tags: Vec<PublishedTag>,
}

impl Summary {
    /// Add the counts and lists of another batch of the same run to the same target; each
    /// phase's counts go to that phase.
    pub fn absorb(&mut self, other: Summary) {
        let Summary {
            target: _,
            dry_run: _,
            objects_written,
            bytes_written,
            objects_copied,
            objects_unchanged,
            bytes_unchanged,
            objects_to_write,
            bytes_to_write,
            phases,
            objects_to_delete,
            objects_deleted,
            removed_tags,
            lists_repaired,
            requests,
            stale_removed,
            index_written,
            marked_rewritten,
            kept_tags,
            tags,
        } = other;
        self.objects_written += objects_written;
        self.bytes_written += bytes_written;
        self.objects_copied += objects_copied;
        self.objects_unchanged += objects_unchanged;
        self.bytes_unchanged += bytes_unchanged;
        self.objects_to_write += objects_to_write;
        self.bytes_to_write += bytes_to_write;
        self.objects_to_delete += objects_to_delete;
        self.objects_deleted += objects_deleted;
        self.lists_repaired += lists_repaired;
        self.requests += requests;
        self.stale_removed += stale_removed;
        self.index_written += index_written;
        self.marked_rewritten += marked_rewritten;
        self.removed_tags.extend(removed_tags);
        self.kept_tags.extend(kept_tags);
        self.tags.extend(tags);
        for phase in phases {
            match self.phases.iter_mut().find(|p| p.order == phase.order) {
                Some(p) => {
                    p.objects_to_write += phase.objects_to_write;
                    p.bytes_to_write += phase.bytes_to_write;
                    p.objects_unchanged += phase.objects_unchanged;
                    p.bytes_unchanged += phase.bytes_unchanged;
                    p.objects_to_delete += phase.objects_to_delete;
                }
                None => self.phases.push(phase),
            }
        }
        self.phases.sort_by_key(|p| p.order);
    }
}

/// A tag `--prune` keeps although the config no longer names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeptTag {
    /// Repository name.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// What keeps it: `immutable` or `retention`.
    pub by: &'static str,
}

/// A tag `--prune` removes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemovedTag {
    /// Repository name.
    pub repository: String,
    /// Tag.
    pub tag: String,
}

/// The worker pool that bounds requests in flight: `jobs` threads, for I/O, not CPU.
pub fn worker_pool(jobs: usize) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {jobs} workers: {e}")))
}

/// Summarise the changes without writing anything.
pub fn summarize(target: &str, site: &Site, changes: &[Change], removals: &[Removal]) -> Summary {
    let mut phases: BTreeMap<Phase, PhaseReport> = BTreeMap::new();
    for c in changes {
        let p = phases.entry(c.phase()).or_insert_with(|| PhaseReport {
            phase: c.phase().to_string(),
            order: Some(c.phase()),
            ..PhaseReport::default()
        });
        if c.write {
            p.objects_to_write += 1;
            if c.copy_from.is_none() {
                p.bytes_to_write += c.object.size;
            }
        } else {
            p.objects_unchanged += 1;
            p.bytes_unchanged += c.object.size;
        }
    }
    for r in removals {
        let p = phases.entry(r.phase).or_insert_with(|| PhaseReport {
            phase: r.phase.to_string(),
            order: Some(r.phase),
            ..PhaseReport::default()
        });
        p.objects_to_delete += 1;
    }
    let phases: Vec<PhaseReport> = phases.into_values().collect();
    let removed_tags = removals
        .iter()
        .filter_map(|r| site::parse_tag_key(&r.key))
        .map(|(repository, tag)| RemovedTag {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
        .collect();
    Summary {
        target: target.to_string(),
        dry_run: true,
        objects_to_write: changes.iter().filter(|c| c.write).count() as u64,
        objects_to_delete: removals.len() as u64,
        removed_tags,
        bytes_to_write: phases.iter().map(|p| p.bytes_to_write).sum(),
        objects_unchanged: phases.iter().map(|p| p.objects_unchanged).sum(),
        bytes_unchanged: phases.iter().map(|p| p.bytes_unchanged).sum(),
        phases,
        tags: site.tags.clone(),
        ..Summary::default()
    }
}

/// Write every changed object, phase by phase, `jobs` at a time, then carry out `removals`
/// (their phases come after every write). Stops at the end of the first phase that had a
/// failure, so later phases never reference what failed.
pub fn apply(
    store: &dyn Store,
    uploads: &Uploads,
    changes: &[Change],
    removals: &[Removal],
    mut report: Summary,
    pool: &rayon::ThreadPool,
    mode: progress::Mode,
) -> Result<Summary, Error> {
    let writes: Vec<&Change> = changes.iter().filter(|c| c.write).collect();
    let progress = Progress::start(
        mode,
        "write",
        (writes.len() + removals.len()) as u64,
        writes
            .iter()
            .filter(|c| c.copy_from.is_none())
            .map(|c| c.object.size)
            .sum(),
    );
    let mut by_phase: BTreeMap<Phase, (Vec<&Change>, Vec<String>)> = BTreeMap::new();
    for change in writes {
        by_phase.entry(change.phase()).or_default().0.push(change);
    }
    for removal in removals {
        by_phase
            .entry(removal.phase)
            .or_default()
            .1
            .push(removal.key.clone());
    }
    for (changes, removals) in by_phase.values() {
        let failures: Mutex<Vec<StoreError>> = Mutex::new(Vec::new());
        pool.install(|| {
            changes.par_iter().for_each(|change| {
                let object = &change.object;
                let attributes = object.attributes();
                let upload = || uploads.put(store, &object.key, &object.body, &attributes);
                let result = match &change.copy_from {
                    Some(source) => store
                        .copy(source, &object.key, object.size, &attributes)
                        .and_then(|copied| if copied { Ok(()) } else { upload() }),
                    None if change.create_only => create(store, object),
                    None => match &change.swap {
                        Some(condition) => swap(store, object, condition),
                        None => upload(),
                    },
                };
                match result {
                    Ok(()) => {
                        if change.copy_from.is_none() {
                            progress.add_bytes(change.object.size);
                        }
                        progress.add_item();
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push(e);
                        }
                    }
                }
            })
        });
        let mut failures = failures.into_inner().unwrap_or_default();
        for change in changes {
            let key = change.object.key.as_str();
            if failures.iter().any(|f| f.key.as_deref() == Some(key)) {
                continue;
            }
            report.objects_written += 1;
            match change.copy_from {
                Some(_) => report.objects_copied += 1,
                None => report.bytes_written += change.object.size,
            }
        }
        let (deleted, failed) = delete_in_batches(store, removals, pool);
        report.objects_deleted += deleted;
        (0..deleted).for_each(|_| progress.add_item());
        failures.extend(failed);
        if let Some(first) = first_failure(failures) {
            progress.finish();
            return Err(Error::Target(first));
        }
    }
    progress.finish();
    report.dry_run = false;
    Ok(report)
}

/// Write `object` only where nothing is stored yet (`If-None-Match: *`); where the store does
/// not honour that, an ordinary write. Another writer's object already there is fine when it
/// holds the same bytes, and an error naming both digests when not.
fn create(store: &dyn Store, object: &SiteObject) -> Result<(), StoreError> {
    let attributes = object.attributes();
    if store.conditional_writes()? != Support::Yes {
        return store.put(&object.key, &object.body, &attributes);
    }
    if store.put_if(&object.key, &object.body, &attributes, &Condition::Absent)? {
        return Ok(());
    }
    let held = store.get(&object.key)?.map(|f| Digest::of_bytes(&f.bytes));
    match held {
        Some(held) if held == object.sha256 => Ok(()),
        held => Err(StoreError::new(
            store.name(),
            Some(&object.key),
            format!(
                "immutable tag created meanwhile by another publisher, holding {}; this run \
                 offered {}: left as the other publisher wrote it",
                held.map_or_else(|| "nothing".to_string(), |d| d.to_string()),
                object.sha256
            ),
        )),
    }
}

/// Write `object` if `condition` still holds, where the store honours conditions (elsewhere
/// an ordinary write); a lost race leaves the other writer's object for settling to merge.
fn swap(store: &dyn Store, object: &SiteObject, condition: &Condition) -> Result<(), StoreError> {
    let attributes = object.attributes();
    if store.conditional_writes()? != Support::Yes {
        return store.put(&object.key, &object.body, &attributes);
    }
    store
        .put_if(&object.key, &object.body, &attributes, condition)
        .map(drop)
}

/// After the tags are written: each of `rewritten` (objects this run wrote because gc had
/// marked them) is asked for again, and written once more if a collection deleted it meanwhile
/// (a sweep that checked it just before this run's write and deleted it just after). Tagged
/// now, it is reachable to every later collection.
pub fn restore_marked(
    store: &dyn Store,
    uploads: &Uploads,
    rewritten: &[&Change],
    pool: &rayon::ThreadPool,
) -> Result<(), StoreError> {
    pool.install(|| {
        rewritten.par_iter().try_for_each(|change| {
            let object = &change.object;
            if store.head(&object.key)?.is_none() {
                uploads.put(store, &object.key, &object.body, &object.attributes())?;
            }
            Ok(())
        })
    })
}

/// Delete `keys` in batches of [`DELETE_BATCH`], batches in parallel on `pool`. Returns how
/// many were deleted and the failures.
pub fn delete_in_batches(
    store: &dyn Store,
    keys: &[String],
    pool: &rayon::ThreadPool,
) -> (u64, Vec<StoreError>) {
    let results: Vec<Result<u64, StoreError>> = pool.install(|| {
        keys.par_chunks(DELETE_BATCH)
            .map(|batch| store.delete_many(batch).map(|()| batch.len() as u64))
            .collect()
    });
    let mut deleted = 0;
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(n) => deleted += n,
            Err(e) => failures.push(e),
        }
    }
    (deleted, failures)
}

/// The first of a phase's failures, saying how many others there were.
pub fn first_failure(failures: Vec<StoreError>) -> Option<StoreError> {
    let others = failures.len().saturating_sub(1);
    let mut first = failures.into_iter().next()?;
    if others > 0 {
        first.reason = format!(
            "{} ({others} other request{} of this phase failed too)",
            first.reason,
            if others == 1 { "" } else { "s" }
        );
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::site::{CACHE_IMMUTABLE, CACHE_SHORT};
    use std::sync::Arc;

    fn object(key: &str, body: &[u8], cache: &'static str) -> SiteObject {
        SiteObject {
            key: key.into(),
            size: body.len() as u64,
            sha256: Digest::of_bytes(body),
            body: Body::Bytes(Arc::from(body.to_vec())),
            content_type: "application/json".into(),
            cache_control: cache,
            phase: Phase::Tags,
        }
    }

    /// A blob of `repo` holding `body`.
    fn blob(repo: &str, body: &[u8]) -> SiteObject {
        SiteObject {
            phase: Phase::Blobs,
            ..object(
                &format!("v2/{repo}/blobs/{}", Digest::of_bytes(body)),
                body,
                CACHE_IMMUTABLE,
            )
        }
    }

    fn info(o: &SiteObject, sha: Option<Digest>) -> ObjectInfo {
        ObjectInfo {
            key: o.key.clone(),
            size: o.size,
            sha256: sha,
            etag: None,
            content_type: Some(o.content_type.clone()),
            cache_control: Some(o.cache_control.to_string()),
            modified: None,
        }
    }

    #[test]
    fn a_shared_blob_is_uploaded_once_and_copied_elsewhere() {
        let key = |repo: &str, body: &[u8]| format!("v2/{repo}/blobs/{}", Digest::of_bytes(body));
        let site = Site {
            objects: vec![
                blob("a", b"shared"),
                blob("b", b"shared"),
                blob("c", b"shared"),
                blob("c", b"own"),
                blob("d", b"held"),
            ],
            tags: vec![],
        };
        let mut inv = Inventory::default();
        let held = blob("old", b"held");
        inv.objects.insert(held.key.clone(), info(&held, None));
        let changes = diff(&site, &inv);
        let sources: Vec<Option<String>> = changes.iter().map(|c| c.copy_from.clone()).collect();
        let shared = Some(key("a", b"shared"));
        assert_eq!(
            sources,
            [
                None,
                shared.clone(),
                shared,
                None,
                Some(key("old", b"held"))
            ]
        );
        assert_eq!(changes[1].phase(), Phase::BlobCopies);
        let report = summarize("t", &site, &changes, &[]);
        assert_eq!(report.objects_to_write, 5);
        assert_eq!(
            report.bytes_to_write,
            (b"shared".len() + b"own".len()) as u64
        );
    }

    #[test]
    fn a_blob_stored_under_a_digest_it_does_not_have_is_neither_kept_nor_copied() {
        let wanted = blob("new", b"bytes");
        let site = Site {
            objects: vec![wanted.clone(), blob("bad", b"bytes")],
            tags: vec![],
        };
        let mut inv = Inventory::default();
        // Elsewhere, and at the key itself: the right name and size, a recorded digest of
        // other bytes.
        let bad = blob("bad", b"bytes");
        inv.objects.insert(
            bad.key.clone(),
            info(&bad, Some(Digest::of_bytes(b"other"))),
        );
        let changes = diff(&site, &inv);
        assert!(changes.iter().all(|c| c.write), "the bad key is rewritten");
        assert_eq!(
            changes[0].copy_from, None,
            "uploaded, not copied from the bad key"
        );
        assert_eq!(
            changes[1].copy_from,
            Some(wanted.key),
            "copied from this run's upload"
        );
    }

    #[test]
    fn a_run_sweeps_stale_uploads_only_where_it_uploads() {
        let change = |object: SiteObject, copy: bool| Change {
            copy_from: copy.then(|| "v2/x/blobs/sha256:00".to_string()),
            object,
            write: true,
            create_only: false,
            swap: None,
        };
        let tag = change(object("v2/t/manifests/v1", b"{}", CACHE_SHORT), false);
        assert!(
            upload_prefixes(std::slice::from_ref(&tag)).is_empty(),
            "a tag moved: none"
        );
        let changes = vec![
            tag,
            change(blob("a", b"1"), false),
            change(blob("a/b", b"2"), false),
            change(blob("c", b"3"), true),
        ];
        assert_eq!(
            upload_prefixes(&changes),
            ["v2/a/", "v2/a/b/"],
            "not the copy's"
        );
        let many: Vec<Change> = (0..=SWEEP_EACH_UP_TO)
            .map(|i| change(blob(&format!("r{i}"), b"x"), false))
            .collect();
        assert_eq!(upload_prefixes(&many), ["v2/"]);
    }

    #[test]
    fn a_create_only_write_keeps_what_another_writer_created() {
        let store = crate::store::memory::MemoryStore::new("mem");
        let ours = object("v2/a/manifests/v1", b"{\"a\":1}", CACHE_SHORT);
        create(&store, &ours).unwrap();
        create(&store, &ours).unwrap();
        let theirs = object("v2/a/manifests/v1", b"{\"a\":2}", CACHE_SHORT);
        let e = create(&store, &theirs).unwrap_err();
        assert!(
            e.reason.contains(&ours.sha256.to_string())
                && e.reason.contains(&theirs.sha256.to_string()),
            "{e}"
        );
        let held = store.get("v2/a/manifests/v1").unwrap().unwrap().bytes;
        assert_eq!(held, b"{\"a\":1}", "the first writer's tag stays");
    }

    #[test]
    fn unchanged_only_when_bytes_and_headers_agree() {
        let tag = object("v2/a/manifests/t", b"{\"a\":1}", CACHE_SHORT);
        let blob = object("v2/a/blobs/sha256:x", b"blob", CACHE_IMMUTABLE);
        let site = Site {
            objects: vec![tag.clone(), blob.clone()],
            tags: vec![],
        };
        let mut inv = Inventory::default();
        assert!(diff(&site, &inv).iter().all(|c| c.write));

        inv.objects
            .insert(tag.key.clone(), info(&tag, Some(tag.sha256.clone())));
        inv.objects.insert(blob.key.clone(), info(&blob, None));
        assert!(diff(&site, &inv).iter().all(|c| !c.write));

        // Same size, other bytes: a tag moves.
        inv.objects.insert(
            tag.key.clone(),
            info(&tag, Some(Digest::of_bytes(b"{\"a\":2}"))),
        );
        assert!(diff(&site, &inv)[0].write);
        // Unknown hash on a mutable key: rewrite.
        inv.objects.insert(tag.key.clone(), info(&tag, None));
        assert!(diff(&site, &inv)[0].write);
        // Wrong Content-Type: rewrite.
        let mut wrong = info(&tag, Some(tag.sha256.clone()));
        wrong.content_type = Some("text/plain".into());
        inv.objects.insert(tag.key.clone(), wrong);
        assert!(diff(&site, &inv)[0].write);

        // A listing with only ETags: MD5 of the bytes decides.
        let mut listed = info(&tag, None);
        listed.etag = Some(hex::encode(Md5::digest(b"{\"a\":1}")));
        inv.objects.insert(tag.key.clone(), listed.clone());
        assert!(!diff(&site, &inv)[0].write);
        listed.etag = Some(hex::encode(Md5::digest(b"{\"a\":2}")));
        inv.objects.insert(tag.key.clone(), listed);
        assert!(diff(&site, &inv)[0].write);

        let report = summarize("t", &site, &diff(&site, &inv), &[]);
        assert_eq!((report.objects_to_write, report.objects_unchanged), (1, 1));
    }
}
