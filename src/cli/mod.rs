//! The command line: parse flags, call the pipeline, print results. Nothing else lives here.

mod flags;
mod print;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::TargetConfig;
use crate::error::{EXIT_CODES, Error};
use crate::publish;
use crate::report::VerifyReport;
use crate::summary::{self, PublishReport};
use crate::verify::signature;
use crate::verify::trust::{PolicySpec, RootSource, SignerSpec, TrustPolicy};
use flags::{
    EventArgs, ImageArgs, ReportArgs, SbomArgs, TargetArgs, event_options, load_config,
    resolve_target, target_only,
};
use print::Output;
use sigstore_verify::types::{Artifact, Sha256Hash};

const PUBLISH_EXAMPLES: &str = "\
Examples:
  # one apko layout to a local directory, then preview it with `regpress serve site`
  regpress publish ./out --repo acme/base --tag latest --to ./site
  # what would change in a bucket (R2), as JSON; writes nothing
  regpress publish --config regpress.toml --dry-run --json
  # to R2, with a report and an event per tag created or moved
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... regpress publish ./out --repo acme/base \\
    --tag latest --to s3://images --endpoint https://<account>.r2.cloudflarestorage.com \\
    --report report.json --events-url https://hooks.example.com/regpress";

const VERIFY_EXAMPLES: &str = "\
Examples:
  regpress verify ./out
  regpress verify --config regpress.toml --sbom required --require-signature --json";

const CHECK_EXAMPLES: &str = "\
Examples:
  regpress check https://cr.example.com
  regpress check http://127.0.0.1:5000 --repo acme/base --json
  # rewrite tag lists and catalog a race left stale, then crawl
  regpress check https://cr.example.com --repair --config regpress.toml";

const SUMMARIZE_EXAMPLES: &str = "\
Examples:
  # what the GitHub Action runs after publish
  regpress summarize --report report.json --summary \"$GITHUB_STEP_SUMMARY\" --output \"$GITHUB_OUTPUT\"
  # a plan as a pull-request comment
  regpress publish --config regpress.toml --dry-run --report plan.json
  regpress summarize --report plan.json > plan.md
  # a publish that failed (exit 3) and left no report
  regpress summarize --exit-code 3 --summary \"$GITHUB_STEP_SUMMARY\"";

const GC_EXAMPLES: &str = "\
Examples:
  # what would be deleted, as JSON; deletes nothing
  regpress gc --config regpress.toml --dry-run --json
  # delete what no tag has reached for a week (the default grace)
  regpress gc --to s3://images --endpoint https://<account>.r2.cloudflarestorage.com
  regpress gc --to ./site --grace 0s";

/// Publish OCI image layouts (apko, skopeo, cosign save) as a static container registry.
///
/// Images are verified (every digest, size, media type, signature and SBOM), then written as
/// the files a registry client GETs, so docker, podman, skopeo, containerd and crane pull
/// straight from a bucket's HTTP endpoint or a local preview, with no registry server.
///
/// Start with `regpress publish --help`. Secrets come from the environment: AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (S3/R2), REGPRESS_EVENTS_URL and
/// REGPRESS_EVENTS_TOKEN (publish events).
#[derive(Parser, Debug)]
#[command(name = "regpress", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only errors (and what --json asks for).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more. publish: a line per image (digest, signers, attachments, SBOMs,
    /// platforms, objects to write, tags moved) before the table; verify: each image's
    /// platforms too; check: every tag crawled; gc: every object deleted.
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify images and publish them to a bucket or directory (only what changed is written).
    #[command(after_help = format!("{PUBLISH_EXAMPLES}\n\n{EXIT_CODES}"))]
    Publish(Box<PublishArgs>),
    /// Verify images (digests, signatures, SBOMs) without publishing anything.
    #[command(after_help = format!("{VERIFY_EXAMPLES}\n\n{EXIT_CODES}"))]
    Verify(VerifyArgs),
    /// Serve a local-directory site as a bucket's website endpoint would, for previews and pulls.
    #[command(after_help = "\
Example:
  regpress publish ./out --repo acme/base --tag latest --to ./site
  regpress serve ./site --listen 127.0.0.1:5000 &
  skopeo inspect --tls-verify=false docker://127.0.0.1:5000/acme/base:latest")]
    Serve(ServeArgs),
    /// Crawl a served registry as clients do and verify every digest, size and Content-Type.
    #[command(after_help = format!("{CHECK_EXAMPLES}\n\n{EXIT_CODES}"))]
    #[command(mut_arg("to", |a| a.requires("repair")))]
    #[command(mut_arg("endpoint", |a| a.requires("repair")))]
    #[command(mut_arg("region", |a| a.requires("repair")))]
    #[command(mut_arg("url_style", |a| a.requires("repair")))]
    Check(CheckArgs),
    /// Turn a publish report into a Markdown job summary and GitHub step outputs (the GitHub
    /// Action runs this after `publish --report`).
    #[command(after_help = SUMMARIZE_EXAMPLES)]
    Summarize(SummarizeArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(after_help = "\
Install:
  bash:  regpress completions bash > /etc/bash_completion.d/regpress
  zsh:   regpress completions zsh > \"${fpath[1]}/_regpress\"
  fish:  regpress completions fish > ~/.config/fish/completions/regpress.fish")]
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per subcommand into a directory.
    Man(ManArgs),
    /// Sigstore tools: verify a bundle as the sigstore-conformance suite drives clients.
    #[command(subcommand)]
    Sigstore(SigstoreCommand),
    /// The companion handler for private repositories: registry tokens from OIDC identity.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Delete blobs, manifests and referrers no tag reaches, once older than a grace period.
    #[command(after_help = format!("{GC_EXAMPLES}\n\n{EXIT_CODES}"))]
    Gc(GcArgs),
}

#[derive(Subcommand, Debug)]
enum SigstoreCommand {
    /// Verify a Sigstore bundle over a file or a digest, completely and offline: certificate
    /// chain, signed timestamps, transparency-log proofs, identity or key. Exit 0 = verified.
    #[command(after_help = EXIT_CODES)]
    VerifyBundle(VerifyBundleArgs),
}

#[derive(Args, Debug)]
struct VerifyBundleArgs {
    /// Use Sigstore's staging trusted root instead of production.
    #[arg(long, conflicts_with = "trusted_root")]
    staging: bool,
    /// The Sigstore bundle (`*.sigstore.json`).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The expected certificate identity (exact).
    #[arg(long, value_name = "ID", requires = "certificate_oidc_issuer")]
    certificate_identity: Option<String>,
    /// The expected OIDC issuer of the certificate.
    #[arg(long, value_name = "URL", requires = "certificate_identity")]
    certificate_oidc_issuer: Option<String>,
    /// Verify with this PEM public key instead of a certificate identity.
    #[arg(
        long,
        value_name = "PEM",
        conflicts_with = "certificate_identity",
        required_unless_present = "certificate_identity"
    )]
    key: Option<PathBuf>,
    /// A trusted_root.json (default: Sigstore's production root, embedded).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// The signed artifact: `sha256:<64 hex>` is a digest, anything else a file.
    #[arg(value_name = "FILE_OR_DIGEST")]
    artifact: String,
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

#[derive(Args, Debug)]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: objects and bytes written and unchanged, per phase, per tag and per \
     image (platforms, signers, SBOMs), and the events sent",
    "Print that report as JSON on stdout instead of the table",
)))]
struct PublishArgs {
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
    /// Blobs of at least this many bytes are uploaded in parts [default: 64 MiB].
    #[arg(help_heading = "Target", long, value_name = "BYTES")]
    multipart_threshold: Option<u64>,
    /// Bytes per multipart part, all parts but the last (min 5 MiB) [default: 16 MiB].
    #[arg(help_heading = "Target", long, value_name = "BYTES")]
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
}

#[derive(Args, Debug)]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: per image its digest, platforms, manifests, blobs and signers, and per \
     SBOM what it describes, its packages and its NTIA result",
    "Print that report as JSON on stdout instead of the lines",
)))]
struct VerifyArgs {
    /// OCI image layout directories (or use --config).
    #[arg(value_name = "LAYOUT", required_unless_present = "config")]
    layout: Vec<PathBuf>,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    sbom: SbomArgs,
    #[command(flatten)]
    reporting: ReportArgs,
}

#[derive(Args, Debug)]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: every tag checked with its digest, the counts and every problem",
    "Print that report as JSON on stdout instead of the summary line",
)))]
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
    #[command(flatten)]
    reporting: ReportArgs,
}

#[derive(Args, Debug)]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: objects listed, reachable, unreachable (with the keys to delete), kept \
     in grace, deleted, missing",
    "Print that report as JSON on stdout instead of the lines",
)))]
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
    #[command(flatten)]
    reporting: ReportArgs,
    /// Requests in flight at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16)]
    jobs: usize,
}

#[derive(Args, Debug)]
struct SummarizeArgs {
    /// The JSON report of `regpress publish --report FILE` (a dry run's too).
    #[arg(long, value_name = "FILE", required_unless_present = "exit_code")]
    report: Option<PathBuf>,
    /// The publish's exit code. Not 0: the summary says the publish failed (exit N, and what
    /// N means) and to see the log, whether or not the report exists (a failed publish
    /// writes none); the step outputs are `digests` = {} and an empty `report`.
    #[arg(long, value_name = "N")]
    exit_code: Option<i32>,
    /// Append the Markdown summary to this file, e.g. "$GITHUB_STEP_SUMMARY" [default: print
    /// it on stdout].
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Append the step outputs `digests` (JSON: {"repo:tag": "sha256:…"}) and `report` (the
    /// report's path) to this file, e.g. "$GITHUB_OUTPUT".
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
struct ManArgs {
    /// Write regpress.1 and a page per subcommand (regpress-publish.1, …) into this directory
    /// instead of printing regpress.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
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
    let output = Output::new(cli.quiet, cli.verbose);
    match cli.command {
        Command::Publish(args) => run_publish(*args, output),
        Command::Verify(args) => run_verify(args, output),
        Command::Check(args) => run_check(args, output),
        Command::Summarize(args) => run_summarize(args),
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "regpress", &mut std::io::stdout());
            Ok(())
        }
        Command::Man(args) => run_man(args),
        Command::Sigstore(SigstoreCommand::VerifyBundle(args)) => run_verify_bundle(args, output),
        Command::Gc(args) => run_gc(args, output),
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

fn run_publish(args: PublishArgs, output: Output) -> Result<(), Error> {
    let layouts: Vec<PathBuf> = args.layout.into_iter().collect();
    let config = load_config(&layouts, &args.images, &args.sbom, true)?;
    let flags = TargetConfig {
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size,
        ..args.target.table()
    };
    let options = publish::Options {
        target: resolve_target(args.images.config.as_deref(), config.target.clone(), flags)?,
        dry_run: args.dry_run,
        jobs: args.jobs,
        prune: args.prune,
        progress: output.progress(),
        events: event_options(&args.events, &config)?,
    };
    let report = publish::publish(&config, &options)?;
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &report)?;
    }
    print::sbom_warnings(&report.sboms, output);
    print::undelivered(&report);
    if args.reporting.json {
        return print::json(&report);
    }
    print::published(&report, output);
    Ok(())
}

fn run_verify(args: VerifyArgs, output: Output) -> Result<(), Error> {
    let config = load_config(&args.layout, &args.images, &args.sbom, false)?;
    let images = publish::verify(&config, output.progress())?;
    let report = VerifyReport::new(&images, config.policy.sbom);
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &report)?;
    }
    for image in &report.images {
        print::sbom_warnings(&image.sboms, output);
    }
    if args.reporting.json {
        return print::json(&report);
    }
    print::verified(&report, output);
    Ok(())
}

fn run_summarize(args: SummarizeArgs) -> Result<(), Error> {
    let (markdown, digests, report_path) = match (args.exit_code, &args.report) {
        (Some(code), _) if code != 0 => (
            summary::failed(code, exit_meaning(code)),
            Default::default(),
            String::new(),
        ),
        (_, Some(path)) => {
            let report = PublishReport::load(path).map_err(Error::Usage)?;
            (
                report.markdown(),
                report.digests(),
                path.display().to_string(),
            )
        }
        (_, None) => {
            return Err(Error::Usage(
                "--exit-code 0 needs the report: give --report FILE".to_string(),
            ));
        }
    };
    match &args.summary {
        Some(path) => summary::append(path, &markdown).map_err(Error::Usage)?,
        None => print!("{markdown}"),
    }
    if let Some(path) = &args.output {
        let digests = serde_json::to_string(&digests)
            .map_err(|e| Error::Internal(format!("cannot encode digests: {e}")))?;
        let outputs = [("digests", digests), ("report", report_path)];
        summary::write_outputs(path, &outputs).map_err(Error::Usage)?;
    }
    Ok(())
}

/// What an exit code of `publish` means, from [`EXIT_CODES`] (without what it means for
/// `check`, in parentheses).
fn exit_meaning(code: i32) -> Option<&'static str> {
    EXIT_CODES.lines().find_map(|line| {
        let (n, meaning) = line.trim().split_once("  ")?;
        let meaning = meaning.split(" (").next().unwrap_or(meaning);
        (n.parse() == Ok(code)).then(|| meaning.trim())
    })
}

fn run_man(args: ManArgs) -> Result<(), Error> {
    let command = Cli::command();
    match &args.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map_err(|e| Error::Usage(format!("cannot write man pages to {}: {e}", dir.display()))),
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .map_err(|e| Error::Internal(format!("cannot print the man page: {e}"))),
    }
}

fn run_verify_bundle(args: VerifyBundleArgs, output: Output) -> Result<(), Error> {
    let spec = PolicySpec {
        require: true,
        trusted_root: None,
        signers: vec![SignerSpec {
            key: args.key,
            identity: args.certificate_identity,
            issuer: args.certificate_oidc_issuer,
            identity_regexp: None,
        }],
    };
    let root = match (args.trusted_root, args.staging) {
        (Some(path), _) => RootSource::File(path),
        (None, true) => RootSource::Staging,
        (None, false) => RootSource::Production,
    };
    let policy = TrustPolicy::with_root(&spec, &root).map_err(Error::Usage)?;
    let bundle = signature::read_bundle(&args.bundle).map_err(Error::Usage)?;
    let verified = match artifact_digest(&args.artifact) {
        Some(hex) => {
            let digest = Sha256Hash::from_hex(hex)
                .map_err(|e| Error::Usage(format!("bad digest {}: {e}", args.artifact)))?;
            policy.verify(&bundle, Artifact::from_digest(digest))
        }
        None => {
            let bytes = std::fs::read(&args.artifact).map_err(|e| {
                Error::Usage(format!(
                    "cannot read the artifact {}: {e} (give a file, or a digest as \
                     sha256:<64 hex digits>)",
                    args.artifact
                ))
            })?;
            policy.verify(&bundle, Artifact::from_blob(&bytes))
        }
    };
    match verified {
        Ok(signer) => {
            print::bundle_verified(&args.artifact, &signer, output);
            Ok(())
        }
        Err(reason) => Err(Error::Refused(format!(
            "bundle {} over {}: {reason}",
            args.bundle.display(),
            args.artifact
        ))),
    }
}

/// The hex of an artifact given as a digest: exactly `sha256:` and 64 hex digits, as the
/// sigstore-conformance protocol passes one. Anything else names a file (`sha256:abc` too).
fn artifact_digest(artifact: &str) -> Option<&str> {
    artifact
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn run_gc(args: GcArgs, output: Output) -> Result<(), Error> {
    let options = crate::gc::Options {
        target: target_only(args.config.as_deref(), args.target)?,
        grace: crate::store::parse_duration(&args.grace)
            .map_err(|e| Error::Usage(format!("--grace: {e}")))?,
        dry_run: args.dry_run,
        jobs: args.jobs,
    };
    let report = crate::gc::gc(&options)?;
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &report)?;
    }
    if args.reporting.json {
        return print::json(&report);
    }
    print::collected(&report, &args.grace, output);
    Ok(())
}

fn run_check(args: CheckArgs, output: Output) -> Result<(), Error> {
    if args.repair {
        let target = target_only(args.config.as_deref(), args.target)?;
        let store = crate::store::open(&target)?;
        let pool = crate::sync::worker_pool(args.jobs)?;
        let settled = crate::lists::repair(store.as_ref(), &pool)?;
        print::repaired(store.name(), settled.rewritten, output);
    }
    let outcome = crate::check::check(&args.url, &args.repos, args.jobs).map_err(Error::Usage)?;
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &outcome)?;
    }
    if args.reporting.json {
        print::json(&outcome)?;
    } else {
        print::checked(&args.url, &outcome, output);
    }
    if outcome.problems.is_empty() {
        return Ok(());
    }
    Err(Error::Check(outcome.problems))
}
