//! `regpress.toml`: the images to publish and where, as read from a file or from flags.
//!
//! The GitHub Action and the nightly cron publish many images in one run, so the config lists
//! them; the single-image command line builds the same [`Config`]. Everything is validated here
//! (names, tags, duplicates) so later stages only see well-formed requests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::events::EventsSpec;
use crate::names::{check_repository, check_tag};
use crate::target::TargetSpec;
/// One image to verify and publish (verification's input, named here because a config is
/// mostly a list of them).
pub use crate::verify::ImageSpec;
use crate::verify::policy::{Policy, SbomPolicy};
use crate::verify::provenance::ProvenanceSpec;
use crate::verify::trust::PolicySpec;

/// A whole run's request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where to publish, as far as the config says (`[target]`); flags complete it.
    pub target: TargetConfig,
    /// The images.
    pub images: Vec<ImageSpec>,
    /// The signature trust policy (`[signatures]`).
    pub signatures: PolicySpec,
    /// What verification requires beyond intact digests (`[sbom]`).
    pub policy: Policy,
    /// Where to send publish events (`[events]`).
    pub events: EventsSpec,
}

/// `[target]` as a config gives it: every field optional, since command-line flags override
/// and complete it (one config can leave `to` to `--to`, a bucket per environment). The
/// [`TargetSpec`] a run writes to is made by [`TargetConfig::spec`] once the flags are laid
/// over it with [`TargetConfig::with`]. The fields are [`TargetSpec`]'s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `./site`, `file:///abs/path` or `s3://BUCKET[/PREFIX]`.
    pub to: Option<String>,
    /// S3 endpoint URL.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// `path` or `virtual-host`.
    pub url_style: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token.
    pub session_token: Option<String>,
    /// Blobs at least this many bytes are uploaded in parts.
    pub multipart_threshold: Option<u64>,
    /// Bytes per part.
    pub part_size: Option<u64>,
    /// How long one request without a body may take, e.g. `"30s"`.
    pub timeout: Option<String>,
}

impl TargetConfig {
    /// `flags` laid over this table: every field the flags give wins.
    pub fn with(self, flags: TargetConfig) -> TargetConfig {
        TargetConfig {
            to: flags.to.or(self.to),
            endpoint: flags.endpoint.or(self.endpoint),
            region: flags.region.or(self.region),
            url_style: flags.url_style.or(self.url_style),
            access_key_id: flags.access_key_id.or(self.access_key_id),
            secret_access_key: flags.secret_access_key.or(self.secret_access_key),
            session_token: flags.session_token.or(self.session_token),
            multipart_threshold: flags.multipart_threshold.or(self.multipart_threshold),
            part_size: flags.part_size.or(self.part_size),
            timeout: flags.timeout.or(self.timeout),
        }
    }

    /// The target to write to, or `None` when nothing names one (no `to`, or an empty one).
    pub fn spec(self) -> Option<TargetSpec> {
        let TargetConfig {
            to,
            endpoint,
            region,
            url_style,
            access_key_id,
            secret_access_key,
            session_token,
            multipart_threshold,
            part_size,
            timeout,
        } = self;
        Some(TargetSpec {
            to: to.filter(|to| !to.is_empty())?,
            endpoint,
            region,
            url_style,
            access_key_id,
            secret_access_key,
            session_token,
            multipart_threshold,
            part_size,
            timeout,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    target: TargetConfig,
    #[serde(default)]
    signatures: PolicySpec,
    #[serde(default, rename = "image")]
    images: Vec<ImageFile>,
    #[serde(default)]
    sbom: SbomPolicy,
    #[serde(default)]
    events: EventsSpec,
    #[serde(default)]
    provenance: ProvenanceSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    layout: PathBuf,
    repository: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "ref")]
    ref_name: Option<String>,
    #[serde(default)]
    bundles: Vec<PathBuf>,
    sboms: Option<PathBuf>,
    #[serde(default)]
    vex: Vec<PathBuf>,
    /// Overrides `[provenance]` field by field for this image.
    #[serde(default)]
    provenance: ProvenanceSpec,
}

impl Config {
    /// Read a config file. Relative paths in it (layouts, a directory target) are relative to
    /// the file's own directory.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read config {}: {e}", path.display())))?;
        Config::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| Error::Usage(format!("config {}: {e}", path.display())))
    }

    /// Parse config text, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let images = file
            .images
            .into_iter()
            .map(|i| ImageSpec {
                layout: base.join(i.layout),
                repository: i.repository,
                tags: i.tags,
                ref_name: i.ref_name,
                bundles: i.bundles.into_iter().map(|b| base.join(b)).collect(),
                sboms: i.sboms.map(|d| base.join(d)),
                vex: i.vex.into_iter().map(|v| base.join(v)).collect(),
                provenance: i.provenance.over(&file.provenance),
            })
            .collect();
        let target = TargetConfig {
            to: file
                .target
                .to
                .filter(|to| !to.is_empty())
                .map(|to| resolve_target(&to, base)),
            ..file.target
        };
        let config = Config {
            target,
            images,
            signatures: file.signatures.resolve(base),
            policy: Policy { sbom: file.sbom },
            events: file.events,
        };
        config.check(true)?;
        Ok(config)
    }

    /// Check names, tags and duplicates. `need_repository` is false for `verify`.
    pub fn check(&self, need_repository: bool) -> Result<(), String> {
        if self.images.is_empty() {
            return Err("no images given".to_string());
        }
        let mut seen = BTreeSet::new();
        for image in &self.images {
            if need_repository || !image.repository.is_empty() {
                check_repository(&image.repository)?;
            }
            for tag in &image.tags {
                check_tag(tag)?;
                if !seen.insert((image.repository.clone(), tag.clone())) {
                    return Err(format!(
                        "tag {}:{tag} is given more than once",
                        image.repository
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A directory target given relative to a config file is relative to that file.
fn resolve_target(to: &str, base: &Path) -> String {
    if to.contains("://") || Path::new(to).is_absolute() {
        to.to_string()
    } else {
        base.join(to).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_images_and_resolves_paths() {
        let c = Config::parse(
            r#"
            [target]
            to = "site"
            [[image]]
            layout = "apko/golden"
            repository = "apko/golden"
            tags = ["latest", "1.0"]
            [[image]]
            layout = "/abs/skopeo"
            repository = "other"
            ref = "v1"
            "#,
            Path::new("/etc/rp"),
        )
        .unwrap();
        assert_eq!(c.target.to.as_deref(), Some("/etc/rp/site"));
        assert_eq!(c.images[0].layout, PathBuf::from("/etc/rp/apko/golden"));
        assert_eq!(c.images[0].tags, ["latest", "1.0"]);
        assert_eq!(c.images[1].layout, PathBuf::from("/abs/skopeo"));
        assert_eq!(c.images[1].ref_name.as_deref(), Some("v1"));
        assert_eq!(c.images[0].sboms, None);
        assert_eq!(c.policy, Policy::default());
        assert_eq!(c.events, EventsSpec::default());
    }

    #[test]
    fn reads_the_events_table() {
        let c = Config::parse(
            "[events]\nurl = 'https://hooks.example.com/regpress'\nsource = 'https://cr.example.com'\n\
             [[image]]\nlayout = 'l'\nrepository = 'a'",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            c.events.url.as_deref(),
            Some("https://hooks.example.com/regpress")
        );
        assert_eq!(c.events.source.as_deref(), Some("https://cr.example.com"));
        let unknown = "[events]\nendpoint='x'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(unknown, Path::new("."))
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn reads_the_sbom_policy_and_sbom_directories() {
        let c = Config::parse(
            r#"
            [sbom]
            policy = "required"
            per_platform = true
            ntia = "require"
            [[image]]
            layout = "out/base"
            repository = "base"
            sboms = "out/sboms"
            vex = ["vex/base.openvex.json"]
            "#,
            Path::new("/etc/rp"),
        )
        .unwrap();
        assert_eq!(c.images[0].sboms, Some(PathBuf::from("/etc/rp/out/sboms")));
        assert_eq!(
            c.images[0].vex,
            [PathBuf::from("/etc/rp/vex/base.openvex.json")]
        );
        let sbom = c.policy.sbom;
        assert_eq!(sbom.policy, crate::verify::policy::Requirement::Required);
        assert!(sbom.per_platform);
        assert_eq!(sbom.ntia, crate::verify::policy::NtiaMode::Require);
        let bad = "[sbom]\npolicy='always'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(bad, Path::new("."))
                .unwrap_err()
                .contains("unknown variant")
        );
        let unknown = "[sbom]\nntia_mode='warn'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(unknown, Path::new("."))
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn reads_the_signature_policy_and_sidecar_bundles() {
        let c = Config::parse(
            r#"
            [signatures]
            require = true
            trusted_root = "root.json"
            [[signatures.signer]]
            key = "keys/cosign.pub"
            [[signatures.signer]]
            identity_regexp = "https://github.com/acme/.*"
            issuer = "https://token.actions.githubusercontent.com"
            [[image]]
            layout = "l"
            repository = "a"
            bundles = ["index.json.sigstore.json"]
            "#,
            Path::new("/etc/rp"),
        )
        .unwrap();
        assert!(c.signatures.require);
        assert_eq!(
            c.signatures.trusted_root,
            Some(PathBuf::from("/etc/rp/root.json"))
        );
        assert_eq!(
            c.signatures.signers[0].key,
            Some(PathBuf::from("/etc/rp/keys/cosign.pub"))
        );
        assert_eq!(c.signatures.signers.len(), 2);
        assert_eq!(
            c.images[0].bundles,
            [PathBuf::from("/etc/rp/index.json.sigstore.json")]
        );
        let unknown = "[signatures]\nrequired = true\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(unknown, Path::new("."))
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn reads_the_provenance_policy_and_per_image_overrides() {
        let c = Config::parse(
            r#"
            [provenance]
            require = true
            builder_id = "https://github.com/acme/images/.github/workflows/release.yml@refs/heads/main"
            source_ref = "refs/heads/main"
            [[image]]
            layout = "a"
            repository = "a"
            [[image]]
            layout = "b"
            repository = "b"
            [image.provenance]
            source_ref = ["refs/tags/v*"]
            per_platform = true
            "#,
            Path::new("."),
        )
        .unwrap();
        let (a, b) = (&c.images[0].provenance, &c.images[1].provenance);
        assert_eq!(a.require, Some(true));
        assert_eq!(a.source_ref.as_ref().unwrap().0, ["refs/heads/main"]);
        assert_eq!(b.source_ref.as_ref().unwrap().0, ["refs/tags/v*"]);
        assert_eq!(
            b.builder_id, a.builder_id,
            "not overridden: the global value"
        );
        assert_eq!((a.per_platform, b.per_platform), (None, Some(true)));
        let unknown = "[provenance]\nbuilder='x'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(unknown, Path::new("."))
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn refuses_bad_names_unknown_keys_and_duplicates() {
        let base = Path::new(".");
        let bad_repo = "[[image]]\nlayout='x'\nrepository='Bad'\ntags=['a']";
        assert!(
            Config::parse(bad_repo, base)
                .unwrap_err()
                .contains("invalid repository")
        );
        let bad_tag = "[[image]]\nlayout='x'\nrepository='a'\ntags=['-a']";
        assert!(
            Config::parse(bad_tag, base)
                .unwrap_err()
                .contains("invalid tag")
        );
        let unknown = "[[image]]\nlayout='x'\nrepository='a'\ntag=['a']";
        assert!(
            Config::parse(unknown, base)
                .unwrap_err()
                .contains("unknown field")
        );
        let dup = "[[image]]\nlayout='x'\nrepository='a'\ntags=['t']\n[[image]]\nlayout='y'\nrepository='a'\ntags=['t']";
        assert!(
            Config::parse(dup, base)
                .unwrap_err()
                .contains("more than once")
        );
        assert!(Config::parse("", base).unwrap_err().contains("no images"));
        let s3 = "[target]\nto='s3://b/p'\nregion='auto'\n[[image]]\nlayout='x'\nrepository='a'";
        let target = Config::parse(s3, base).unwrap().target;
        assert_eq!(target.to.as_deref(), Some("s3://b/p"));
        assert_eq!(target.region.as_deref(), Some("auto"));
        let unknown = "[target]\nbucket='b'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(unknown, base)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn a_target_table_may_leave_to_to_the_flags() {
        let text = "[target]\nregion='auto'\nto=''\n[[image]]\nlayout='x'\nrepository='a'";
        let table = Config::parse(text, Path::new("/etc/rp")).unwrap().target;
        assert_eq!(table.to, None, "an empty `to` names no target");
        assert_eq!(table.clone().spec(), None);
        let flags = TargetConfig {
            to: Some("s3://b".into()),
            region: Some("eu".into()),
            ..TargetConfig::default()
        };
        let spec = table.with(flags).spec().unwrap();
        assert_eq!(spec.to, "s3://b");
        assert_eq!(spec.region.as_deref(), Some("eu"), "the flag wins");
        let file = TargetConfig {
            to: Some("/etc/rp/site".into()),
            endpoint: Some("https://e".into()),
            ..TargetConfig::default()
        };
        let spec = file.with(TargetConfig::default()).spec().unwrap();
        assert_eq!(spec.to, "/etc/rp/site");
        assert_eq!(
            spec.endpoint.as_deref(),
            Some("https://e"),
            "no flag: the file's"
        );
    }
}
