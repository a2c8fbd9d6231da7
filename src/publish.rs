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
//!    re-read gigabytes the bucket already holds. A blob large enough to go up in parts is
//!    left to its upload, which reads it once and completes only if it has its digest
//!    ([`crate::store::upload`]): a bad one is never stored, though smaller blobs of the run
//!    may be (no manifest names them; `gc` collects them).
//! 5. [`apply`], [`settle`] and [`index`]: the writes, phase by phase; then the tag lists and
//!    catalog it wrote are settled against the tags present ([`crate::lists`]), so a concurrent
//!    publisher's update is never lost; then the package index ([`crate::packages`]).
//! 6. [`finish`]: the report, and publish events.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, ImageSpec};
use crate::error::Error;
use crate::events;
use crate::governance::ImmutableRule;
use crate::governance::immutable::{self, Immutable};
use crate::governance::retention::{self, Retention};
use crate::governance::yank;
use crate::progress;
use crate::report::{PublishedImage, SbomReport};
use crate::site::{self, Existing, Phase, Removal, Site};
use crate::store::Body;
use crate::store::upload::Uploads;
use crate::sync::{self, Change, Inventory, KeptTag, Summary};
use crate::target::{self, Target, TargetSpec};
use crate::verify::trust::{TrustError, TrustPolicy};
use crate::verify::{self, VerifiedImage};

/// Incomplete uploads and temporary files older than this were left by a run that died: no
/// publish runs this long, so removing them cannot disturb one in progress.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How to publish.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to: one target, or several written in parallel (replication).
    pub targets: Vec<TargetSpec>,
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
    /// Tags that never move, beyond the config's (`--immutable`).
    pub immutable: Vec<String>,
    /// Publish digests `regpress yank` took down.
    pub allow_yanked: bool,
    /// Most images held at once: a larger catalog (without `prune`) is published in batches
    /// of whole repositories ([`DEFAULT_BATCH`] unless `--batch` says otherwise).
    pub batch: usize,
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
    /// The target's name, when the config gives it one (`[[target]] name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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
    /// Tags `--prune` leaves although the config no longer names them, and why.
    pub kept: Vec<KeptTag>,
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
        .map_err(|e| match e {
            // The policy is sound; the root to verify by could not be had.
            TrustError::Tuf(e) if !e.is_usage() => Error::Refused(e.to_string()),
            e => Error::Usage(format!("signature policy: {e}")),
        })
}

impl Report {
    /// Add the report of another batch of the same run to the same target.
    pub fn absorb(&mut self, other: Report) {
        let Report {
            name: _,
            summary,
            sboms,
            images,
            events,
        } = other;
        self.summary.absorb(summary);
        self.sboms.extend(sboms);
        self.images.extend(images);
        self.events = match (self.events.take(), events) {
            (Some(mut mine), Some(more)) => {
                mine.absorb(more);
                Some(mine)
            }
            (mine, more) => mine.or(more),
        };
    }
}

/// One target's result of a publish to several.
pub struct Outcome {
    /// The target, as reports name it ([`TargetSpec::label`]).
    pub target: String,
    /// Its report, or why it failed.
    pub result: Result<Report, Error>,
}

/// A publish to several targets as `--report` writes it: a report per target that completed
/// and the targets that failed.
#[derive(Debug, Serialize)]
pub struct Replicated {
    /// Each complete target's report, in config order.
    pub targets: Vec<Report>,
    /// Each failed target and why.
    pub failed: Vec<FailedTarget>,
}

/// A target a publish to several could not complete.
#[derive(Debug, Serialize)]
pub struct FailedTarget {
    /// The target.
    pub target: String,
    /// Why.
    pub error: String,
}

impl Replicated {
    /// The outcomes as a report, and the failed targets as the run's error.
    pub fn new(outcomes: Vec<Outcome>) -> (Replicated, Option<Error>) {
        let mut replicated = Replicated {
            targets: Vec::new(),
            failed: Vec::new(),
        };
        for outcome in outcomes {
            match outcome.result {
                Ok(report) => replicated.targets.push(report),
                Err(e) => replicated.failed.push(FailedTarget {
                    target: outcome.target,
                    error: e.to_string(),
                }),
            }
        }
        let failed = replicated
            .failed
            .iter()
            .map(|f| (f.target.clone(), f.error.clone()))
            .collect::<Vec<_>>();
        let error = (!failed.is_empty()).then_some(Error::Targets(failed));
        (replicated, error)
    }
}

/// One target of a publish, planned and checked, ready for its writes (its diff is apart,
/// to be hashed with every other target's).
struct Prepared {
    spec: TargetSpec,
    target: Target,
    pool: rayon::ThreadPool,
    inventory: Inventory,
    site: Site,
}

/// Verify, plan and publish every image of `config` to every target of `options`: images are
/// read and verified once; each target is inventoried, planned and checked against its
/// governance (yanked digests, immutable tags) in parallel; the blobs any target needs are
/// hashed once, before the first write to any; then each target is written and settled on its
/// own. A verification failure or a refusal stops the run before anything is written; a target
/// that fails does not stop the others (its [`Outcome`] holds the error).
///
/// A catalog of more than `options.batch` images (and no `--prune`) goes in batches, so that
/// memory is bounded by the batch rather than the catalog: see [`publish_in_batches`].
pub fn publish(config: &Config, options: &Options) -> Result<Vec<Outcome>, Error> {
    let trust = trust_policy(config)?;
    let governance = Governance::new(config, options)?;
    if options.prune {
        let images = read(config, trust.as_ref())?;
        return publish_images(&images, &governance, options, true);
    }
    publish_in_batches(config, trust.as_ref(), &governance, options)
}

/// Publish verified `images` (all of a run's, or one batch's); settle the catalog after the
/// writes unless a batched publish leaves that to after its last batch (`with_catalog`).
fn publish_images(
    images: &[VerifiedImage],
    governance: &Governance,
    options: &Options,
    with_catalog: bool,
) -> Result<Vec<Outcome>, Error> {
    let prepared = each(options.targets.clone(), |spec| {
        prepare(images, spec, governance, options)
    });
    let mut ready = Vec::new();
    let mut diffs = Vec::new();
    let mut outcomes = Vec::new();
    for (spec, result) in options.targets.iter().zip(prepared) {
        match result {
            Ok((p, diff)) => {
                ready.push(p);
                diffs.push(diff);
            }
            Err(e @ (Error::Target(_) | Error::Internal(_))) => outcomes.push(Outcome {
                target: spec.label().to_string(),
                result: Err(e),
            }),
            Err(refused) => return Err(refused),
        }
    }
    let sends: Vec<_> = diffs
        .into_iter()
        .zip(&ready)
        .map(|(diff, p)| (diff, (!options.dry_run).then_some(p.target.uploads)))
        .collect();
    let hashed = hash(images, sends, options.progress)?;
    let written = each(ready.into_iter().zip(hashed).collect(), |(p, hashed)| {
        Outcome {
            target: p.spec.label().to_string(),
            result: write(&p, &hashed, images, options, with_catalog),
        }
    });
    outcomes.extend(written);
    let order = |o: &Outcome| options.targets.iter().position(|t| t.label() == o.target);
    outcomes.sort_by_key(order);
    Ok(outcomes)
}

/// Images per batch of a large publish, unless `--batch` says otherwise: about 30 MB of
/// verified images, inventory and plan at a time.
pub const DEFAULT_BATCH: usize = 1_000;

/// `config`'s images by repository, in the order the config first names each.
fn by_repository(config: &Config) -> Vec<Vec<ImageSpec>> {
    let mut groups: Vec<Vec<ImageSpec>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for spec in &config.images {
        let i = *at.entry(spec.repository.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(spec.clone());
    }
    groups
}

/// Read the images repository by repository; when they all fit in `options.batch`, publish
/// them at once. A larger catalog goes in two passes over batches of whole repositories (each
/// of at most `options.batch` images, unless one repository alone holds more). First every
/// batch is verified, inventoried, planned and checked against governance as a dry run, so
/// that a verification failure or a refusal anywhere still stops the run before anything is
/// written (the verification failures of every batch are reported together). Then each batch
/// with something to write is published for real, verified and checked again (nothing is
/// trusted from the first pass); a batch with nothing to write is not read again, so a nightly
/// no-op costs one pass. Each target's reports of the batches are merged into one. Tag lists
/// are settled batch by batch, the catalog once after the last batch ([`settle_catalog`]: on
/// a store without conditional writes each settling lists the bucket); a target that failed
/// in the first pass is written nothing.
fn publish_in_batches(
    config: &Config,
    trust: Option<&TrustPolicy>,
    governance: &Governance,
    options: &Options,
) -> Result<Vec<Outcome>, Error> {
    return_freed_memory_promptly();
    let checking = Options {
        dry_run: true,
        events: None,
        ..options.clone()
    };
    let mut failures = Vec::new();
    let mut checked: Vec<(Vec<ImageSpec>, Vec<Outcome>)> = Vec::new();
    let (mut specs, mut images) = (Vec::new(), Vec::new());
    for group in by_repository(config) {
        let read = match verify::read_all(&group, &config.policy, trust) {
            Ok(read) => read,
            Err(errors) => {
                failures.extend(errors);
                continue;
            }
        };
        check_tagged(&read)?;
        if !failures.is_empty() {
            continue;
        }
        if !images.is_empty() && images.len() + read.len() > options.batch {
            let outcomes = publish_images(&images, governance, &checking, true)?;
            checked.push((std::mem::take(&mut specs), outcomes));
            images.clear();
        }
        specs.extend(group);
        images.extend(read);
    }
    if !failures.is_empty() {
        return Err(Error::Verify(failures));
    }
    if checked.is_empty() {
        return publish_images(&images, governance, options, true);
    }
    checked.push((specs, publish_images(&images, governance, &checking, true)?));
    drop(images);
    if options.dry_run {
        return Ok(merge(checked.into_iter().map(|(_, o)| o), &options.targets));
    }
    let failed: BTreeSet<String> = (checked.iter().flat_map(|(_, o)| o))
        .filter(|o| o.result.is_err())
        .map(|o| o.target.clone())
        .collect();
    let writing = Options {
        targets: (options.targets.iter())
            .filter(|t| !failed.contains(t.label()))
            .cloned()
            .collect(),
        ..options.clone()
    };
    let mut done = Vec::new();
    for (batch, mut outcomes) in checked {
        let to_write = outcomes.iter().any(|o| {
            o.result.as_ref().is_ok_and(|r| {
                !failed.contains(&o.target)
                    && (r.summary.objects_to_write > 0 || r.summary.objects_to_delete > 0)
            })
        });
        if !to_write {
            // What the check found is what a publish would have done: nothing.
            for report in outcomes.iter_mut().filter_map(|o| o.result.as_mut().ok()) {
                report.summary.dry_run = false;
            }
            done.push(outcomes);
            continue;
        }
        let images = read_specs(&batch, config, trust)?;
        let mut written = publish_images(&images, governance, &writing, false)?;
        // The report counts the requests of both passes.
        for outcome in &mut written {
            let first = outcomes.iter().find(|o| o.target == outcome.target);
            let requests = first.and_then(|o| Some(o.result.as_ref().ok()?.summary.requests));
            if let Ok(report) = &mut outcome.result {
                report.summary.requests += requests.unwrap_or(0);
            }
        }
        outcomes.retain(|o| failed.contains(&o.target));
        outcomes.extend(written);
        done.push(outcomes);
    }
    let mut merged = merge(done.into_iter(), &options.targets);
    for outcome in &mut merged {
        let Some(spec) = writing.targets.iter().find(|t| t.label() == outcome.target) else {
            continue;
        };
        if let Ok(report) = &mut outcome.result
            && let Err(e) = settle_catalog(spec, report, options.jobs)
        {
            outcome.result = Err(e);
        }
    }
    Ok(merged)
}

/// After the last batch: settle the catalog once, if any batch wrote it (as every publish
/// does after its writes, [`settle`]), counting what it took in `report`.
fn settle_catalog(spec: &TargetSpec, report: &mut Report, jobs: usize) -> Result<(), Error> {
    let wrote = (report.summary.phases.iter())
        .any(|p| p.order == Some(Phase::Catalog) && p.objects_to_write > 0);
    if !wrote {
        return Ok(());
    }
    let target = target::open(spec, jobs)?;
    let pool = sync::worker_pool(jobs)?;
    let settled = crate::lists::settle(target.store.as_ref(), &BTreeSet::new(), true, &pool)?;
    report.summary.lists_repaired += settled.rewritten;
    report.summary.requests += target.requests.get();
    Ok(())
}

/// Have glibc hand freed memory back to the system as soon as it can: keep large blocks out of
/// its heaps (`M_MMAP_THRESHOLD` fixed at its default, which also stops it rising as blocks
/// are freed) and trim the top of a heap on every free (`M_TRIM_THRESHOLD` 0). By default it
/// keeps what a batch freed in its per-thread arenas, and the next batch's allocations do not
/// all land there, so the peak RSS of a batched publish would still grow with the catalog:
/// measured at 50,000 images in batches of 500 on a directory target, 119 MB without, 75 MB
/// with, in the same time. Set before the first image is read.
fn return_freed_memory_promptly() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt has no preconditions; glibc serialises it with every allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 0);
    }
}

/// Each target's outcomes of every batch as one: the reports merged ([`Report::absorb`]), or
/// the first failure.
fn merge(batches: impl Iterator<Item = Vec<Outcome>>, targets: &[TargetSpec]) -> Vec<Outcome> {
    let mut merged: Vec<Outcome> = Vec::new();
    for outcome in batches.flatten() {
        let Some(into) = merged.iter_mut().find(|o| o.target == outcome.target) else {
            merged.push(outcome);
            continue;
        };
        match (&mut into.result, outcome.result) {
            (Ok(report), Ok(more)) => report.absorb(more),
            (Ok(_), Err(e)) => into.result = Err(e),
            (Err(_), _) => {}
        }
    }
    merged.sort_by_key(|o| targets.iter().position(|t| t.label() == o.target));
    // In the order one pass would list them.
    for report in merged.iter_mut().filter_map(|o| o.result.as_mut().ok()) {
        (report.summary.tags).sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    }
    merged
}

/// `f` of each of `items`, on a thread of its own when there are several.
fn each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The rules a publish holds its targets to beyond verification.
pub struct Governance {
    /// Tags that never move (the config's, and `--immutable`).
    pub immutable: Immutable,
    /// Which tags `--prune` keeps although the config no longer names them.
    pub retention: Retention,
}

impl Governance {
    /// The config's rules and the flags'.
    pub fn new(config: &Config, options: &Options) -> Result<Governance, Error> {
        let mut rules = config.immutable.clone();
        if !options.immutable.is_empty() {
            rules.push(ImmutableRule {
                repository: None,
                tags: options.immutable.clone(),
            });
        }
        Ok(Governance {
            immutable: Immutable::new(&rules)
                .map_err(|e| Error::Usage(format!("immutable tags: {e}")))?,
            retention: Retention::new(&config.retention)
                .map_err(|e| Error::Usage(format!("[[retention]]: {e}")))?,
        })
    }

    /// The tags and repositories a plan keeps from what the target holds: all of them,
    /// unless `prune`; then only the tags that are immutable or that a retention rule keeps.
    pub fn existing(&self, inventory: &Inventory, prune: bool) -> Existing {
        if !prune {
            return inventory.existing.clone();
        }
        let verdicts = if self.retention.is_empty() {
            Default::default()
        } else {
            let tags = retention::dated(inventory.objects.values());
            self.retention.judge(&tags, jiff::Timestamp::now())
        };
        let mut existing = Existing::default();
        for (repo, tags) in &inventory.existing.tags {
            for tag in tags {
                let retained = verdicts.get(&(repo.clone(), tag.clone())) == Some(&true);
                if retained || self.immutable.covers(repo, tag) {
                    existing
                        .tags
                        .entry(repo.clone())
                        .or_default()
                        .insert(tag.clone());
                    existing.repositories.insert(repo.clone());
                }
            }
        }
        existing
    }
}

/// Stages 2 and 3 for one target, and its governance checks: nothing is written.
fn prepare(
    images: &[VerifiedImage],
    spec: TargetSpec,
    governance: &Governance,
    options: &Options,
) -> Result<(Prepared, Diff), Error> {
    let target = target::open(&spec, options.jobs)?;
    let pool = sync::worker_pool(options.jobs)?;
    let inventory = inventory(&target, images, options.prune, &pool)?;
    if !options.allow_yanked {
        yank::refuse_yanked(target.store.as_ref(), &inventory, images)?;
    }
    let existing = governance.existing(&inventory, options.prune);
    let site = plan(&target, images, &inventory, existing.clone(), &pool)?;
    let mut diff = diff(&site, &inventory, options.prune);
    if options.prune {
        keep(&mut diff, &site, &existing, &governance.immutable);
    }
    immutable::guard(
        target.store.as_ref(),
        &inventory,
        &site.tags,
        &mut diff.changes,
        &governance.immutable,
    )?;
    let prepared = Prepared {
        spec,
        target,
        pool,
        inventory,
        site,
    };
    Ok((prepared, diff))
}

/// With `--prune`: take the tags `existing` keeps (and their records) out of the removals, and
/// say which the config no longer names and why they stay.
fn keep(diff: &mut Diff, site: &Site, existing: &Existing, immutable: &Immutable) {
    let kept = |repo: &str, tag: &str| existing.tags.get(repo).is_some_and(|t| t.contains(tag));
    diff.removals.retain(|r| {
        let tag = site::parse_tag_key(&r.key).or_else(|| site::parse_tag_record_key(&r.key));
        tag.is_none_or(|(repo, tag)| !kept(repo, tag))
    });
    let planned: BTreeSet<(&str, &str)> = site
        .tags
        .iter()
        .map(|t| (t.repository.as_str(), t.tag.as_str()))
        .collect();
    for (repo, tags) in &existing.tags {
        for tag in tags
            .iter()
            .filter(|t| !planned.contains(&(repo.as_str(), t.as_str())))
        {
            diff.kept.push(KeptTag {
                repository: repo.clone(),
                tag: tag.clone(),
                by: if immutable.covers(repo, tag) {
                    "immutable"
                } else {
                    "retention"
                },
            });
        }
    }
}

/// Stages 5 and 6 for one target: write (unless a dry run), settle (the catalog too if
/// `with_catalog`), report.
fn write(
    p: &Prepared,
    hashed: &Hashed,
    images: &[VerifiedImage],
    options: &Options,
    with_catalog: bool,
) -> Result<Report, Error> {
    let mut summary = sync::summarize(
        p.target.store.name(),
        &p.site,
        hashed.changes(),
        hashed.removals(),
    );
    summary.kept_tags = hashed.0.kept.clone();
    if !options.dry_run {
        summary = apply(&p.target, hashed, summary, &p.pool, options.progress)?;
        summary = settle(
            &p.target,
            &p.inventory,
            hashed,
            summary,
            &p.pool,
            with_catalog,
        )?;
        summary.index_written = index(&p.target, images, hashed, &p.pool)?;
    }
    let name = p.spec.name.clone();
    Ok(finish(
        &p.target,
        name,
        images,
        &p.inventory,
        hashed,
        summary,
        options,
    ))
}

/// Stage 1: read every image and verify its structure; every image must have a tag.
pub fn read(config: &Config, trust: Option<&TrustPolicy>) -> Result<Vec<VerifiedImage>, Error> {
    read_specs(&config.images, config, trust)
}

/// Stage 1 for `specs` of `config`'s images.
fn read_specs(
    specs: &[ImageSpec],
    config: &Config,
    trust: Option<&TrustPolicy>,
) -> Result<Vec<VerifiedImage>, Error> {
    let images = verify::read_all(specs, &config.policy, trust).map_err(Error::Verify)?;
    check_tagged(&images)?;
    Ok(images)
}

/// Every image must have a tag.
fn check_tagged(images: &[VerifiedImage]) -> Result<(), Error> {
    if let Some(untagged) = images.iter().find(|i| i.tags.is_empty()) {
        return Err(Error::Usage(format!(
            "image {} from layout {} has no tag: give one with --tag (or `tags` in the config)",
            untagged.name(),
            untagged.layout.display()
        )));
    }
    Ok(())
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

/// Stage 2b: the site to make of the images, keeping the tags and repositories `existing`
/// names of what the target has ([`Governance::existing`]: everything, unless `--prune`), and always
/// the referrers it lists: where the plan would change a stored referrers index, that index is
/// read and its entries kept (one GET per index that differs; none on a no-op re-publish).
pub fn plan(
    target: &Target,
    images: &[VerifiedImage],
    inventory: &Inventory,
    mut existing: Existing,
    pool: &rayon::ThreadPool,
) -> Result<Site, Error> {
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
    Diff {
        changes,
        removals,
        kept: Vec::new(),
    }
}

/// Stage 4: hash every blob any of the diffs sends (not those copied or already there), each
/// once however many targets need it; but not those each diff's `uploads` proves itself as it
/// sends them ([`Uploads::proves`]; `None`: nothing is sent, as on a dry run).
pub fn hash(
    images: &[VerifiedImage],
    diffs: Vec<(Diff, Option<Uploads>)>,
    mode: progress::Mode,
) -> Result<Vec<Hashed>, Error> {
    let sent: HashSet<&Path> = diffs
        .iter()
        .flat_map(|(d, uploads)| d.changes.iter().map(move |c| (c, uploads)))
        .filter(|(c, _)| c.write && c.copy_from.is_none())
        .filter_map(|(c, uploads)| match &c.object.body {
            Body::File { path, len, .. } if !uploads.is_some_and(|u| u.proves(*len)) => {
                Some(path.as_path())
            }
            _ => None,
        })
        .collect();
    verify::hash_blobs(images, |b| sent.contains(b.path.as_path()), mode).map_err(Error::Verify)?;
    Ok(diffs.into_iter().map(|(d, _)| Hashed(d)).collect())
}

/// Stage 5a: clear what killed runs left where this run uploads, then write (and remove)
/// phase by phase.
pub fn apply(
    target: &Target,
    hashed: &Hashed,
    mut summary: Summary,
    pool: &rayon::ThreadPool,
    mode: progress::Mode,
) -> Result<Summary, Error> {
    let store = target.store.as_ref();
    let Diff {
        changes, removals, ..
    } = &hashed.0;
    for prefix in sync::upload_prefixes(changes) {
        summary.stale_removed += store.clean_stale(&prefix, STALE_AFTER)?;
    }
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

/// Stage 5b: settle every tag list this run wrote or removed, and the catalog if it changed
/// (and `with_catalog`);
/// then make sure what gc had marked and this run wrote anew is still there.
pub fn settle(
    target: &Target,
    inventory: &Inventory,
    hashed: &Hashed,
    mut summary: Summary,
    pool: &rayon::ThreadPool,
    with_catalog: bool,
) -> Result<Summary, Error> {
    let Diff {
        changes, removals, ..
    } = &hashed.0;
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
    catalog &= with_catalog;
    if catalog || !lists.is_empty() {
        summary.lists_repaired =
            crate::lists::settle(target.store.as_ref(), &lists, catalog, pool)?.rewritten;
    }
    Ok(summary)
}

/// Stage 5c: add the images' packages to the package index `sbom search` reads, and settle
/// the tag maps of the repositories this run touched ([`crate::packages`]); returns the
/// index objects written.
pub fn index(
    target: &Target,
    images: &[VerifiedImage],
    hashed: &Hashed,
    pool: &rayon::ThreadPool,
) -> Result<u64, Error> {
    let Diff {
        changes, removals, ..
    } = &hashed.0;
    Ok(crate::packages::update(target.store.as_ref(), images, changes, removals, pool)?.written)
}

/// Stage 6: the report (of the target called `name`, if the config names it), and (unless a
/// dry run) an event per tag created, moved or removed.
pub fn finish(
    target: &Target,
    name: Option<String>,
    images: &[VerifiedImage],
    inventory: &Inventory,
    hashed: &Hashed,
    mut summary: Summary,
    options: &Options,
) -> Report {
    summary.requests = target.requests.get();
    let mut report = Report {
        name,
        summary,
        sboms: crate::report::sboms(images),
        images: crate::report::published(images, &hashed.0.changes),
        events: None,
    };
    if let Some(events) = options.events.as_ref().filter(|_| !options.dry_run) {
        let source = events.source.as_deref().unwrap_or(target.store.name());
        let name = report.name.as_deref().unwrap_or(target.store.name());
        let removed = report.summary.removed_tags.iter().map(|t| {
            let key = site::tag_key(&t.repository, &t.tag);
            let digest = inventory.objects.get(&key).and_then(|o| o.sha256.clone());
            let gone = events::TagRemoved {
                target: name.to_string(),
                repository: t.repository.clone(),
                tag: t.tag.clone(),
                digest,
                reason: None,
            };
            events::removed(source, &gone)
        });
        let all = events::published(source, name, &report.images).and_then(|mut list| {
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
