//! The pipeline, wired once: read → verify → plan → diff → apply.
//!
//! `publish` and `verify` share it; the CLI (and later the Action and cron) only build a
//! [`Config`] and print what comes back. Verification always completes before anything is
//! written, so a refused image writes nothing. `verify` hashes every blob; `publish` reads the
//! target's inventory first and hashes every blob it will send, so a no-op re-publish does not
//! re-read gigabytes the bucket already holds (and checked against their digests on upload).
//! After the writes, the tag lists and catalog it wrote are settled against the tags present
//! ([`crate::lists`]), so a concurrent publisher's update is never lost.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
use crate::events;
use crate::progress;
use crate::site::{self, Body, Existing, Phase};
use crate::store::{self, TargetSpec};
use crate::sync::{self, Report};
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

/// Verify every image of `config`.
pub fn verify(config: &Config, mode: progress::Mode) -> Result<Vec<VerifiedImage>, Error> {
    let trust = trust_policy(config)?;
    verify::verify_all(&config.images, &config.policy, trust.as_ref(), mode).map_err(Error::Verify)
}

/// The config's signature trust policy, loaded when it asks for anything.
fn trust_policy(config: &Config) -> Result<Option<TrustPolicy>, Error> {
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
    let store = store::open(&options.target)?;
    let images =
        verify::read_all(&config.images, &config.policy, trust.as_ref()).map_err(Error::Verify)?;
    if let Some(untagged) = images.iter().find(|i| i.tags.is_empty()) {
        return Err(Error::Usage(format!(
            "image {} from layout {} has no tag: give one with --tag (or `tags` in the config)",
            untagged.name(),
            untagged.layout.display()
        )));
    }
    let repositories: BTreeSet<String> = images.iter().map(|i| i.repository.clone()).collect();
    let pool = sync::worker_pool(options.jobs)?;
    let inventory = sync::take_inventory(store.as_ref(), &repositories, options.prune, &pool)?;
    // With --prune the plan keeps nothing it was not given; what it leaves out is removed.
    let existing = if options.prune {
        Existing::default()
    } else {
        inventory.existing.clone()
    };
    let site = site::plan(&images, &existing).map_err(Error::Usage)?;
    let changes = sync::diff(&site, &inventory);
    let removals = if options.prune {
        site::prune(&site, inventory.objects.keys().map(String::as_str))
    } else {
        Vec::new()
    };
    // Hash every blob this run sends before anything is written (on a dry run too).
    let sent: HashSet<&Path> = changes
        .iter()
        .filter(|c| c.write && c.copy_from.is_none())
        .filter_map(|c| match &c.object.body {
            Body::File(path) => Some(path.as_path()),
            Body::Bytes(_) => None,
        })
        .collect();
    verify::hash_blobs(
        &images,
        |b| sent.contains(b.path.as_path()),
        options.progress,
    )
    .map_err(Error::Verify)?;
    let report = sync::summarize(store.name(), &site, &changes, &removals);
    let mut report = if options.dry_run {
        report
    } else {
        let mut report = report;
        if report.objects_to_write > 0 {
            report.stale_removed = store.clean_stale(STALE_AFTER)?;
        }
        let mut report = sync::apply(
            store.as_ref(),
            &changes,
            &removals,
            report,
            &pool,
            options.progress,
        )?;
        // Settle every list this run wrote or removed, and the catalog if it changed.
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
            report.lists_repaired =
                crate::lists::settle(store.as_ref(), &lists, catalog, &pool)?.rewritten;
        }
        report
    };
    report.requests = store.requests();
    report.sboms = crate::report::sboms(&images);
    report.images = crate::report::published(&images, &changes);
    if let Some(events) = options.events.as_ref().filter(|_| !options.dry_run) {
        let source = events.source.as_deref().unwrap_or(store.name());
        let removed = report.removed_tags.iter().map(|t| {
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
    Ok(report)
}
