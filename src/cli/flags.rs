//! The flag groups several commands share, each defined once and used with
//! `#[command(flatten)]`, and how each lays its flags over the config: targets, images,
//! signatures, provenance, SBOMs, reports and publish events.
//!
//! Flags win over the config everywhere; where a group adds to the config instead (signers,
//! `--require-signature`) its doc says so. This module uses nothing else of the command line:
//! the command files use it.
//!
//! A group's `next_help_heading` carries over to the flags a command declares after it (clap
//! does not reset it): that is why publish's `--prune` and gc's `--grace`, `--dry-run` and
//! `--jobs` are listed under "Target:". Moving a flatten moves flags between headings in
//! `--help`.

use std::path::{Path, PathBuf};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Arg, Args};

use crate::config::{Config, ImageSpec, TargetConfig};
use crate::error::Error;
use crate::events;
use crate::publish;
use crate::target::TargetSpec;
use crate::verify::policy::{NtiaMode, Requirement, SbomPolicy};
use crate::verify::provenance::{Patterns, ProvenanceSpec};
use crate::verify::trust::{PolicySpec, SignerSpec};

/// Where the target is: flags, or a config's `[target]` (flags win).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Target")]
pub(super) struct TargetArgs {
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
    /// Whether any target flag was given.
    pub(super) fn given(&self) -> bool {
        self.to.is_some()
            || self.endpoint.is_some()
            || self.region.is_some()
            || self.url_style.is_some()
    }

    /// These flags as a `[target]` table, to lay over the config's.
    pub(super) fn table(self) -> TargetConfig {
        TargetConfig {
            to: self.to,
            endpoint: self.endpoint,
            region: self.region,
            url_style: self.url_style,
            ..TargetConfig::default()
        }
    }
}

/// The targets: `flags` over each table of the config read from `path` (if any). `--to` names
/// one target, laid over the config's table when it has exactly one; without it, every
/// `[[target]]` of the config is written (replication), each with the other flags over it.
pub(super) fn resolve_targets(
    path: Option<&Path>,
    tables: Vec<TargetConfig>,
    flags: TargetConfig,
) -> Result<Vec<TargetSpec>, Error> {
    let tables = match (&flags.to, tables.len()) {
        (Some(_), 1) | (None, _) => tables,
        (Some(_), _) => Vec::new(),
    };
    let tables = if tables.is_empty() {
        vec![TargetConfig::default()]
    } else {
        tables
    };
    let config = match path {
        Some(path) => format!("config {}", path.display()),
        None => "the config".to_string(),
    };
    tables
        .into_iter()
        .map(|table| {
            table.with(flags.clone()).spec().ok_or_else(|| {
                Error::Usage(format!(
                    "no target: give --to (s3://BUCKET[/PREFIX] or a directory), or [target] \
                     to = ... in {config}"
                ))
            })
        })
        .collect()
}

/// The target of a command that takes only one target (gc, check --repair): these flags over
/// the `[target]` of the config at `path`, if any.
pub(super) fn target_only(path: Option<&Path>, args: TargetArgs) -> Result<TargetSpec, Error> {
    let mut targets = targets_only(path, args)?;
    match targets.len() {
        1 => Ok(targets.remove(0)),
        n => Err(Error::Usage(format!(
            "the config names {n} targets ({}): give --to for the one to work on",
            targets
                .iter()
                .map(TargetSpec::label)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Every target of a command that works on each in turn (retain, yank): these flags over the
/// tables of the config at `path`, if any.
pub(super) fn targets_only(
    path: Option<&Path>,
    args: TargetArgs,
) -> Result<Vec<TargetSpec>, Error> {
    let tables = match path {
        Some(path) => Config::load(path)?.targets,
        None => Vec::new(),
    };
    resolve_targets(path, tables, args.table())
}

/// Which images: one layout with flags, or a config file.
#[derive(Args, Debug)]
#[command(next_help_heading = "Images")]
pub(super) struct ImageArgs {
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
    pub(super) config: Option<PathBuf>,
    /// A sidecar Sigstore bundle signing the layout's image (repeatable), e.g. from
    /// `cosign sign-blob --bundle` over `index.json`.
    #[arg(long = "bundle", value_name = "FILE", requires = "layout")]
    bundles: Vec<PathBuf>,
    /// An OpenVEX document about the layout's image (repeatable): validated (its statements
    /// must name the image's digest or pkg:oci purl among their products) and attached as a
    /// referrer of type application/openvex+json; `sbom search --json` shows its statements.
    #[arg(long = "vex", value_name = "FILE", requires = "layout")]
    vex: Vec<PathBuf>,
    #[command(flatten)]
    signatures: SignatureArgs,
    #[command(flatten)]
    provenance: ProvenanceArgs,
}

/// The signature trust policy, as flags (added to the config's `[signatures]`).
#[derive(Args, Debug)]
#[command(next_help_heading = "Signatures (Sigstore / cosign)")]
pub(super) struct SignatureArgs {
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
    /// A Sigstore trusted_root.json [default: Sigstore's public-good root, kept current
    /// through TUF].
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    #[command(flatten)]
    tuf: TufArgs,
}

/// Where the trusted root is fetched from through TUF (shared with `regpress trust-root`).
#[derive(Args, Debug)]
pub(super) struct TufArgs {
    /// The TUF repository to fetch Sigstore's trusted_root.json from: a mirror of the
    /// public-good one, or a private one with --tuf-root [default:
    /// https://tuf-repo-cdn.sigstore.dev]. The metadata is cached in $REGPRESS_TUF_CACHE
    /// [default: ~/.cache/regpress/tuf].
    #[arg(long, value_name = "URL")]
    tuf_mirror: Option<String>,
    /// The initial root.json of --tuf-mirror, for a private TUF repository [default:
    /// Sigstore's, built in].
    #[arg(long, value_name = "FILE")]
    tuf_root: Option<PathBuf>,
    /// Never touch the network for the trusted root: use the TUF cache as last refreshed,
    /// else the root built into regpress.
    #[arg(long)]
    offline: bool,
}

impl TufArgs {
    /// Lay these flags over a policy's TUF settings.
    pub(super) fn apply(&self, policy: &mut PolicySpec) {
        if self.tuf_mirror.is_some() {
            policy.tuf_mirror = self.tuf_mirror.clone();
        }
        if self.tuf_root.is_some() {
            policy.tuf_root = self.tuf_root.clone();
        }
        policy.offline |= self.offline;
    }
}

impl SignatureArgs {
    /// Add these flags to a config's policy.
    fn apply(&self, policy: &mut PolicySpec) -> Result<(), Error> {
        policy.require |= self.require_signature;
        if self.trusted_root.is_some() {
            policy.trusted_root = self.trusted_root.clone();
        }
        self.tuf.apply(policy);
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

/// The provenance policy, as flags: each given field overrides the config's (`[provenance]`
/// and every `[image.provenance]`). Patterns are exact, or globs where `*` is any run of
/// characters.
#[derive(Args, Debug)]
#[command(next_help_heading = "Provenance (SLSA)")]
pub(super) struct ProvenanceArgs {
    /// Refuse any image without a verified SLSA provenance (v1 or v0.2) naming its digest,
    /// signed by an accepted signer.
    #[arg(long)]
    require_provenance: bool,
    /// Every platform manifest must be named by a verified provenance, not only the index.
    #[arg(long)]
    provenance_per_platform: bool,
    /// Accept provenance from this builder (repeatable), e.g.
    /// https://github.com/acme/images/.github/workflows/release.yml@refs/heads/main.
    #[arg(long = "builder-id", value_name = "PATTERN")]
    builder_ids: Vec<String>,
    /// Accept provenance of builds from this source repository (repeatable), e.g.
    /// git+https://github.com/acme/images.
    #[arg(long = "source-repository", value_name = "PATTERN")]
    source_repositories: Vec<String>,
    /// Accept provenance of builds from this ref (repeatable), e.g. refs/heads/main or
    /// 'refs/tags/v*'.
    #[arg(long = "source-ref", value_name = "PATTERN")]
    source_refs: Vec<String>,
    /// Accept provenance of this build type (repeatable).
    #[arg(long = "build-type", value_name = "PATTERN")]
    build_types: Vec<String>,
    /// Require an external parameter (dotted path) to match (repeatable), e.g.
    /// workflow.path=.github/workflows/release.yml.
    #[arg(long = "external-parameter", value_name = "PATH=PATTERN")]
    external_parameters: Vec<String>,
}

impl ProvenanceArgs {
    /// These flags as a provenance table, to lay over each image's.
    fn spec(&self) -> Result<ProvenanceSpec, Error> {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| Patterns(v.clone()));
        let mut external = std::collections::BTreeMap::<String, Patterns>::new();
        for given in &self.external_parameters {
            let Some((path, pattern)) = given.split_once('=').filter(|(p, _)| !p.is_empty()) else {
                return Err(Error::Usage(format!(
                    "--external-parameter {given:?}: expected PATH=PATTERN, e.g. \
                     workflow.path=.github/workflows/release.yml"
                )));
            };
            external
                .entry(path.to_string())
                .or_default()
                .0
                .push(pattern.to_string());
        }
        Ok(ProvenanceSpec {
            require: self.require_provenance.then_some(true),
            per_platform: self.provenance_per_platform.then_some(true),
            builder_id: list(&self.builder_ids),
            source_repository: list(&self.source_repositories),
            source_ref: list(&self.source_refs),
            build_type: list(&self.build_types),
            external_parameters: (!external.is_empty()).then_some(external),
        })
    }
}

/// SBOM policy: override the config's `[sbom]` table.
#[derive(Args, Debug)]
#[command(next_help_heading = "SBOMs")]
pub(super) struct SbomArgs {
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

/// Publish events, as flags (over the config's `[events]`).
#[derive(Args, Debug)]
#[command(next_help_heading = "Publish events (CloudEvents 1.0)")]
pub(super) struct EventArgs {
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

/// `--report FILE` and `--json`: a run's report as a JSON file, or on stdout instead of the
/// human output. What the report holds differs by command, so each command words both flags'
/// help: `#[command(mut_args(ReportArgs::help(REPORT, JSON)))]`. (No arg group: nothing refers
/// to the pair as one.)
#[derive(Args, Debug)]
#[group(skip)]
pub(super) struct ReportArgs {
    /// Write a JSON report of the run.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub(super) report: Option<PathBuf>,
    /// Print that report as JSON on stdout instead of the lines.
    #[arg(help_heading = "Output", long)]
    pub(super) json: bool,
}

impl ReportArgs {
    /// Give `--report` and `--json` a command's own help. (`mut_args` keeps the flags in place;
    /// `mut_arg` would move them last, reordering `--help`.)
    pub(super) fn help(report: &'static str, json: &'static str) -> impl FnMut(Arg) -> Arg {
        move |arg| match arg.get_id().as_str() {
            "report" => arg.help(report),
            "json" => arg.help(json),
            _ => arg,
        }
    }
}

/// A flag's value unless it is empty. Flags backed by an environment variable get `Some("")`
/// from a variable set to nothing (a workflow's `${{ secrets.X }}` of a secret not set), which
/// must not hide the config's value: filter before falling back.
fn given(flag: &Option<String>) -> Option<String> {
    flag.clone().filter(|v| !v.is_empty())
}

/// The events to send, from flags over the config's `[events]`.
pub(super) fn event_options(
    args: &EventArgs,
    config: &Config,
) -> Result<Option<publish::Events>, Error> {
    let url = given(&args.events_url).or(config.events.url.clone());
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let token = std::env::var(events::TOKEN_ENV).ok();
    let limit =
        |flag: &Option<String>, config: &Option<String>, name: &str, default| match given(flag)
            .or(config.clone())
        {
            Some(text) => crate::duration::parse_duration(&text)
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

/// The run's [`Config`]: the config file (`--config`), or one image per LAYOUT from the image
/// flags; then the SBOM and signature flags over it.
pub(super) fn load_config(
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
            images: layouts
                .iter()
                .map(|layout| ImageSpec {
                    layout: layout.clone(),
                    repository: args.repo.clone().unwrap_or_default(),
                    tags: args.tags.clone(),
                    ref_name: args.ref_name.clone(),
                    sboms: sbom.sboms.clone(),
                    bundles: args.bundles.clone(),
                    vex: args.vex.clone(),
                    provenance: ProvenanceSpec::default(),
                })
                .collect(),
            policy: Default::default(),
            signatures: PolicySpec::default(),
            ..Config::default()
        };
        config.check(need_repository).map_err(Error::Usage)?;
        config
    };
    sbom.apply(&mut config.policy.sbom);
    args.signatures.apply(&mut config.signatures)?;
    let provenance = args.provenance.spec()?;
    for image in &mut config.images {
        image.provenance = provenance.clone().over(&image.provenance);
    }
    Ok(config)
}
