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
    /// The companion handler for private repositories: registry tokens from OIDC identity.
    #[command(subcommand)]
    Auth(AuthCommand),
}

#[derive(Subcommand, Debug)]
enum AuthCommand {
    /// Serve /token (registry tokens for OIDC ID tokens), /check (a proxy's forward-auth:
    /// nginx auth_request, Caddy forward_auth, Traefik forwardAuth) and /.well-known/jwks.json.
    Serve(AuthServeArgs),
    /// Print a new P-256 signing key (PKCS#8 PEM) for auth.toml's `signing_key`.
    Keygen,
}

#[derive(Args, Debug)]
struct AuthServeArgs {
    /// The handler's config: service, realm, signing key, issuers, trust rules (see
    /// examples/auth.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on, overriding the config's `listen`; port 0 picks a free port
    /// (printed on start).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
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
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| Error::Internal(format!("cannot start runtime: {e}")))?;
            runtime.block_on(crate::serve::serve(args.dir, args.listen))
        }
        Command::Auth(AuthCommand::Serve(args)) => crate::auth::serve(&args.config, args.listen),
        Command::Auth(AuthCommand::Keygen) => {
            print!(
                "{}",
                crate::auth::token::generate_key().map_err(Error::Internal)?
            );
            Ok(())
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
    let mut target = config.target.clone().unwrap_or_default();
    if let Some(to) = args.to {
        target.to = to;
    }
    if target.to.is_empty() {
        return Err(Error::Usage(
            "no target: give --to (or [target] to = ... in the config)".to_string(),
        ));
    }
    let overrides = [
        (&mut target.endpoint, args.endpoint),
        (&mut target.region, args.region),
        (&mut target.url_style, args.url_style),
    ];
    for (field, flag) in overrides {
        if flag.is_some() {
            *field = flag;
        }
    }
    target.multipart_threshold = args.multipart_threshold.or(target.multipart_threshold);
    target.part_size = args.part_size.or(target.part_size);
    let options = publish::Options {
        target,
        dry_run: args.dry_run,
        jobs: args.jobs,
        progress: mode,
    };
    let report = publish::publish(&config, &options)?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::Internal(format!("cannot encode report: {e}")))?;
        std::fs::write(path, json)
            .map_err(|e| Error::Usage(format!("cannot write report {}: {e}", path.display())))?;
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

fn run_check(args: CheckArgs, quiet: bool) -> Result<(), Error> {
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

fn print_report(report: &Report) {
    let mut out = std::io::stdout().lock();
    let verb = if report.dry_run {
        "would write"
    } else {
        "write"
    };
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>12} {:>10} {:>12}",
        "phase", verb, "bytes", "unchanged", "bytes"
    );
    for p in &report.phases {
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>12} {:>10} {:>12}",
            p.phase,
            p.objects_to_write,
            HumanBytes(p.bytes_to_write).to_string(),
            p.objects_unchanged,
            HumanBytes(p.bytes_unchanged).to_string()
        );
    }
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>12} {:>10} {:>12}",
        "total",
        report.objects_to_write,
        HumanBytes(report.bytes_to_write).to_string(),
        report.objects_unchanged,
        HumanBytes(report.bytes_unchanged).to_string()
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
    let _ = writeln!(
        out,
        "{}: {} objects ({}) written, {} unchanged, {} requests{}",
        report.target,
        report.objects_written,
        HumanBytes(report.bytes_written),
        report.objects_unchanged,
        report.requests,
        if report.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
}
