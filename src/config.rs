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
use crate::governance::immutable::Immutable;
use crate::governance::retention::Retention;
use crate::governance::{ImmutableRule, PolicyTable, RetentionRule};
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
    /// Where to publish, as far as the config says: one `[target]`, or several `[[target]]`
    /// tables (replication); flags complete them. Empty when the config names none.
    pub targets: Vec<TargetConfig>,
    /// The images.
    pub images: Vec<ImageSpec>,
    /// The signature trust policy (`[signatures]`).
    pub signatures: PolicySpec,
    /// What verification requires beyond intact digests (`[sbom]`).
    pub policy: Policy,
    /// Where to send publish events (`[events]`).
    pub events: EventsSpec,
    /// Tags that never move (`[policy] immutable`, `immutable` per `[[image]]`).
    pub immutable: Vec<ImmutableRule>,
    /// Which tags are kept (`[[retention]]`).
    pub retention: Vec<RetentionRule>,
}

/// `[target]` as a config gives it: every field optional, since command-line flags override
/// and complete it (one config can leave `to` to `--to`, a bucket per environment). The
/// [`TargetSpec`] a run writes to is made by [`TargetConfig::spec`] once the flags are laid
/// over it with [`TargetConfig::with`]. The fields are [`TargetSpec`]'s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// What reports, events and errors call it (default: `to`).
    pub name: Option<String>,
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
    /// Blobs at least this large are uploaded in parts: bytes, or a string with a unit
    /// (`"64MiB"`).
    #[serde(default, deserialize_with = "crate::byte_size::deserialize")]
    pub multipart_threshold: Option<u64>,
    /// Size of each part (at least 5 MiB): bytes, or a string with a unit (`"8MiB"`).
    #[serde(default, deserialize_with = "crate::byte_size::deserialize")]
    pub part_size: Option<u64>,
    /// How long one request without a body may take, e.g. `"30s"`.
    pub timeout: Option<String>,
}

impl TargetConfig {
    /// `flags` laid over this table: every field the flags give wins.
    pub fn with(self, flags: TargetConfig) -> TargetConfig {
        TargetConfig {
            name: flags.name.or(self.name),
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
            name,
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
            name,
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
    #[serde(default, deserialize_with = "one_or_many")]
    target: Vec<TargetConfig>,
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
    #[serde(default)]
    policy: PolicyTable,
    #[serde(default)]
    retention: Vec<RetentionRule>,
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
    /// Tag globs of this image's repository that never move (besides `[policy] immutable`).
    #[serde(default)]
    immutable: Vec<String>,
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
        let mut immutable = Vec::new();
        if !file.policy.immutable.is_empty() {
            immutable.push(ImmutableRule {
                repository: None,
                tags: file.policy.immutable.clone(),
            });
        }
        immutable.extend(
            file.images
                .iter()
                .filter(|i| !i.immutable.is_empty())
                .map(|i| ImmutableRule {
                    repository: Some(i.repository.clone()),
                    tags: i.immutable.clone(),
                }),
        );
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
        let targets = file
            .target
            .into_iter()
            .map(|table| TargetConfig {
                to: table
                    .to
                    .filter(|to| !to.is_empty())
                    .map(|to| resolve_target(&to, base)),
                ..table
            })
            .collect();
        let config = Config {
            targets,
            images,
            signatures: file.signatures.resolve(base),
            policy: Policy { sbom: file.sbom },
            events: file.events,
            immutable,
            retention: file.retention,
        };
        config.check(true)?;
        Ok(config)
    }

    /// Check names, tags and duplicates. `need_repository` is false for `verify`.
    pub fn check(&self, need_repository: bool) -> Result<(), String> {
        if self.images.is_empty() {
            return Err("no images given".to_string());
        }
        Immutable::new(&self.immutable).map_err(|e| format!("immutable tags: {e}"))?;
        Retention::new(&self.retention).map_err(|e| format!("[[retention]]: {e}"))?;
        let mut names = BTreeSet::new();
        for target in &self.targets {
            let name = target.name.as_ref().or(target.to.as_ref());
            if let Some(name) = name
                && !names.insert(name)
            {
                return Err(format!(
                    "target {name} is given more than once: give each [[target]] its own `to` \
                     and `name`"
                ));
            }
        }
        if self.targets.len() > 1 && self.targets.iter().any(|t| t.to.is_none()) {
            return Err(
                "every [[target]] of several needs its own `to` (a bucket or directory)".into(),
            );
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

/// One of `count` parts of a config's images (`publish --shard K/N`), so that a CI matrix of
/// `count` runners publishes one catalog into one bucket together: the repositories, in name
/// order, are dealt out in turn, so every repository (all its images) belongs to exactly one
/// shard and the shards differ by at most one repository. Shards share no tag list; the
/// catalog, which they all update, is settled as under any concurrent publishers
/// ([`crate::lists`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 1.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("{text:?}: give K/N, the K-th of N shards, 1 <= K <= N (e.g. 2/8)");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Keep only this shard's images of `images`.
    pub fn select(&self, images: Vec<ImageSpec>) -> Vec<ImageSpec> {
        let repositories: BTreeSet<&str> = images.iter().map(|i| i.repository.as_str()).collect();
        let mine: BTreeSet<String> = repositories
            .into_iter()
            .enumerate()
            .filter(|(n, _)| n % self.count == self.index - 1)
            .map(|(_, repo)| repo.to_string())
            .collect();
        images
            .into_iter()
            .filter(|i| mine.contains(&i.repository))
            .collect()
    }
}

/// `[target]` (one table) or `[[target]]` (an array of them): either way, the list.
fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<TargetConfig>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    match toml::Value::deserialize(deserializer)? {
        toml::Value::Array(tables) => tables
            .into_iter()
            .map(|t| t.try_into().map_err(D::Error::custom))
            .collect(),
        table => Ok(vec![table.try_into().map_err(D::Error::custom)?]),
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
    fn shards_deal_out_whole_repositories_in_turn() {
        let text: String = [("c", "1"), ("a", "1"), ("b", "1"), ("a", "2"), ("d", "1")]
            .iter()
            .map(|(repo, tag)| {
                format!("[[image]]\nlayout = \"l\"\nrepository = \"{repo}\"\ntags = [\"{tag}\"]\n")
            })
            .collect();
        let images = Config::parse(&text, Path::new("/")).unwrap().images;
        let pick = |text: &str| -> Vec<String> {
            let shard: Shard = text.parse().unwrap();
            shard
                .select(images.clone())
                .iter()
                .map(|i| format!("{}:{}", i.repository, i.tags[0]))
                .collect()
        };
        assert_eq!(
            pick("1/2"),
            ["c:1", "a:1", "a:2"],
            "a and c, every image of a, in config order"
        );
        assert_eq!(pick("2/2"), ["b:1", "d:1"]);
        assert_eq!(pick("1/1").len(), images.len());
        assert!(pick("6/6").is_empty(), "more shards than repositories");
        let mut all: Vec<String> = (1..=3).flat_map(|k| pick(&format!("{k}/3"))).collect();
        all.sort();
        assert_eq!(
            all,
            ["a:1", "a:2", "b:1", "c:1", "d:1"],
            "each image in one shard"
        );
        for bad in ["0/2", "3/2", "2", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("2/8".parse::<Shard>().unwrap().to_string(), "2/8");
    }

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
        assert_eq!(c.targets[0].to.as_deref(), Some("/etc/rp/site"));
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
    fn reads_where_the_trusted_root_is_fetched_from() {
        let c = Config::parse(
            r#"
            [signatures]
            tuf_mirror = "https://tuf.internal.example.com"
            tuf_root = "tuf-root.json"
            offline = true
            [[signatures.signer]]
            key = "cosign.pub"
            [[image]]
            layout = "l"
            repository = "a"
            "#,
            Path::new("/etc/rp"),
        )
        .unwrap();
        let source = c.signatures.tuf_source();
        assert_eq!(source.mirror(), "https://tuf.internal.example.com");
        assert_eq!(source.root, Some(PathBuf::from("/etc/rp/tuf-root.json")));
        assert!(source.offline);
        // A root file and a TUF repository together are contradictory.
        let both = PolicySpec {
            trusted_root: Some("root.json".into()),
            ..c.signatures
        };
        let e = both.root_source().unwrap_err().to_string();
        assert!(e.contains("cannot be given with it"), "{e}");
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
        let target = Config::parse(s3, base).unwrap().targets.remove(0);
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
    fn reads_several_targets_and_the_governance_rules() {
        let text = r#"
            [[target]]
            name = "r2"
            to = "s3://images"
            endpoint = "https://acct.r2.cloudflarestorage.com"
            [[target]]
            name = "mirror"
            to = "mirror"
            [policy]
            immutable = ["v*"]
            [[retention]]
            repository = "acme/*"
            tag = "nightly-*"
            keep_last = 3
            [[image]]
            layout = "l"
            repository = "acme/app"
            immutable = ["stable"]
        "#;
        let c = Config::parse(text, Path::new("/etc/rp")).unwrap();
        let names: Vec<_> = c.targets.iter().map(|t| t.name.clone().unwrap()).collect();
        assert_eq!(names, ["r2", "mirror"]);
        assert_eq!(c.targets[1].to.as_deref(), Some("/etc/rp/mirror"));
        assert_eq!(c.immutable.len(), 2);
        assert_eq!(c.immutable[1].repository.as_deref(), Some("acme/app"));
        assert_eq!(c.retention[0].keep_last, Some(3));
        let twice = "[[target]]\nto='a'\n[[target]]\nto='a'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(twice, Path::new("."))
                .unwrap_err()
                .contains("more than once")
        );
        let keeps_nothing = "[[retention]]\nrepository='*'\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(keeps_nothing, Path::new("."))
                .unwrap_err()
                .contains("keeps nothing")
        );
        let bad_glob = "[policy]\nimmutable=['[']\n[[image]]\nlayout='x'\nrepository='a'";
        assert!(
            Config::parse(bad_glob, Path::new("."))
                .unwrap_err()
                .contains("immutable")
        );
    }

    #[test]
    fn a_target_table_may_leave_to_to_the_flags() {
        let text = "[target]\nregion='auto'\nto=''\n[[image]]\nlayout='x'\nrepository='a'";
        let table = Config::parse(text, Path::new("/etc/rp"))
            .unwrap()
            .targets
            .remove(0);
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
