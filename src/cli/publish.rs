//! `regpress publish`: verify images, then write what changed to a bucket or a directory.
//!
//! The flags only publish has (prune, multipart sizes, dry run, jobs) and the call to
//! [`crate::publish::publish`]; the groups it shares with other commands are in
//! [`super::flags`].

use std::path::PathBuf;

use clap::Args;

use super::flags::{
    EventArgs, ImageArgs, ReportArgs, SbomArgs, TargetArgs, event_options, load_config,
    resolve_targets,
};
use super::print::{self, Output};
use crate::byte_size::parse_bytes;
use crate::config::{Shard, TargetConfig};
use crate::error::{EXIT_CODES, Error};

/// What a publish reads and what it takes on trust (`--help`, after the flags).
const TRUST: &str = "\
Hashed: every index and manifest of every image (signatures and SBOMs included) as it is read,
and, before the first write, every blob this run uploads (configs and layers); on S3 each upload
carries x-amz-checksum-sha256 and the MD5 of what was sent is compared with the store's ETag, a
directory target hashes while copying. A blob copied server-side, or already in the target, is
not read.

Trusted in the target: an object it lists under a digest (a blob or a manifest by digest) with
the right size holds those bytes, unless the target records a sha256 for it that differs (then
it is rewritten, and never copied from) or gc has marked it for collection (then it is written
again). Tags, tag lists and the catalog are rewritten unless their recorded sha256 or
single-part ETag (MD5) matches; Content-Type and Cache-Control are compared where the listing
gives them; the entries of referrers indexes it holds are kept. See docs/publishing.md.";

const EXAMPLES: &str = "\
Examples:
  # one apko layout to a local directory, then preview it with `regpress serve site`
  regpress publish ./out --repo acme/base --tag latest --to ./site
  # what would change in a bucket (R2), as JSON; writes nothing
  regpress publish --config regpress.toml --dry-run --json
  # to R2, with a report and an event per tag created or moved
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... regpress publish ./out --repo acme/base \\
    --tag latest --to s3://images --endpoint https://<account>.r2.cloudflarestorage.com \\
    --report report.json --events-url https://hooks.example.com/regpress";

#[derive(Args, Debug)]
#[command(after_help = format!("{TRUST}\n\n{EXAMPLES}\n\n{EXIT_CODES}"))]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: objects and bytes written and unchanged, per phase, per tag and per \
     image (platforms, signers, SBOMs), and the events sent",
    "Print that report as JSON on stdout instead of the table",
)))]
pub(super) struct PublishArgs {
    /// OCI image layout directory (or use --config).
    #[arg(value_name = "LAYOUT", required_unless_present = "config")]
    layout: Option<PathBuf>,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    sbom: SbomArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Desired state (for a cron re-publishing the whole catalog from --config): also remove
    /// the tags and repositories the config no longer names, and rewrite tag lists and catalog
    /// to match. Manifests and blobs stay until `regpress gc`.
    #[arg(long)]
    prune: bool,
    /// Blobs of at least this size are uploaded in parts: bytes, or with a unit (64MiB,
    /// 100MB) [default: 64 MiB].
    #[arg(help_heading = "Target", long, value_name = "SIZE", value_parser = parse_bytes)]
    multipart_threshold: Option<u64>,
    /// Size of each multipart part but the last (min 5 MiB): bytes, or with a unit (8MiB)
    /// [default: 8 MiB].
    #[arg(help_heading = "Target", long, value_name = "SIZE", value_parser = parse_bytes)]
    part_size: Option<u64>,
    /// Verify and print the plan (per phase: objects and bytes to write, unchanged); write
    /// nothing.
    #[arg(help_heading = "Run", long)]
    dry_run: bool,
    #[command(flatten)]
    reporting: ReportArgs,
    /// Objects written in parallel.
    #[arg(
        help_heading = "Run",
        long,
        short = 'j',
        value_name = "N",
        default_value_t = 16
    )]
    jobs: usize,
    #[command(flatten)]
    events: EventArgs,
    /// Tags matching this glob never move once published (repeatable; with the config's
    /// `[policy] immutable`): moving one is refused before any write, --prune keeps them.
    #[arg(
        help_heading = "Governance",
        long = "immutable",
        value_name = "PATTERN"
    )]
    immutable: Vec<String>,
    /// Publish digests `regpress yank` took down (by default refused, naming the record).
    #[arg(help_heading = "Governance", long)]
    allow_yanked: bool,
    /// Most images verified, planned and held at once: a larger catalog (without --prune) goes
    /// in batches of whole repositories, all checked as a dry run before any is written, so
    /// memory is bounded by the batch, not the catalog.
    #[arg(
        help_heading = "Run",
        long,
        value_name = "IMAGES",
        default_value_t = crate::publish::DEFAULT_BATCH,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    batch: usize,
    /// Publish only the K-th of N shards of the config's repositories (a CI matrix of N runners
    /// into one bucket): repositories in name order dealt out in turn, each with all its images
    /// in one shard. Not with --prune.
    #[arg(
        help_heading = "Run",
        long,
        value_name = "K/N",
        conflicts_with = "prune"
    )]
    shard: Option<Shard>,
}

/// Verify and publish.
pub(super) fn run(args: PublishArgs, output: Output) -> Result<(), Error> {
    let layouts: Vec<PathBuf> = args.layout.into_iter().collect();
    let mut config = load_config(&layouts, &args.images, &args.sbom, true)?;
    if let Some(shard) = args.shard {
        if args.images.config.is_none() {
            return Err(Error::Usage(
                "--shard takes the shards of a --config's repositories; a LAYOUT is one".into(),
            ));
        }
        config.images = shard.select(config.images);
        if config.images.is_empty() {
            print::empty_shard(&shard, output);
            return Ok(());
        }
    }
    let flags = TargetConfig {
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size,
        ..args.target.table()
    };
    let options = crate::publish::Options {
        targets: resolve_targets(args.images.config.as_deref(), config.targets.clone(), flags)?,
        dry_run: args.dry_run,
        jobs: args.jobs,
        prune: args.prune,
        progress: output.progress(),
        events: event_options(&args.events, &config)?,
        immutable: args.immutable,
        allow_yanked: args.allow_yanked,
        batch: args.batch,
    };
    let mut outcomes = crate::publish::publish(&config, &options)?;
    if outcomes.len() > 1 {
        return replicated(outcomes, &args.reporting, output);
    }
    let report = outcomes
        .pop()
        .ok_or_else(|| Error::Internal("a publish to no target".into()))?
        .result?;
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &report)?;
    }
    print::sbom_warnings(&report.sboms, output);
    print::undelivered(report.events.as_ref());
    if args.reporting.json {
        return print::json(&report);
    }
    print::published(&report, output);
    Ok(())
}

/// The outcome of a publish to several targets: a report per target (a section each in the
/// table, `targets` and `failed` in the JSON), then the failed targets as the error (exit 4).
fn replicated(
    outcomes: Vec<crate::publish::Outcome>,
    reporting: &ReportArgs,
    output: Output,
) -> Result<(), Error> {
    let (replicated, failed) = crate::publish::Replicated::new(outcomes);
    if let Some(path) = &reporting.report {
        print::write_report(path, &replicated)?;
    }
    if let Some(first) = replicated.targets.first() {
        print::sbom_warnings(&first.sboms, output);
    }
    replicated
        .targets
        .iter()
        .for_each(|r| print::undelivered(r.events.as_ref()));
    if reporting.json {
        print::json(&replicated)?;
    } else {
        for report in &replicated.targets {
            print::published(report, output);
        }
    }
    failed.map_or(Ok(()), Err)
}
