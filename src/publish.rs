//! The pipeline, wired once: read → plan → diff → hash → apply → settle → report.
//!
//! `publish` and `verify` share it; the CLI (and the Action and cron) only build a [`Config`]
//! and print what comes back. Each stage is a function here with its own type in and out, and
//! data flows one way: no stage's module imports from a later one.
//!
//! 1. [`read`]: every layout read and its structure verified (digests of every document,
//!    signatures, SBOMs); blob contents are not hashed yet.
//! 2. [`inventory`] and [`plan`]: what the target holds, and the site to make of the images.
//! 3. [`diff`]: what must be written, copied or (with `--prune`) removed.
//! 4. [`hash`]: every blob this run sends is hashed against its digest, before anything is
//!    written (on a dry run too): a refused image writes nothing. A no-op re-publish does not
//!    re-read gigabytes the bucket already holds (checked against their digests on upload).
//! 5. [`apply`], [`settle`] and [`index`]: the writes, phase by phase; then the tag lists and
//!    catalog it wrote are settled against the tags present ([`crate::lists`]), so a concurrent
//!    publisher's update is never lost; then the package index ([`crate::packages`]).
//! 6. [`finish`]: the report, and publish events.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::events;
use crate::progress;
use crate::report::{PublishedImage, SbomReport};
use crate::site::{self, Existing, Phase, Removal, Site};
use crate::store::Body;
use crate::sync::{self, Change, Inventory, Summary};
use crate::target::{self, Target, TargetSpec};
use crate::verify::trust::TrustPolicy;
use crate::verify::{self, VerifiedImage};

/// Incomplete uploads and temporary files older than this were left by a run that died: no
/// publish runs this long, so removing them cannot disturb one in progress.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How to publish.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to.
    pub target: TargetSpec,
    /// Plan and report, write nothing.
    pub dry_run: bool,
    /// Writes in flight at once.
    pub jobs: usize,
    /// Desired state: remove the tags and repositories the config does not name.
    pub prune: bool,
    /// Progress output.
    pub progress: progress::Mode,
    /// Where to send an event per tag created or moved, once everything is written.
    pub events: Option<Events>,
}

/// Publish events: the receiver, and the `source` the events name.
#[derive(Clone, Debug)]
pub struct Events {
    /// The receiver.
    pub sink: events::Sink,
    /// The events' `source` (default: the target's name).
    pub source: Option<String>,
}

/// The machine-readable result of a publish (`--report FILE`): what was planned and written,
/// then what was published and told.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Counts, per phase and in all, and the tags published.
    #[serde(flatten)]
    pub summary: Summary,
    /// Every SBOM verified with the images.
    pub sboms: Vec<SbomReport>,
    /// Every image published: as `verify --report` describes it, with its tags changed and
    /// objects written.
    pub images: Vec<PublishedImage>,
    /// Publish events sent (`--events-url`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<events::Delivery>,
}

/// The plan's changes: what to write (or copy), and what `--prune` removes.
pub struct Diff {
    /// Every planned object, and whether it must be written.
    pub changes: Vec<Change>,
    /// What the desired state has no place for.
    pub removals: Vec<Removal>,
}

/// A [`Diff`] whose every blob to send has been hashed against its digest: the only thing
/// [`apply`] takes.
pub struct Hashed(Diff);

impl Hashed {
    /// Every planned object, and whether it must be written.
    pub fn changes(&self) -> &[Change] {
        &self.0.changes
    }

    /// What `--prune` removes.
    pub fn removals(&self) -> &[Removal] {
        &self.0.removals
    }
}

/// Verify every image of `config`, blobs included.
pub fn verify(config: &Config, mode: progress::Mode) -> Result<Vec<VerifiedImage>, Error> {
    let trust = trust_policy(config)?;
    verify::verify_all(&config.images, &config.policy, trust.as_ref(), mode).map_err(Error::Verify)
}

/// The config's signature trust policy, loaded when it asks for anything. A provenance policy
/// needs signers to verify provenance by.
fn trust_policy(config: &Config) -> Result<Option<TrustPolicy>, Error> {
    let signers = !config.signatures.signers.is_empty();
    verify::provenance::check_signers(&config.images, signers)
        .map_err(|e| Error::Usage(format!("provenance policy: {e}")))?;
    if !config.signatures.is_active() {
        return Ok(None);
    }
    TrustPolicy::load(&config.signatures)
        .map(Some)
        .map_err(|e| Error::Usage(format!("signature policy: {e}")))
}

/// Verify, plan and publish every image of `config` to `options.target`.
pub fn publish(config: &Config, options: &Options) -> Result<Report, Error> {
    let trust = trust_policy(config)?;
    let target = target::open(&options.target, options.jobs)?;
    let images = read(config, trust.as_ref())?;
    let pool = sync::worker_pool(options.jobs)?;
    let inventory = inventory(&target, &images, options.prune, &pool)?;
    let site = plan(&target, &images, &inventory, options.prune, &pool)?;
    let diff = diff(&site, &inventory, options.prune);
    let hashed = hash(&images, diff, options.progress)?;
    let summary = sync::summarize(
        target.store.name(),
        &site,
        hashed.changes(),
        hashed.removals(),
    );
    let summary = if options.dry_run {
        summary
    } else {
        let summary = apply(&target, &hashed, summary, &pool, options.progress)?;
        let summary = settle(&target, &inventory, &hashed, summary, &pool)?;
        index(&target, &images, &hashed, &pool)?;
        summary
    };
    Ok(finish(
        &target, &images, &inventory, &hashed, summary, options,
    ))
}

/// Stage 1: read every image and verify its structure; every image must have a tag.
pub fn read(config: &Config, trust: Option<&TrustPolicy>) -> Result<Vec<VerifiedImage>, Error> {
    let images = verify::read_all(&config.images, &config.policy, trust).map_err(Error::Verify)?;
    if let Some(untagged) = images.iter().find(|i| i.tags.is_empty()) {
        return Err(Error::Usage(format!(
            "image {} from layout {} has no tag: give one with --tag (or `tags` in the config)",
            untagged.name(),
            untagged.layout.display()
        )));
    }
    Ok(images)
}

/// Stage 2a: what the target holds of the repositories the images go to (all of it with
/// `prune`).
pub fn inventory(
    target: &Target,
    images: &[VerifiedImage],
    prune: bool,
    pool: &rayon::ThreadPool,
) -> Result<Inventory, Error> {
    let repositories: BTreeSet<String> = images.iter().map(|i| i.repository.clone()).collect();
    Ok(sync::take_inventory(
        target.store.as_ref(),
        &repositories,
        prune,
        pool,
    )?)
}

/// Stage 2b: the site to make of the images, keeping the tags and repositories the target
/// already has unless `prune` (the desired state keeps nothing it was not given), and always
/// the referrers it lists: where the plan would change a stored referrers index, that index is
/// read and its entries kept (one GET per index that differs; none on a no-op re-publish).
pub fn plan(
    target: &Target,
    images: &[VerifiedImage],
    inventory: &Inventory,
    prune: bool,
    pool: &rayon::ThreadPool,
) -> Result<Site, Error> {
    let mut existing = if prune {
        Existing::default()
    } else {
        inventory.existing.clone()
    };
    let site = site::plan(images, &existing)?;
    // Only the referrers indexes are compared here; the whole site is diffed once, in `diff`.
    let referrers = Site {
        objects: site
            .objects
            .iter()
            .filter(|o| o.phase == Phase::Referrers)
            .cloned()
            .collect(),
        tags: Vec::new(),
    };
    let changed: Vec<String> = sync::diff(&referrers, inventory)
        .into_iter()
        .filter(|c| c.write)
        .map(|c| c.object.key)
        .filter(|key| inventory.objects.contains_key(key))
        .collect();
    if changed.is_empty() {
        return Ok(site);
    }
    existing.referrers = sync::held_referrers(target.store.as_ref(), inventory, &changed, pool)?;
    Ok(site::plan(images, &existing)?)
}

/// Stage 3: what to write, copy and (with `prune`) remove.
pub fn diff(site: &Site, inventory: &Inventory, prune: bool) -> Diff {
    let changes = sync::diff(site, inventory);
    let removals = if prune {
        site::prune(site, inventory.objects.keys().map(String::as_str))
    } else {
        Vec::new()
    };
    Diff { changes, removals }
}

/// Stage 4: hash every blob the diff sends (not those copied or already there).
pub fn hash(images: &[VerifiedImage], diff: Diff, mode: progress::Mode) -> Result<Hashed, Error> {
    let sent: HashSet<&Path> = diff
        .changes
        .iter()
        .filter(|c| c.write && c.copy_from.is_none())
        .filter_map(|c| match &c.object.body {
            Body::File { path, .. } => Some(path.as_path()),
            Body::Bytes(_) => None,
        })
        .collect();
    verify::hash_blobs(images, |b| sent.contains(b.path.as_path()), mode).map_err(Error::Verify)?;
    Ok(Hashed(diff))
}

/// Stage 5a: clear what killed runs left, then write (and remove) phase by phase.
pub fn apply(
    target: &Target,
    hashed: &Hashed,
    mut summary: Summary,
    pool: &rayon::ThreadPool,
    mode: progress::Mode,
) -> Result<Summary, Error> {
    let store = target.store.as_ref();
    if summary.objects_to_write > 0 {
        summary.stale_removed = store.clean_stale("v2/", STALE_AFTER)?;
    }
    let Diff { changes, removals } = &hashed.0;
    sync::apply(
        store,
        &target.uploads,
        changes,
        removals,
        summary,
        pool,
        mode,
    )
}

/// Stage 5b: settle every tag list this run wrote or removed, and the catalog if it changed;
/// then make sure what gc had marked and this run wrote anew is still there.
pub fn settle(
    target: &Target,
    inventory: &Inventory,
    hashed: &Hashed,
    mut summary: Summary,
    pool: &rayon::ThreadPool,
) -> Result<Summary, Error> {
    let Diff { changes, removals } = &hashed.0;
    let rewritten: Vec<&Change> = changes
        .iter()
        .filter(|c| c.write && inventory.marked.contains(&c.object.key))
        .collect();
    summary.marked_rewritten = rewritten.len() as u64;
    if !rewritten.is_empty() {
        sync::restore_marked(target.store.as_ref(), &target.uploads, &rewritten, pool)?;
    }
    let mut lists = BTreeSet::new();
    let mut catalog = false;
    let written = changes.iter().filter(|c| c.write).map(|c| &c.object.key);
    for key in written.chain(removals.iter().map(|r| &r.key)) {
        if let Some(repo) = site::parse_tag_list_key(key) {
            lists.insert(repo.to_string());
        }
        catalog |= key == site::CATALOG_KEY;
    }
    catalog |= removals.iter().any(|r| r.phase == Phase::RemoveTagLists);
    if catalog || !lists.is_empty() {
        summary.lists_repaired =
            crate::lists::settle(target.store.as_ref(), &lists, catalog, pool)?.rewritten;
    }
    Ok(summary)
}

/// Stage 5c: add the images' packages to the package index `sbom search` reads, and settle
/// the tag maps of the repositories this run touched ([`crate::packages`]).
pub fn index(
    target: &Target,
    images: &[VerifiedImage],
    hashed: &Hashed,
    pool: &rayon::ThreadPool,
) -> Result<(), Error> {
    let Diff { changes, removals } = &hashed.0;
    crate::packages::update(target.store.as_ref(), images, changes, removals, pool)?;
    Ok(())
}

/// Stage 6: the report, and (unless a dry run) an event per tag created, moved or removed.
pub fn finish(
    target: &Target,
    images: &[VerifiedImage],
    inventory: &Inventory,
    hashed: &Hashed,
    mut summary: Summary,
    options: &Options,
) -> Report {
    summary.requests = target.requests.get();
    let mut report = Report {
        summary,
        sboms: crate::report::sboms(images),
        images: crate::report::published(images, &hashed.0.changes),
        events: None,
    };
    if let Some(events) = options.events.as_ref().filter(|_| !options.dry_run) {
        let source = events.source.as_deref().unwrap_or(target.store.name());
        let removed = report.summary.removed_tags.iter().map(|t| {
            let key = site::tag_key(&t.repository, &t.tag);
            let digest = inventory.objects.get(&key).and_then(|o| o.sha256.clone());
            let gone = events::TagRemoved {
                repository: t.repository.clone(),
                tag: t.tag.clone(),
                digest,
            };
            events::removed(source, &gone)
        });
        let all = events::published(source, &report.images).and_then(|mut list| {
            list.extend(removed.collect::<Result<Vec<_>, _>>()?);
            Ok(list)
        });
        report.events = Some(match all {
            Ok(list) => events.sink.deliver(list),
            Err(e) => events::Delivery::not_built(&events.sink, e),
        });
    }
    report
}
