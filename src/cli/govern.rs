//! `regpress retain`, `regpress yank` and `regpress unyank`: the commands that govern what a
//! published catalog keeps and what it has taken down.
//!
//! Their flags, the loop over the targets a config names (each target in turn: a replicated
//! catalog is governed everywhere), the events for the tags they remove, and their output.
//! What they decide is [`crate::governance`]'s.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::flags::{EventArgs, ReportArgs, TargetArgs, event_options, targets_only};
use super::print::{self, Output};
use crate::config::Config;
use crate::digest::Digest;
use crate::error::{EXIT_CODES, Error};
use crate::events::{self, Delivery, TagRemoved};
use crate::governance::immutable::Immutable;
use crate::governance::retention::{self, Retention};
use crate::governance::yank::{self, Ref};
use crate::store::Store;
use crate::target::{self, TargetSpec};

const RETAIN_EXAMPLES: &str = "\
Examples:
  # what the config's [[retention]] rules would remove, as JSON; removes nothing
  regpress retain --config regpress.toml --dry-run --json
  # remove the expired tags from every target of the config; then gc frees the bytes
  regpress retain --config regpress.toml && regpress gc --config regpress.toml";

const YANK_EXAMPLES: &str = "\
Examples:
  # take an image down: every tag reaching it, in every repository, goes
  regpress yank --config regpress.toml acme/app@sha256:4f1c… --reason 'CVE-2026-1234 in libfoo'
  # what would go
  regpress yank --to ./site acme/app:1.2.3 --reason test --dry-run
  # every image whose SBOM lists the package
  regpress sbom search --config regpress.toml 'libfoo@<1.2.4' --json |
    regpress yank --config regpress.toml --from-search - --reason 'CVE-2026-1234'";

const UNYANK_EXAMPLES: &str = "\
Examples:
  # let the digest be published again (its tags come back with the next publish)
  regpress unyank --config regpress.toml acme/app@sha256:4f1c…";

/// Where a governing command works: a config's targets, or `--to`.
#[derive(Args, Debug)]
pub(super) struct Where {
    /// A regpress.toml: its rules and every target it names (flags override `[target]`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
}

impl Where {
    /// The config (empty without --config) and the targets.
    fn resolve(&self) -> Result<(Config, Vec<TargetSpec>), Error> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let targets = targets_only(self.config.as_deref(), self.target.clone())?;
        Ok((config, targets))
    }
}

#[derive(Args, Debug)]
#[command(after_help = format!("{RETAIN_EXAMPLES}\n\n{EXIT_CODES}"))]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report per target: tags matched, kept, removed, and expired but immutable",
    "Print that report as JSON on stdout instead of the lines",
)))]
pub(super) struct RetainArgs {
    #[command(flatten)]
    run: Run,
}

/// What retain and yank share: where, a dry run, the report, events, parallelism.
#[derive(Args, Debug)]
pub(super) struct Run {
    #[command(flatten)]
    at: Where,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    reporting: ReportArgs,
    #[command(flatten)]
    events: EventArgs,
    /// Requests in flight at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16)]
    jobs: usize,
}

#[derive(Args, Debug)]
#[command(after_help = format!("{YANK_EXAMPLES}\n\n{EXIT_CODES}"))]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report per target: the digests yanked, their records, the tags removed",
    "Print that report as JSON on stdout instead of the lines",
)))]
pub(super) struct YankArgs {
    /// What to take down: `repo@sha256:…`, or `repo:tag` (its digest).
    #[arg(value_name = "REF", required_unless_present = "from_search")]
    refs: Vec<String>,
    /// Also take down every match of a `regpress sbom search --json` result (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    from_search: Option<PathBuf>,
    /// Why: kept in the yank record, shown to whoever publishes the digest again, and sent
    /// with the tag-removed events.
    #[arg(long, value_name = "TEXT")]
    reason: String,
    #[command(flatten)]
    run: Run,
}

#[derive(Args, Debug)]
#[command(after_help = format!("{UNYANK_EXAMPLES}\n\n{EXIT_CODES}"))]
pub(super) struct UnyankArgs {
    /// The yanked digests: `repo@sha256:…` or `sha256:…`.
    #[arg(value_name = "DIGEST", required = true)]
    digests: Vec<String>,
    #[command(flatten)]
    at: Where,
    /// Say which records would go; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

impl Run {
    /// `work` on each target in turn (what it removed, and the events for that), then the
    /// events sent, the lines (`lines`, unless --json or quiet) and the report.
    fn each<R: Serialize>(
        &self,
        config: &Config,
        targets: Vec<TargetSpec>,
        output: Output,
        lines: fn(&R),
        work: impl Fn(
            &dyn Store,
            &TargetSpec,
            bool,
            &rayon::ThreadPool,
        ) -> Result<(R, Vec<TagRemoved>), Error>,
    ) -> Result<(), Error> {
        let events = event_options(&self.events, config)?;
        let mut reports = Vec::new();
        for spec in &targets {
            let target = target::open(spec, self.jobs)?;
            let pool = crate::sync::worker_pool(self.jobs)?;
            let store = target.store.as_ref();
            let (report, removed) = work(store, spec, self.dry_run, &pool)?;
            let told = Told {
                events: tell(&events, store.name(), self.dry_run, removed),
                report,
            };
            print::undelivered(told.events.as_ref());
            if !self.reporting.json && output != Output::Quiet {
                lines(&told.report);
            }
            reports.push(told);
        }
        finish(reports, &self.reporting)
    }
}

/// One target's report, with the events sent for it.
#[derive(Serialize)]
struct Told<R> {
    #[serde(flatten)]
    report: R,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Delivery>,
}

/// Apply the config's `[[retention]]` rules to each of its targets.
pub(super) fn retain(args: RetainArgs, output: Output) -> Result<(), Error> {
    let args = args.run;
    let (config, targets) = args.at.resolve()?;
    if config.retention.is_empty() {
        return Err(Error::Usage(
            "no [[retention]] rules: give --config with `[[retention]]` tables (repository, \
             tag, keep_last, keep_within)"
                .into(),
        ));
    }
    let retention = Retention::new(&config.retention).map_err(Error::Usage)?;
    let immutable = Immutable::new(&config.immutable).map_err(Error::Usage)?;
    args.each(
        &config,
        targets,
        output,
        retained,
        |store, spec, dry_run, pool| {
            let report = retention::retain(store, &retention, &immutable, dry_run, pool)?;
            let removed = report
                .removed_tags
                .iter()
                .map(|t| gone(spec, t, "retention"))
                .collect();
            Ok((report, removed))
        },
    )
}

/// Yank the refs from each target.
pub(super) fn yank(args: YankArgs, output: Output) -> Result<(), Error> {
    let mut refs = args
        .refs
        .iter()
        .map(|r| Ref::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Usage)?;
    if let Some(path) = &args.from_search {
        let found = yank::refs_from_search(&read_input(path)?)
            .map_err(|e| Error::Usage(format!("--from-search {}: {e}", path.display())))?;
        refs.extend(found);
    }
    if refs.is_empty() {
        return Err(Error::Usage(
            "nothing to yank: the search matched nothing".into(),
        ));
    }
    if args.reason.trim().is_empty() {
        return Err(Error::Usage(
            "--reason is empty: say why the image is taken down".into(),
        ));
    }
    let reason = args.reason;
    let args = args.run;
    let (config, targets) = args.at.resolve()?;
    args.each(
        &config,
        targets,
        output,
        yanked,
        |store, spec, dry_run, pool| {
            let report = yank::yank(store, &refs, &reason, dry_run, pool)?;
            let removed = report
                .removed_tags
                .iter()
                .map(|t| TagRemoved {
                    target: spec.label().to_string(),
                    repository: t.repository.clone(),
                    tag: t.tag.clone(),
                    digest: Some(t.digest.clone()),
                    reason: Some(reason.clone()),
                })
                .collect();
            Ok((report, removed))
        },
    )
}

/// Remove the yank records of the digests from each target.
pub(super) fn unyank(args: UnyankArgs, output: Output) -> Result<(), Error> {
    let digests = args
        .digests
        .iter()
        .map(|d| {
            let digest = d.rsplit_once('@').map_or(d.as_str(), |(_, d)| d);
            Digest::parse(digest).map_err(|e| Error::Usage(format!("{d:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (_, targets) = args.at.resolve()?;
    for spec in &targets {
        let target = target::open(spec, 4)?;
        let store = target.store.as_ref();
        let lifted = yank::unyank(store, &digests, args.dry_run)?;
        if output != Output::Quiet {
            let verb = if args.dry_run {
                "would remove"
            } else {
                "removed"
            };
            for key in &lifted {
                println!("{verb} yank record {key}");
            }
            println!(
                "{}: {} of {} digests were yanked",
                store.name(),
                lifted.len(),
                digests.len()
            );
        }
    }
    Ok(())
}

/// The event for a tag removed by retention.
fn gone(spec: &TargetSpec, tag: &retention::Dated, reason: &str) -> TagRemoved {
    TagRemoved {
        target: spec.label().to_string(),
        repository: tag.repository.clone(),
        tag: tag.tag.clone(),
        digest: None,
        reason: Some(reason.to_string()),
    }
}

/// Send a tag-removed event for each of `removed` (not on a dry run).
fn tell(
    events: &Option<crate::publish::Events>,
    store: &str,
    dry_run: bool,
    removed: Vec<TagRemoved>,
) -> Option<Delivery> {
    let events = events.as_ref().filter(|_| !dry_run)?;
    let source = events.source.as_deref().unwrap_or(store);
    let built: Result<Vec<_>, String> =
        removed.iter().map(|r| events::removed(source, r)).collect();
    Some(match built {
        Ok(list) if list.is_empty() => return None,
        Ok(list) => events.sink.deliver(list),
        Err(e) => Delivery::not_built(&events.sink, e),
    })
}

/// The report: one target's as it is, several as `{"targets": [...]}`.
fn finish<R: Serialize>(mut reports: Vec<Told<R>>, reporting: &ReportArgs) -> Result<(), Error> {
    #[derive(Serialize)]
    struct Several<R> {
        targets: Vec<Told<R>>,
    }
    if reports.len() == 1 {
        let one = reports.remove(0);
        if let Some(path) = &reporting.report {
            print::write_report(path, &one)?;
        }
        return if reporting.json {
            print::json(&one)
        } else {
            Ok(())
        };
    }
    let several = Several { targets: reports };
    if let Some(path) = &reporting.report {
        print::write_report(path, &several)?;
    }
    if reporting.json {
        print::json(&several)?;
    }
    Ok(())
}

/// `-`: stdin; else the file.
fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Usage(format!("--from-search -: cannot read stdin: {e}")))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))
}

/// The lines of a retention run.
fn retained(report: &retention::Report) {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for t in &report.removed_tags {
        println!("{verb} {}:{}", t.repository, t.tag);
    }
    for t in &report.immutable_kept {
        println!("kept {}:{} (expired, but immutable)", t.repository, t.tag);
    }
    println!(
        "{}: {} tags matched by rules, {} kept, {} {verb}, {} lists rewritten{}",
        report.target,
        report.matched,
        report.kept,
        report.removed_tags.len(),
        report.lists_rewritten,
        if report.dry_run {
            " (dry run: nothing removed)"
        } else {
            ""
        }
    );
}

/// The lines of a yank.
fn yanked(report: &yank::Report) {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for y in &report.yanked {
        println!("yanked {} (record {})", y.digest, y.record);
    }
    for t in &report.removed_tags {
        println!("{verb} {}:{} ({})", t.repository, t.tag, t.digest);
    }
    println!(
        "{}: {} digests yanked, {} tags {verb}, {} lists rewritten{}",
        report.target,
        report.yanked.len(),
        report.removed_tags.len(),
        report.lists_rewritten,
        if report.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
}
