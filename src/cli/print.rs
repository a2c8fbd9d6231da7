//! What the commands print about a run: the human lines and tables (as much as `-q` and `-v`
//! ask for), warnings on stderr, `--json` on stdout and `--report` files.
//!
//! The wording and layout of every line live here, in one place for the README's examples and
//! `--verbose`'s help to match. What a command exists to emit (a completion script, a man page,
//! a key, a Markdown summary) its own file writes. This module uses nothing else of the command
//! line: the command files use it.

use std::io::Write;
use std::path::Path;

use indicatif::HumanBytes;

use crate::check::Outcome;
use crate::error::Error;
use crate::progress;
use crate::publish::Report;
use crate::report::{self, ImageReport, SbomReport, VerifyReport};
use crate::verify::tuf::{Fetched, Origin};
use sigstore_verify::trust_root::TrustedRoot;

/// How much a run prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Output {
    Quiet,
    Normal,
    Verbose,
}

impl Output {
    /// From the global `--quiet` and `--verbose` (which conflict).
    pub(super) fn new(quiet: bool, verbose: bool) -> Output {
        match (quiet, verbose) {
            (true, _) => Output::Quiet,
            (false, true) => Output::Verbose,
            (false, false) => Output::Normal,
        }
    }

    /// The progress reporting that goes with it: none when quiet.
    pub(super) fn progress(self) -> progress::Mode {
        match self {
            Output::Quiet => progress::Mode::Quiet,
            Output::Normal | Output::Verbose => progress::Mode::Auto,
        }
    }
}

/// Write a JSON report (`--report FILE`).
pub(super) fn write_report(path: &Path, report: &impl serde::Serialize) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| Error::Internal(format!("cannot encode report: {e}")))?;
    std::fs::write(path, json)
        .map_err(|e| Error::Usage(format!("cannot write report {}: {e}", path.display())))
}

/// Print a report as pretty JSON on stdout (`--json`).
pub(super) fn json(report: &impl serde::Serialize) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Internal(format!("cannot encode report: {e}")))?;
    println!("{json}");
    Ok(())
}

/// What the SBOMs' checks warn of (NTIA elements missing, …), on stderr, unless quiet.
pub(super) fn sbom_warnings(sboms: &[SbomReport], output: Output) {
    if output != Output::Quiet {
        for warning in report::warnings(sboms) {
            eprintln!("{warning}");
        }
    }
}

/// A warning on stderr for each publish event not delivered, even when quiet: the publish
/// succeeded, but whoever waits for the event will not hear of it.
pub(super) fn undelivered(delivery: Option<&crate::events::Delivery>) {
    if let Some(delivery) = delivery {
        for failed in &delivery.failed {
            eprintln!(
                "warning: event {} for {} not delivered to {}: {}; the run itself succeeded",
                failed.ty,
                failed.subject,
                delivery.url,
                failed.error.as_deref().unwrap_or("unknown error")
            );
        }
    }
}

/// A publish: with `-v` a line per image (as `verify` prints it, then its objects and tags),
/// then the table.
pub(super) fn published(report: &Report, output: Output) {
    if output == Output::Quiet {
        return;
    }
    if output == Output::Verbose {
        for image in &report.images {
            image_lines(&image.image, output);
            println!(
                "  objects: {} to write, {} unchanged; tags created or moved: {}",
                image.objects_to_write,
                image.objects_unchanged,
                if image.tags_changed.is_empty() {
                    "none".to_string()
                } else {
                    image.tags_changed.join(", ")
                }
            );
        }
    }
    table(report);
}

/// A verify: the lines of each image.
pub(super) fn verified(report: &VerifyReport, output: Output) {
    if output != Output::Quiet {
        for image in &report.images {
            image_lines(image, output);
        }
    }
}

/// The lines for one verified image: what it is, then (verbose) its platforms, its signers,
/// attachments, SBOMs and provenance.
fn image_lines(image: &ImageReport, output: Output) {
    println!(
        "ok {} ({}) {} {}: {} manifests, {} blobs, {}, {} SBOMs",
        image.layout.display(),
        image.image,
        image.digest,
        image.media_type,
        image.manifests,
        image.blobs,
        HumanBytes(image.blob_bytes),
        image.sboms.len()
    );
    if output == Output::Verbose && !image.platforms.is_empty() {
        println!("  platforms: {}", image.platforms.join(", "));
    }
    for signer in &image.signers {
        println!("  signed by {signer}");
    }
    for attachment in &image.attachments {
        println!(
            "  {} {} on {}",
            attachment.digest, attachment.summary, attachment.subject
        );
    }
    for sbom in &image.sboms {
        println!("{}", report::sbom_line(sbom));
    }
    for provenance in &image.provenance {
        println!("{}", report::provenance_line(provenance));
    }
}

/// A gc: what would be (or, with `-v`, was) deleted, what is missing, and the summary line.
pub(super) fn collected(report: &crate::gc::Report, grace: &str, output: Output) {
    if output == Output::Quiet {
        return;
    }
    let mut out = std::io::stdout().lock();
    if report.dry_run {
        for key in &report.garbage {
            let _ = writeln!(out, "would delete {key}");
        }
    } else if output == Output::Verbose {
        for key in &report.garbage {
            let _ = writeln!(out, "deleted {key}");
        }
    }
    for key in &report.missing {
        let _ = writeln!(out, "missing {key} (referenced by a reachable document)");
    }
    let _ = writeln!(
        out,
        "{}: {} objects, {} tags, {} documents read; {} reachable, {} unreachable ({}), {} kept in the {} grace ({} marked now); {} {} ({}), {} requests{}",
        report.target,
        report.objects_listed,
        report.tags,
        report.documents_read,
        report.reachable,
        report.unreachable,
        HumanBytes(report.unreachable_bytes),
        report.kept_in_grace,
        grace,
        report.marked,
        if report.dry_run {
            report.garbage.len() as u64
        } else {
            report.deleted
        },
        if report.dry_run {
            "to delete"
        } else {
            "deleted"
        },
        HumanBytes(report.garbage_bytes),
        report.requests,
        if report.dry_run {
            " (dry run: nothing deleted)"
        } else {
            ""
        }
    );
}

/// `publish --shard K/N` of a config with fewer repositories than shards.
pub(super) fn empty_shard(shard: &crate::config::Shard, output: Output) {
    if output != Output::Quiet {
        println!(
            "shard {shard}: the config has fewer repositories than shards; nothing to publish"
        );
    }
}

/// `check --repair`: how many tag lists (and catalogs) the repair rewrote in `target`.
pub(super) fn repaired(target: &str, rewritten: u64, output: Output) {
    if output != Output::Quiet {
        println!("{target}: {rewritten} tag lists or catalog rewritten");
    }
}

/// What `check --repair` rewrote of the package index.
pub(super) fn reindexed(target: &str, written: u64, output: Output) {
    if output != Output::Quiet {
        println!("{target}: {written} package index objects rewritten");
    }
}

/// What `sbom search` found: a line per match, then how many and the GETs it took.
pub(super) fn found(found: &crate::packages::Found, output: Output) {
    for m in &found.matches {
        let platform = m.platform.as_deref().unwrap_or("-");
        let version = m.version.as_deref().unwrap_or("-");
        let purl = m.purl.as_deref().unwrap_or("-");
        println!(
            "{}:{}\t{platform}\t{} {version}\t{purl}\tsbom {}",
            m.repository, m.tag, m.package, m.sbom
        );
    }
    if output != Output::Quiet {
        eprintln!(
            "{} matches for {:?} ({} requests)",
            found.matches.len(),
            found.query,
            found.requests
        );
    }
}

/// What `check --repair` did with each bad blob.
pub(super) fn blobs_repaired(done: &[crate::repair::BlobRepair], output: Output) {
    use crate::repair::BlobRepair;
    if output == Output::Quiet {
        return;
    }
    for repair in done {
        match repair {
            BlobRepair::Rewritten { key, from } => {
                println!("rewrote {key} from {}", from.display())
            }
            BlobRepair::NotHeld { key } => {
                eprintln!("cannot repair {key}: no layout of the config holds its bytes")
            }
        }
    }
}

/// A check of the registry at `url`: with `-v` every tag crawled, then the summary line.
pub(super) fn checked(url: &str, outcome: &Outcome, output: Output) {
    if output == Output::Quiet {
        return;
    }
    if output == Output::Verbose {
        for tag in &outcome.checked {
            println!("ok {}:{} {}", tag.repository, tag.tag, tag.digest);
        }
    }
    println!(
        "{}: {} repositories, {} tags, {} manifests, {} referrers lists, {} blobs checked, {} problems",
        url,
        outcome.repositories,
        outcome.tags,
        outcome.manifests,
        outcome.referrers,
        outcome.blobs,
        outcome.problems.len()
    );
}

/// `sigstore verify-bundle`: what verified, and whose signature it is.
pub(super) fn bundle_verified(artifact: &str, signer: &str, output: Output) {
    if output != Output::Quiet {
        println!("verified {artifact} by {signer}");
    }
}

/// A trusted root (`trust-root`): where it came from, where it is cached, and what it lists.
pub(super) fn trusted_root(
    fetched: &Fetched,
    cache: Option<&Path>,
    output: Output,
) -> Result<(), Error> {
    let root = TrustedRoot::from_json(&fetched.json)
        .map_err(|e| Error::Refused(format!("the trusted root does not parse: {e}")))?;
    if output == Output::Quiet {
        return Ok(());
    }
    if let Origin::Fresh { .. } = fetched.origin {
        println!("{}", fetched.origin);
    }
    if let Some(dir) = cache {
        println!("cache: {}", dir.display());
    }
    let list = |items: Vec<&str>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    println!(
        "transparency logs: {}",
        list(root.tlogs.iter().map(|l| l.base_url.as_str()).collect())
    );
    println!(
        "certificate authorities: {}",
        list(
            root.certificate_authorities
                .iter()
                .map(|c| c.uri.as_str())
                .collect()
        )
    );
    println!(
        "CT logs: {}",
        list(root.ctlogs.iter().map(|l| l.base_url.as_str()).collect())
    );
    println!(
        "timestamp authorities: {}",
        list(
            root.timestamp_authorities
                .iter()
                .filter_map(|t| t.uri.as_deref())
                .collect()
        )
    );
    Ok(())
}

/// The publish table: per phase objects and bytes to write and unchanged, the totals, the tags
/// published and removed, the events and the summary line.
fn table(published: &Report) {
    let report = &published.summary;
    let mut out = std::io::stdout().lock();
    let verb = if report.dry_run {
        "would write"
    } else {
        "write"
    };
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>12} {:>10} {:>12} {:>8}",
        "phase", verb, "bytes", "unchanged", "bytes", "remove"
    );
    for p in &report.phases {
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>12} {:>10} {:>12} {:>8}",
            p.phase,
            p.objects_to_write,
            HumanBytes(p.bytes_to_write).to_string(),
            p.objects_unchanged,
            HumanBytes(p.bytes_unchanged).to_string(),
            p.objects_to_delete
        );
    }
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>12} {:>10} {:>12} {:>8}",
        "total",
        report.objects_to_write,
        HumanBytes(report.bytes_to_write).to_string(),
        report.objects_unchanged,
        HumanBytes(report.bytes_unchanged).to_string(),
        report.objects_to_delete
    );
    for tag in &report.tags {
        let _ = writeln!(
            out,
            "{} {}:{} {}",
            if report.dry_run {
                "planned"
            } else {
                "published"
            },
            tag.repository,
            tag.tag,
            tag.digest
        );
    }
    for tag in &report.removed_tags {
        let verb = if report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let _ = writeln!(out, "{verb} {}:{}", tag.repository, tag.tag);
    }
    for tag in &report.kept_tags {
        let _ = writeln!(
            out,
            "kept {}:{} ({}; the config no longer names it)",
            tag.repository, tag.tag, tag.by
        );
    }
    if let Some(events) = &published.events {
        let _ = writeln!(
            out,
            "events: {} delivered to {}, {} failed",
            events.delivered.len(),
            events.url,
            events.failed.len()
        );
    }
    let _ = writeln!(
        out,
        "{}: {} objects ({}) written, {} unchanged, {} removed, {} lists repaired, {} requests{}",
        published.name.as_ref().map_or_else(
            || report.target.clone(),
            |n| format!("{n} ({})", report.target)
        ),
        report.objects_written,
        HumanBytes(report.bytes_written),
        report.objects_unchanged,
        report.objects_deleted,
        report.lists_repaired,
        report.requests,
        if report.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
}
