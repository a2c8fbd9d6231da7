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
use crate::verify::trust::PolicySpec;

/// A whole run's request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where to publish, if the config names it (`[target]`).
    pub target: Option<TargetSpec>,
    /// The images.
    pub images: Vec<ImageSpec>,
    /// The signature trust policy (`[signatures]`).
    pub signatures: PolicySpec,
    /// What verification requires beyond intact digests (`[sbom]`).
    pub policy: Policy,
    /// Where to send publish events (`[events]`).
    pub events: EventsSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    target: Option<TargetSpec>,
    #[serde(default)]
    signatures: PolicySpec,
    #[serde(default, rename = "image")]
    images: Vec<ImageFile>,
    #[serde(default)]
    sbom: SbomPolicy,
    #[serde(default)]
    events: EventsSpec,
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
            })
            .collect();
        let target = file.target.map(|t| TargetSpec {
            to: resolve_target(&t.to, base),
            ..t
        });
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
        assert_eq!(c.target.unwrap().to, "/etc/rp/site");
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
            "#,
            Path::new("/etc/rp"),
        )
        .unwrap();
        assert_eq!(c.images[0].sboms, Some(PathBuf::from("/etc/rp/out/sboms")));
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
        let target = Config::parse(s3, base).unwrap().target.unwrap();
        assert_eq!(target.to, "s3://b/p");
        assert_eq!(target.region.as_deref(), Some("auto"));
    }
}
