//! The command line: parse flags, call the pipeline, print results. Nothing else lives here.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use indicatif::HumanBytes;

use crate::config::{Config, ImageSpec};
use crate::error::Error;
use crate::progress;
use crate::publish;
use crate::store::TargetSpec;
use crate::sync::Report;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error
  2  usage error (bad flags, names or config)
  3  verification failed: nothing was written (check: the registry is inconsistent)
  4  target error: what was written is consistent; re-run to converge";

/// Publish OCI image layouts (apko, skopeo, cosign save) as a static container registry.
///
/// Images are verified (every digest, size and media type), then written as the files a
/// registry client GETs, so docker, podman, skopeo, containerd and crane pull straight from
/// a bucket's HTTP endpoint or a local preview, with no registry server.
#[derive(Parser, Debug)]
#[command(name = "regpress", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify images and publish them to a target.
    #[command(after_help = EXIT_CODES)]
    Publish(PublishArgs),
    /// Verify images without publishing anything.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Serve a local-directory site as a bucket's website endpoint would, for previews and pulls.
    Serve(ServeArgs),
    /// Crawl a served registry as clients do and verify every digest, size and Content-Type.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Delete blobs, manifests and referrers no tag reaches, once older than a grace period.
    #[command(after_help = EXIT_CODES)]
    Gc(GcArgs),
}

/// Where the target is: flags, or a config's `[target]` (flags win).
#[derive(Args, Debug)]
struct TargetArgs {
    /// Target: `s3://BUCKET[/PREFIX]`, a directory (`./site`) or `file:///abs/path`.
    /// Overrides the config's `[target] to`.
    #[arg(long, value_name = "TARGET")]
    to: Option<String>,
    /// S3 endpoint URL (R2: https://<account>.r2.cloudflarestorage.com; default: AWS).
    /// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// S3 region (R2: auto). Default: AWS_REGION, else `auto` with --endpoint, else us-east-1.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// S3 addressing: `path` (default with --endpoint) or `virtual-host` (default for AWS).
    #[arg(long, value_name = "STYLE", value_parser = ["path", "virtual-host"])]
    url_style: Option<String>,
}

impl TargetArgs {
    /// The target: the config's `[target]` (if any) with these flags on top.
    fn resolve(self, config: Option<&TargetSpec>) -> Result<TargetSpec, Error> {
        let mut target = config.cloned().unwrap_or_default();
        if let Some(to) = self.to {
            target.to = to;
        }
        if target.to.is_empty() {
            return Err(Error::Usage(
                "no target: give --to (or [target] to = ... in the config)".to_string(),
            ));
        }
        let overrides = [
            (&mut target.endpoint, self.endpoint),
            (&mut target.region, self.region),
            (&mut target.url_style, self.url_style),
        ];
        for (field, flag) in overrides {
            if flag.is_some() {
                *field = flag;
            }
        }
        Ok(target)
    }
}

/// Which images: one layout with flags, or a config file.
#[derive(Args, Debug)]
struct ImageArgs {
    /// Repository to publish to, e.g. `chainguard/base`.
    #[arg(long, value_name = "NAME", requires = "layout")]
    repo: Option<String>,
    /// Tag to publish (repeatable). apko layouts need at least one; layouts that name their
    /// images use those names when no tag is given.
    #[arg(long = "tag", value_name = "TAG", requires = "layout")]
    tags: Vec<String>,
    /// For layouts listing several named images (skopeo, cosign save): the image's
    /// `org.opencontainers.image.ref.name`.
    #[arg(long = "ref", value_name = "NAME", requires = "layout")]
    ref_name: Option<String>,
    /// A regpress.toml listing images (`[[image]] layout, repository, tags`) and the target.
    #[arg(long, value_name = "FILE", conflicts_with = "layout")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PublishArgs {
    /// OCI image layout directory (or use --config).
    #[arg(value_name = "LAYOUT", required_unless_present = "config")]
    layout: Option<PathBuf>,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Desired state (for a cron re-publishing the whole catalog from --config): also remove
    /// the tags and repositories the config no longer names, and rewrite tag lists and catalog
    /// to match. Manifests and blobs stay until `regpress gc`.
    #[arg(long)]
    prune: bool,
    /// Blobs of at least this many bytes are uploaded in parts [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    multipart_threshold: Option<u64>,
    /// Bytes per multipart part, all parts but the last (min 5 MiB) [default: 16 MiB].
    #[arg(long, value_name = "BYTES")]
    part_size: Option<u64>,
    /// Verify and print the plan (per phase: objects and bytes to write, unchanged); write
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write a JSON report: objects and bytes written and unchanged, per phase and per tag.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Objects written in parallel.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16)]
    jobs: usize,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// OCI image layout directories (or use --config).
    #[arg(value_name = "LAYOUT", required_unless_present = "config")]
    layout: Vec<PathBuf>,
    #[command(flatten)]
    images: ImageArgs,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The registry's base URL, e.g. https://cr.example.com or http://127.0.0.1:5000.
    #[arg(value_name = "URL")]
    url: String,
    /// Only these repositories (repeatable); default: every repository in the catalog.
    #[arg(long = "repo", value_name = "NAME")]
    repos: Vec<String>,
    /// Blobs fetched in parallel.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 8)]
    jobs: usize,
    /// First make every tag list and the catalog agree with the tags the target holds (what
    /// a race between concurrent publishers can leave), writing to the target given with
    /// --to or --config; then crawl.
    #[arg(long)]
    repair: bool,
    /// With --repair: a regpress.toml whose `[target]` to repair.
    #[arg(long, value_name = "FILE", requires = "repair")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct GcArgs {
    /// A regpress.toml whose `[target]` to collect (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Keep unreachable objects younger than this (a client may be mid-pull, a publish may be
    /// uploading): e.g. 7d, 36h, 30m, 0s.
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    grace: String,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write a JSON report: objects listed, reachable, unreachable, kept in grace, deleted.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16)]
    jobs: usize,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The site directory (a `--to` target of `publish`).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
}

/// Parse the command line and run it.
pub fn run() -> Result<(), Error> {
    let cli = Cli::parse();
    let mode = if cli.quiet {
        progress::Mode::Quiet
    } else {
        progress::Mode::Auto
    };
    match cli.command {
        Command::Publish(args) => run_publish(args, mode, cli.quiet),
        Command::Verify(args) => run_verify(args, mode, cli.quiet),
        Command::Check(args) => run_check(args, cli.quiet),
        Command::Gc(args) => run_gc(args, cli.quiet),
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| Error::Internal(format!("cannot start runtime: {e}")))?;
            runtime.block_on(crate::serve::serve(args.dir, args.listen))
        }
    }
}

fn load_config(
    layouts: &[PathBuf],
    args: &ImageArgs,
    need_repository: bool,
) -> Result<Config, Error> {
    if let Some(path) = &args.config {
        return Config::load(path);
    }
    if need_repository && args.repo.is_none() {
        return Err(Error::Usage("--repo is required with a LAYOUT".to_string()));
    }
    let config = Config {
        target: None,
        images: layouts
            .iter()
            .map(|layout| ImageSpec {
                layout: layout.clone(),
                repository: args.repo.clone().unwrap_or_default(),
                tags: args.tags.clone(),
                ref_name: args.ref_name.clone(),
            })
            .collect(),
    };
    config.check(need_repository).map_err(Error::Usage)?;
    Ok(config)
}

fn run_publish(args: PublishArgs, mode: progress::Mode, quiet: bool) -> Result<(), Error> {
    let layouts: Vec<PathBuf> = args.layout.into_iter().collect();
    let config = load_config(&layouts, &args.images, true)?;
    let mut target = args.target.resolve(config.target.as_ref())?;
    target.multipart_threshold = args.multipart_threshold.or(target.multipart_threshold);
    target.part_size = args.part_size.or(target.part_size);
    let options = publish::Options {
        target,
        dry_run: args.dry_run,
        jobs: args.jobs,
        prune: args.prune,
        progress: mode,
    };
    let report = publish::publish(&config, &options)?;
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    if !quiet {
        print_report(&report);
    }
    Ok(())
}

fn run_verify(args: VerifyArgs, mode: progress::Mode, quiet: bool) -> Result<(), Error> {
    let config = load_config(&args.layout, &args.images, false)?;
    let images = publish::verify(&config, mode)?;
    if !quiet {
        for image in images {
            let bytes: u64 = image.blobs.iter().map(|b| b.size).sum();
            println!(
                "ok {} ({}) {} {}: {} manifests, {} blobs, {}",
                image.layout.display(),
                image.name(),
                image.root.digest,
                image.root.media_type,
                image.documents.len(),
                image.blobs.len(),
                HumanBytes(bytes)
            );
        }
    }
    Ok(())
}

/// The target of a command that takes only a target: flags on top of a config's `[target]`.
fn target_only(config: Option<&PathBuf>, args: TargetArgs) -> Result<TargetSpec, Error> {
    let config = config.map(|path| Config::load(path)).transpose()?;
    args.resolve(config.as_ref().and_then(|c| c.target.as_ref()))
}

fn run_gc(args: GcArgs, quiet: bool) -> Result<(), Error> {
    let options = crate::gc::Options {
        target: target_only(args.config.as_ref(), args.target)?,
        grace: crate::store::parse_duration(&args.grace)
            .map_err(|e| Error::Usage(format!("--grace: {e}")))?,
        dry_run: args.dry_run,
        jobs: args.jobs,
    };
    let report = crate::gc::gc(&options)?;
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    if !quiet {
        let mut out = std::io::stdout().lock();
        if report.dry_run {
            for key in &report.garbage {
                let _ = writeln!(out, "would delete {key}");
            }
        }
        for key in &report.missing {
            let _ = writeln!(out, "missing {key} (referenced by a reachable document)");
        }
        let _ = writeln!(
            out,
            "{}: {} objects, {} tags, {} documents read; {} reachable, {} unreachable ({}), {} younger than {} kept; {} {} ({}), {} requests{}",
            report.target,
            report.objects_listed,
            report.tags,
            report.documents_read,
            report.reachable,
            report.unreachable,
            HumanBytes(report.unreachable_bytes),
            report.kept_in_grace,
            args.grace,
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
    Ok(())
}

fn run_check(args: CheckArgs, quiet: bool) -> Result<(), Error> {
    if args.repair {
        let target = target_only(args.config.as_ref(), args.target)?;
        let store = crate::store::open(&target)?;
        let pool = crate::sync::worker_pool(args.jobs)?;
        let settled = crate::lists::repair(store.as_ref(), &pool)?;
        if !quiet {
            println!(
                "{}: {} tag lists or catalog rewritten",
                store.name(),
                settled.rewritten
            );
        }
    } else if args.config.is_some() || args.target.to.is_some() {
        return Err(Error::Usage(
            "a target is only used with --repair".to_string(),
        ));
    }
    let outcome = crate::check::check(&args.url, &args.repos, args.jobs).map_err(Error::Usage)?;
    if !quiet {
        println!(
            "{}: {} repositories, {} tags, {} manifests, {} blobs checked, {} problems",
            args.url,
            outcome.repositories,
            outcome.tags,
            outcome.manifests,
            outcome.blobs,
            outcome.problems.len()
        );
    }
    if outcome.problems.is_empty() {
        return Ok(());
    }
    Err(Error::Check(outcome.problems))
}

fn write_json(path: &std::path::Path, report: &impl serde::Serialize) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| Error::Internal(format!("cannot encode report: {e}")))?;
    std::fs::write(path, json)
        .map_err(|e| Error::Usage(format!("cannot write report {}: {e}", path.display())))
}

fn print_report(report: &Report) {
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
    let _ = writeln!(
        out,
        "{}: {} objects ({}) written, {} unchanged, {} removed, {} lists repaired, {} requests{}",
        report.target,
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
