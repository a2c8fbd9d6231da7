//! The command line: parse flags, call the pipeline, print results. Nothing else lives here.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::HumanBytes;

use crate::config::{Config, ImageSpec, TargetConfig};
use crate::error::{EXIT_CODES, Error};
use crate::events;
use crate::progress;
use crate::publish;
use crate::report::{self, ImageReport, VerifyReport};
use crate::store::TargetSpec;
use crate::summary::{self, PublishReport};
use crate::sync::Report;
use crate::verify::policy::{NtiaMode, Requirement, SbomPolicy};
use crate::verify::signature;
use crate::verify::trust::{PolicySpec, RootSource, SignerSpec, TrustPolicy};
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

/// How much a run prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Quiet,
    Normal,
    Verbose,
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

/// Where the target is: flags, or a config's `[target]` (flags win).
#[derive(Args, Debug)]
#[command(next_help_heading = "Target")]
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
    /// These flags as a `[target]` table, to lay over the config's.
    fn table(self) -> TargetConfig {
        TargetConfig {
            to: self.to,
            endpoint: self.endpoint,
            region: self.region,
            url_style: self.url_style,
            ..TargetConfig::default()
        }
    }
}

/// The target: `flags` over `table`, the `[target]` of the config read from `path` (if any).
fn resolve_target(
    path: Option<&Path>,
    table: TargetConfig,
    flags: TargetConfig,
) -> Result<TargetSpec, Error> {
    table.with(flags).spec().ok_or_else(|| {
        let config = match path {
            Some(path) => format!("config {}", path.display()),
            None => "the config".to_string(),
        };
        Error::Usage(format!(
            "no target: give --to (s3://BUCKET[/PREFIX] or a directory), or [target] to = ... \
             in {config}"
        ))
    })
}

/// Which images: one layout with flags, or a config file.
#[derive(Args, Debug)]
#[command(next_help_heading = "Images")]
struct ImageArgs {
    /// The layout's repository, e.g. `chainguard/base` (publish: where it goes).
    #[arg(long, value_name = "NAME", requires = "layout")]
    repo: Option<String>,
    /// A tag of the layout's image (repeatable). apko layouts need at least one to publish;
    /// layouts that name their images use those names when no tag is given.
    #[arg(long = "tag", value_name = "TAG", requires = "layout")]
    tags: Vec<String>,
    /// For layouts listing several named images (skopeo, cosign save): the image's
    /// `org.opencontainers.image.ref.name`.
    #[arg(long = "ref", value_name = "NAME", requires = "layout")]
    ref_name: Option<String>,
    /// A regpress.toml listing images (`[[image]] layout, repository, tags`) and the target.
    #[arg(long, value_name = "FILE", conflicts_with = "layout")]
    config: Option<PathBuf>,
    /// A sidecar Sigstore bundle signing the layout's image (repeatable), e.g. from
    /// `cosign sign-blob --bundle` over `index.json`.
    #[arg(long = "bundle", value_name = "FILE", requires = "layout")]
    bundles: Vec<PathBuf>,
    #[command(flatten)]
    signatures: SignatureArgs,
}

/// The signature trust policy, as flags (added to the config's `[signatures]`).
#[derive(Args, Debug)]
#[command(next_help_heading = "Signatures (Sigstore / cosign)")]
struct SignatureArgs {
    /// Refuse any image without a verified signature over its tagged digest.
    #[arg(long)]
    require_signature: bool,
    /// Accept signatures made with this PEM public key (repeatable).
    #[arg(long = "key", value_name = "PEM")]
    keys: Vec<PathBuf>,
    /// Accept keyless signatures whose certificate identity is exactly this (with
    /// --certificate-oidc-issuer).
    #[arg(long, value_name = "ID", requires = "certificate_oidc_issuer")]
    certificate_identity: Option<String>,
    /// Accept keyless signatures whose certificate identity matches this regular expression
    /// (anchored at both ends; with --certificate-oidc-issuer).
    #[arg(
        long,
        value_name = "REGEX",
        requires = "certificate_oidc_issuer",
        conflicts_with = "certificate_identity"
    )]
    certificate_identity_regexp: Option<String>,
    /// The OIDC issuer of accepted keyless signatures, e.g.
    /// https://token.actions.githubusercontent.com.
    #[arg(long, value_name = "URL")]
    certificate_oidc_issuer: Option<String>,
    /// A Sigstore trusted_root.json [default: Sigstore's production root, embedded].
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

impl SignatureArgs {
    /// Add these flags to a config's policy.
    fn apply(&self, policy: &mut PolicySpec) -> Result<(), Error> {
        policy.require |= self.require_signature;
        if self.trusted_root.is_some() {
            policy.trusted_root = self.trusted_root.clone();
        }
        for key in &self.keys {
            policy.signers.push(SignerSpec {
                key: Some(key.clone()),
                ..SignerSpec::default()
            });
        }
        match (
            &self.certificate_identity,
            &self.certificate_identity_regexp,
            &self.certificate_oidc_issuer,
        ) {
            (None, None, Some(_)) => {
                return Err(Error::Usage(
                    "--certificate-oidc-issuer needs --certificate-identity or \
                     --certificate-identity-regexp"
                        .to_string(),
                ));
            }
            (identity, identity_regexp, Some(issuer)) => policy.signers.push(SignerSpec {
                identity: identity.clone(),
                identity_regexp: identity_regexp.clone(),
                issuer: Some(issuer.clone()),
                key: None,
            }),
            _ => {}
        }
        Ok(())
    }
}

/// SBOM policy: override the config's `[sbom]` table.
#[derive(Args, Debug)]
#[command(next_help_heading = "SBOMs")]
struct SbomArgs {
    /// `required`: refuse an image without an SBOM. `optional` (default): check the SBOMs
    /// found; an image without one passes. Either way a malformed SBOM, or one that describes
    /// another digest, is refused.
    #[arg(
        long = "sbom",
        value_name = "POLICY",
        value_parser = PossibleValuesParser::new(["required", "optional"])
            .try_map(|s| s.parse::<Requirement>())
    )]
    policy: Option<Requirement>,
    /// Every platform manifest needs its own SBOM (apko's `sbom-<arch>.spdx.json`), when the
    /// image has SBOMs or `--sbom required`.
    #[arg(long = "sbom-per-platform")]
    per_platform: bool,
    /// NTIA minimum elements (supplier, name, version, unique identifier, dependency
    /// relationship, author, timestamp): `require` refuses an SBOM missing one, `warn`
    /// (default) prints what is missing where, `off` skips the check.
    #[arg(
        long,
        value_name = "MODE",
        value_parser = PossibleValuesParser::new(["require", "warn", "off"])
            .try_map(|s| s.parse::<NtiaMode>())
    )]
    ntia: Option<NtiaMode>,
    /// Directory holding the layout's SBOMs (*.spdx.json, *.cdx.json, *.cyclonedx.json).
    /// Default: a `sboms/` directory inside or beside the layout, else apko's
    /// `sbom-*.spdx.json` inside or beside it. One LAYOUT only; with --config use `sboms` in
    /// `[[image]]`.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    sboms: Option<PathBuf>,
}

impl SbomArgs {
    /// Apply the flags given over the config's policy.
    fn apply(&self, policy: &mut SbomPolicy) {
        if let Some(p) = self.policy {
            policy.policy = p;
        }
        if self.per_platform {
            policy.per_platform = true;
        }
        if let Some(n) = self.ntia {
            policy.ntia = n;
        }
    }
}

#[derive(Args, Debug)]
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
    /// Write a JSON report: objects and bytes written and unchanged, per phase, per tag and
    /// per image (platforms, signers, SBOMs), and the events sent.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print that report as JSON on stdout instead of the table.
    #[arg(help_heading = "Output", long)]
    json: bool,
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

/// Publish events, as flags (over the config's `[events]`).
#[derive(Args, Debug)]
#[command(next_help_heading = "Publish events (CloudEvents 1.0)")]
struct EventArgs {
    /// After a publish, POST a CloudEvents 1.0 event (dev.regpress.tag.published) for each
    /// tag created or moved to this URL. Retried; a failure is reported, never fatal. A
    /// bearer token is read from REGPRESS_EVENTS_TOKEN.
    #[arg(
        long,
        value_name = "URL",
        env = "REGPRESS_EVENTS_URL",
        hide_env_values = true
    )]
    events_url: Option<String>,
    /// The events' `source`, e.g. https://cr.example.com [default: the target].
    #[arg(long, value_name = "URI")]
    events_source: Option<String>,
    /// Give up on one POST after this long, e.g. 10s or 500ms [default: 10s, or `[events]
    /// timeout`].
    #[arg(long, value_name = "DURATION")]
    events_timeout: Option<String>,
    /// Stop delivering events after this long in all, retries included: the events not
    /// delivered by then are reported as failed, and the publish still succeeds [default:
    /// 60s, or `[events] budget`].
    #[arg(long, value_name = "DURATION")]
    events_budget: Option<String>,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// OCI image layout directories (or use --config).
    #[arg(value_name = "LAYOUT", required_unless_present = "config")]
    layout: Vec<PathBuf>,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    sbom: SbomArgs,
    /// Write a JSON report: per image its digest, platforms, manifests, blobs and signers,
    /// and per SBOM what it describes, its packages and its NTIA result.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print that report as JSON on stdout instead of the lines.
    #[arg(help_heading = "Output", long)]
    json: bool,
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
    /// Write a JSON report: every tag checked with its digest, the counts and every problem.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print that report as JSON on stdout instead of the summary line.
    #[arg(help_heading = "Output", long)]
    json: bool,
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
    /// Write a JSON report: objects listed, reachable, unreachable (with the keys to delete),
    /// kept in grace, deleted, missing.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print that report as JSON on stdout instead of the lines.
    #[arg(help_heading = "Output", long)]
    json: bool,
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
    let (mode, output) = match (cli.quiet, cli.verbose) {
        (true, _) => (progress::Mode::Quiet, Output::Quiet),
        (false, true) => (progress::Mode::Auto, Output::Verbose),
        (false, false) => (progress::Mode::Auto, Output::Normal),
    };
    match cli.command {
        Command::Publish(args) => run_publish(*args, mode, output),
        Command::Verify(args) => run_verify(args, mode, output),
        Command::Check(args) => run_check(args, output),
        Command::Summarize(args) => run_summarize(args),
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "regpress", &mut std::io::stdout());
            Ok(())
        }
        Command::Man(args) => run_man(args),
        Command::Sigstore(SigstoreCommand::VerifyBundle(args)) => {
            run_verify_bundle(args, output == Output::Quiet)
        }
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

fn load_config(
    layouts: &[PathBuf],
    args: &ImageArgs,
    sbom: &SbomArgs,
    need_repository: bool,
) -> Result<Config, Error> {
    let mut config = if let Some(path) = &args.config {
        Config::load(path)?
    } else {
        if need_repository && args.repo.is_none() {
            return Err(Error::Usage(
                "--repo NAME is required with a LAYOUT: the repository to publish to, e.g. \
                 --repo acme/base (or list images in a config: --config regpress.toml)"
                    .to_string(),
            ));
        }
        if sbom.sboms.is_some() && layouts.len() > 1 {
            return Err(Error::Usage(
                "--sboms names the SBOMs of one LAYOUT; give one layout per run, or a config with `sboms` per [[image]]".to_string(),
            ));
        }
        let config = Config {
            target: TargetConfig::default(),
            images: layouts
                .iter()
                .map(|layout| ImageSpec {
                    layout: layout.clone(),
                    repository: args.repo.clone().unwrap_or_default(),
                    tags: args.tags.clone(),
                    ref_name: args.ref_name.clone(),
                    sboms: sbom.sboms.clone(),
                    bundles: args.bundles.clone(),
                })
                .collect(),
            policy: Default::default(),
            signatures: PolicySpec::default(),
            events: Default::default(),
        };
        config.check(need_repository).map_err(Error::Usage)?;
        config
    };
    sbom.apply(&mut config.policy.sbom);
    args.signatures.apply(&mut config.signatures)?;
    Ok(config)
}

/// Write a JSON report.
fn write_report(path: &PathBuf, report: &impl serde::Serialize) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| Error::Internal(format!("cannot encode report: {e}")))?;
    std::fs::write(path, json)
        .map_err(|e| Error::Usage(format!("cannot write report {}: {e}", path.display())))
}

fn run_publish(args: PublishArgs, mode: progress::Mode, output: Output) -> Result<(), Error> {
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
        progress: mode,
        events: event_options(&args.events, &config)?,
    };
    let report = publish::publish(&config, &options)?;
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    if output != Output::Quiet {
        for warning in report::warnings(&report.sboms) {
            eprintln!("{warning}");
        }
    }
    if let Some(delivery) = &report.events {
        for failed in &delivery.failed {
            eprintln!(
                "warning: event {} for {} not delivered to {}: {}; the publish itself succeeded",
                failed.ty,
                failed.subject,
                delivery.url,
                failed.error.as_deref().unwrap_or("unknown error")
            );
        }
    }
    if args.json {
        return print_json(&report);
    }
    if output != Output::Quiet {
        if output == Output::Verbose {
            for image in &report.images {
                print_image(&image.image, output);
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
        print_report(&report);
    }
    Ok(())
}

/// A flag's value unless it is empty. Flags backed by an environment variable get `Some("")`
/// from a variable set to nothing (a workflow's `${{ secrets.X }}` of a secret not set), which
/// must not hide the config's value: filter before falling back.
fn given(flag: &Option<String>) -> Option<String> {
    flag.clone().filter(|v| !v.is_empty())
}

/// The events to send, from flags over the config's `[events]`.
fn event_options(args: &EventArgs, config: &Config) -> Result<Option<publish::Events>, Error> {
    let url = given(&args.events_url).or(config.events.url.clone());
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let token = std::env::var(events::TOKEN_ENV).ok();
    let limit =
        |flag: &Option<String>, config: &Option<String>, name: &str, default| match given(flag)
            .or(config.clone())
        {
            Some(text) => crate::store::parse_duration(&text)
                .map_err(|e| Error::Usage(format!("--events-{name} (or [events] {name}): {e}"))),
            None => Ok(default),
        };
    let timeout = limit(
        &args.events_timeout,
        &config.events.timeout,
        "timeout",
        events::TIMEOUT,
    )?;
    let budget = limit(
        &args.events_budget,
        &config.events.budget,
        "budget",
        events::BUDGET,
    )?;
    if timeout.is_zero() {
        return Err(Error::Usage(
            "--events-timeout 0s would never deliver an event: give e.g. 10s".to_string(),
        ));
    }
    let sink = events::Sink::new(&url, token)
        .map_err(Error::Usage)?
        .with_limits(timeout, budget);
    let source = args.events_source.clone().or(config.events.source.clone());
    if source.as_deref() == Some("") {
        return Err(Error::Usage(
            "the events' source is empty: give a URI such as https://cr.example.com, or leave \
             it out to use the target"
                .to_string(),
        ));
    }
    Ok(Some(publish::Events { sink, source }))
}

/// Print a report as pretty JSON on stdout.
fn print_json(report: &impl serde::Serialize) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Internal(format!("cannot encode report: {e}")))?;
    println!("{json}");
    Ok(())
}

fn run_verify(args: VerifyArgs, mode: progress::Mode, output: Output) -> Result<(), Error> {
    let config = load_config(&args.layout, &args.images, &args.sbom, false)?;
    let images = publish::verify(&config, mode)?;
    let report = VerifyReport::new(&images, config.policy.sbom);
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    if output != Output::Quiet {
        for image in &report.images {
            for warning in report::warnings(&image.sboms) {
                eprintln!("{warning}");
            }
        }
    }
    if args.json {
        return print_json(&report);
    }
    if output != Output::Quiet {
        for image in &report.images {
            print_image(image, output);
        }
    }
    Ok(())
}

/// The lines for one verified image: what it is, then (verbose) its platforms, its signers,
/// attachments and SBOMs.
fn print_image(image: &ImageReport, output: Output) {
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

fn run_verify_bundle(args: VerifyBundleArgs, quiet: bool) -> Result<(), Error> {
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
            if !quiet {
                println!("verified {} by {signer}", args.artifact);
            }
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

/// The target of a command that takes only a target: flags on top of a config's `[target]`.
fn target_only(path: Option<&PathBuf>, args: TargetArgs) -> Result<TargetSpec, Error> {
    let table = match path {
        Some(path) => Config::load(path)?.target,
        None => TargetConfig::default(),
    };
    resolve_target(path.map(PathBuf::as_path), table, args.table())
}

fn run_gc(args: GcArgs, output: Output) -> Result<(), Error> {
    let options = crate::gc::Options {
        target: target_only(args.config.as_ref(), args.target)?,
        grace: crate::store::parse_duration(&args.grace)
            .map_err(|e| Error::Usage(format!("--grace: {e}")))?,
        dry_run: args.dry_run,
        jobs: args.jobs,
    };
    let report = crate::gc::gc(&options)?;
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    if args.json {
        return print_json(&report);
    }
    if output != Output::Quiet {
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

fn run_check(args: CheckArgs, output: Output) -> Result<(), Error> {
    if args.repair {
        let target = target_only(args.config.as_ref(), args.target)?;
        let store = crate::store::open(&target)?;
        let pool = crate::sync::worker_pool(args.jobs)?;
        let settled = crate::lists::repair(store.as_ref(), &pool)?;
        if output != Output::Quiet {
            println!(
                "{}: {} tag lists or catalog rewritten",
                store.name(),
                settled.rewritten
            );
        }
    }
    let outcome = crate::check::check(&args.url, &args.repos, args.jobs).map_err(Error::Usage)?;
    if let Some(path) = &args.report {
        write_report(path, &outcome)?;
    }
    if args.json {
        print_json(&outcome)?;
    } else if output != Output::Quiet {
        if output == Output::Verbose {
            for tag in &outcome.checked {
                println!("ok {}:{} {}", tag.repository, tag.tag, tag.digest);
            }
        }
        println!(
            "{}: {} repositories, {} tags, {} manifests, {} referrers lists, {} blobs checked, {} problems",
            args.url,
            outcome.repositories,
            outcome.tags,
            outcome.manifests,
            outcome.referrers,
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
    if let Some(events) = &report.events {
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
