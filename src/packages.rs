//! The package index: which repository:tag and platform lists which package in its SBOM, so
//! `regpress sbom search` answers "which images contain X?" with a handful of GETs instead of a
//! crawl of every SBOM of the catalog.
//!
//! Two kinds of objects, under `v2/_regpress/packages/` (no repository name starts with `_`,
//! so no registry path reaches them):
//!
//! - **shards** `shards/<xx>.json`, `xx` the first byte (hex) of the sha256 of a lowercased
//!   package name: every [`Entry`] of every package of that name (and of every package whose
//!   purl has that name). An entry is a fact about content, not about tags: "the SBOM `sbom`
//!   of `digest` (a platform manifest of `index`) in `repository` lists `package` at `version`".
//!   A name query is one GET.
//! - **tag maps** `tags/<repository>.json`: the repository's tags and the digest each names,
//!   settled against the tags present as [`crate::lists`] settles tag lists (only for
//!   repositories that have had packages indexed: a catalog without SBOMs gets no index). A search keeps an
//!   entry for each tag of its repository that names its root (its index, or the manifest
//!   itself): one more GET per repository that has a match.
//!
//! A publish ([`update`]) reads the shards its entries go to, then settles the tag maps of its
//! repositories (listing their tags after the reads), merges its entries into each shard while
//! dropping the entries of those repositories that no tag reaches any more, and writes each shard
//! that changed with compare-and-swap where the store honours it (a lost race reads, lists
//! and merges again); elsewhere it writes and checks again until a round agrees, as the lists
//! do. So a racing publisher's entries are never lost. `regpress check --repair` ([`rebuild`])
//! derives the whole index again from the SBOM referrers the target holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use packageurl::PackageUrl;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::lists::{MAX_ROUNDS, settle_key};
use crate::site::{self, Phase, Removal, SiteObject};
use crate::store::{Condition, Fetched, Store, StoreError, Support};
use crate::sync::Change;
use crate::verify::VerifiedImage;
use crate::verify::sbom::{self, CYCLONEDX_MEDIA_TYPE, SPDX_MEDIA_TYPE};
use crate::verify::vex::{self, Statement, VEX_MEDIA_TYPE};

/// Where the package index lives.
pub const PREFIX: &str = "v2/_regpress/packages/";

/// The most bytes of an index object a search reads.
pub const MAX_INDEX_OBJECT: u64 = 256 * 1024 * 1024;

/// One package one SBOM lists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    /// The repository.
    pub repository: String,
    /// The tagged image index the SBOM's subject belongs to (`None` for a tagged manifest).
    pub index: Option<String>,
    /// The SBOM's subject: a platform manifest, or the index itself.
    pub digest: String,
    /// The subject's platform (`linux/amd64`), when it is a platform manifest of an index.
    pub platform: Option<String>,
    /// The package's name, as the SBOM gives it.
    pub package: String,
    /// Its version.
    pub version: Option<String>,
    /// Its package URL.
    pub purl: Option<String>,
    /// The SBOM document's digest.
    pub sbom: String,
    /// The statements of the image's VEX documents that name this package as a subcomponent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vex: Vec<Statement>,
}

impl Entry {
    /// With the `statements` that name its package (by purl, or by name) as a subcomponent.
    fn covered_by(mut self, statements: &[Statement]) -> Entry {
        self.vex = statements
            .iter()
            .filter(|s| {
                s.subcomponents.iter().any(|c| match &self.purl {
                    Some(purl) if c.starts_with("pkg:") => purl_matches(c, purl),
                    _ => c.eq_ignore_ascii_case(&self.package),
                })
            })
            .cloned()
            .collect();
        self
    }

    /// The tagged digest this entry is about.
    fn root(&self) -> &str {
        self.index.as_deref().unwrap_or(&self.digest)
    }

    /// The shards it goes to: those of its name and of its purl's name.
    fn shards(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::from([self.package.to_lowercase()]);
        if let Some(purl) = self
            .purl
            .as_deref()
            .and_then(|p| PackageUrl::from_str(p).ok())
        {
            names.insert(purl.name().to_lowercase());
        }
        names.iter().map(|n| shard_key(n)).collect()
    }
}

/// A shard's body.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Shard {
    entries: BTreeSet<Entry>,
}

/// A tag map's body: every tag of the repository and the digest it names.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TagMap {
    repository: String,
    tags: BTreeMap<String, String>,
}

/// The key of the shard holding the packages called `name` (any case).
pub fn shard_key(name: &str) -> String {
    let hash = Sha256::digest(name.to_lowercase().as_bytes());
    format!("{PREFIX}shards/{:02x}.json", hash[0])
}

/// The key of a repository's tag map.
pub fn tag_map_key(repository: &str) -> String {
    format!("{PREFIX}tags/{repository}.json")
}

/// Every package the SBOMs of `images` list.
pub fn entries(images: &[VerifiedImage]) -> Vec<Entry> {
    let mut out = Vec::new();
    for image in images {
        let index = (image.root.level > 0).then(|| image.root.digest.to_string());
        let statements = vex::statements(&image.attachments);
        for sbom in &image.sboms {
            for p in sbom::packages(&sbom.bytes) {
                let entry = Entry {
                    repository: image.repository.clone(),
                    index: index.clone(),
                    digest: sbom.subject.to_string(),
                    platform: sbom.platform.clone(),
                    package: p.name,
                    version: p.version,
                    purl: p.purl,
                    sbom: sbom.digest.to_string(),
                    vex: Vec::new(),
                };
                out.push(entry.covered_by(&statements));
            }
        }
    }
    out
}

/// What keeping the index wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Indexed {
    /// Shards and tag maps written or removed.
    pub written: u64,
}

/// After a publish's writes (`changes`, `removals`): add the packages of `images` to the index
/// and settle the tag maps of every repository the run touched. Nothing when the run wrote
/// nothing.
pub fn update(
    store: &dyn Store,
    images: &[VerifiedImage],
    changes: &[Change],
    removals: &[Removal],
    pool: &rayon::ThreadPool,
) -> Result<Indexed, StoreError> {
    if !changes.iter().any(|c| c.write) && removals.is_empty() {
        return Ok(Indexed::default());
    }
    let mut repos: BTreeSet<String> = images.iter().map(|i| i.repository.clone()).collect();
    repos.extend(
        removals
            .iter()
            .filter_map(|r| site::parse_tag_key(&r.key))
            .map(|(repo, _)| repo.to_string()),
    );
    let mut new: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut listed = BTreeSet::new();
    for entry in entries(images) {
        listed.insert(entry.repository.clone());
        for key in entry.shards() {
            new.entry(key).or_default().push(entry.clone());
        }
    }
    // A repository that never had a package indexed has no tag map to keep.
    let mut repos_indexed = BTreeSet::new();
    for repo in repos {
        if listed.contains(&repo) || store.head(&tag_map_key(&repo))?.is_some() {
            repos_indexed.insert(repo);
        }
    }
    let repos = repos_indexed;
    if repos.is_empty() {
        return Ok(Indexed::default());
    }
    // Read the shards first: the tag listing that follows sees every tag written before a
    // read, so a swap against that read loses no one's entry.
    let mut current = read_all(store, new.keys(), pool)?;
    let mut view = settle_tag_maps(store, &repos, pool)?;
    let mut written = view.written;
    let conditional = store.conditional_writes()? == Support::Yes;
    for round in 0..MAX_ROUNDS {
        let results: Vec<(String, bool, u64)> = pool.install(|| {
            current
                .par_iter()
                .map(|(key, fetched)| {
                    let (done, writes) = merge_shard(
                        store,
                        key,
                        fetched.as_ref(),
                        &new[key],
                        &view.tags,
                        conditional,
                    )?;
                    Ok((key.clone(), done, writes))
                })
                .collect::<Result<_, StoreError>>()
        })?;
        written += results.iter().map(|r| r.2).sum::<u64>();
        let pending: Vec<&String> = results.iter().filter(|r| !r.1).map(|r| &r.0).collect();
        if pending.is_empty() {
            return Ok(Indexed { written });
        }
        std::thread::sleep(Duration::from_millis(
            fastrand::u64(10..=50) << round.min(4),
        ));
        current = read_all(store, pending.into_iter(), pool)?;
        view.tags = tag_view(store, &repos, pool)?;
    }
    Err(StoreError::new(
        store.name(),
        Some(PREFIX),
        format!(
            "package index still changing under concurrent writers after {MAX_ROUNDS} rounds; re-run, or run `regpress check --repair`"
        ),
    ))
}

/// Every key's object, read in parallel.
fn read_all<'a>(
    store: &dyn Store,
    keys: impl Iterator<Item = &'a String>,
    pool: &rayon::ThreadPool,
) -> Result<Vec<(String, Option<Fetched>)>, StoreError> {
    let keys: Vec<&String> = keys.collect();
    pool.install(|| {
        keys.par_iter()
            .map(|key| Ok(((*key).clone(), store.get(key)?)))
            .collect()
    })
}

/// One round for one shard: `current` (as read), merged with `new` and rid of the entries of
/// the `view`'s repositories that no tag reaches; written (or removed) when that differs.
/// Returns whether the shard is settled, and the writes made.
fn merge_shard(
    store: &dyn Store,
    key: &str,
    current: Option<&Fetched>,
    new: &[Entry],
    view: &BTreeMap<String, BTreeMap<String, String>>,
    conditional: bool,
) -> Result<(bool, u64), StoreError> {
    let stored = match current {
        Some(f) => {
            parse::<Shard>(&f.bytes).map_err(|e| StoreError::new(store.name(), Some(key), e))?
        }
        None => Shard::default(),
    };
    let tagged = |e: &Entry| match view.get(&e.repository) {
        Some(tags) => tags.values().any(|d| d == e.root()),
        None => true,
    };
    let mut wanted = Shard::default();
    wanted.entries.extend(
        stored
            .entries
            .iter()
            .chain(new)
            .filter(|e| tagged(e))
            .cloned(),
    );
    if current.is_some() && wanted.entries == stored.entries {
        return Ok((true, 0));
    }
    if current.is_none() && wanted.entries.is_empty() {
        return Ok((true, 0));
    }
    // A shard left empty is written empty, not removed: a removal cannot be conditional, and
    // could drop the entries a concurrent run has just swapped in (rebuilds remove them).
    let object = json_object(key, &wanted);
    if conditional {
        let condition = match current {
            None => Condition::Absent,
            Some(f) => match &f.etag {
                Some(etag) => Condition::Matches(etag.clone()),
                None => {
                    store.put(key, &object.body, &object.attributes())?;
                    return Ok((false, 1));
                }
            },
        };
        let swapped = store.put_if(key, &object.body, &object.attributes(), &condition)?;
        return Ok((swapped, u64::from(swapped)));
    }
    // No compare-and-swap: write, and check in the next round that it held.
    store.put(key, &object.body, &object.attributes())?;
    Ok((false, 1))
}

/// The tag maps settled, and the tags they hold.
struct View {
    tags: BTreeMap<String, BTreeMap<String, String>>,
    written: u64,
}

/// Settle the tag map of each of `repos` against its tags present (removing the maps of
/// repositories without tags); returns the tags as last listed.
fn settle_tag_maps(
    store: &dyn Store,
    repos: &BTreeSet<String>,
    pool: &rayon::ThreadPool,
) -> Result<View, StoreError> {
    let seen = Mutex::new(BTreeMap::new());
    let written: Vec<u64> = pool.install(|| {
        repos
            .par_iter()
            .map(|repo| {
                settle_key(store, &tag_map_key(repo), || {
                    let tags = tags_of(store, repo)?;
                    let object = (!tags.is_empty()).then(|| {
                        let map = TagMap {
                            repository: repo.clone(),
                            tags: tags.clone(),
                        };
                        json_object(&tag_map_key(repo), &map)
                    });
                    if let Ok(mut seen) = seen.lock() {
                        seen.insert(repo.clone(), tags);
                    }
                    Ok(object)
                })
            })
            .collect::<Result<_, StoreError>>()
    })?;
    let tags = seen.into_inner().map_err(|_| {
        StoreError::new(
            store.name(),
            Some(PREFIX),
            "internal: a tag listing panicked",
        )
    })?;
    Ok(View {
        tags,
        written: written.iter().sum(),
    })
}

/// The tags of `repos` present, each with the digest it names.
fn tag_view(
    store: &dyn Store,
    repos: &BTreeSet<String>,
    pool: &rayon::ThreadPool,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, StoreError> {
    pool.install(|| {
        repos
            .par_iter()
            .map(|repo| Ok((repo.clone(), tags_of(store, repo)?)))
            .collect()
    })
}

/// A repository's tags present and their digests, from the one listing of its manifests: the
/// digest the store records (the directory target), else the manifest by digest with the same
/// single-part ETag (the MD5 of the bytes) and size, else one HEAD.
fn tags_of(store: &dyn Store, repo: &str) -> Result<BTreeMap<String, String>, StoreError> {
    let listing = store.list(&format!("{}manifests/", site::repository_prefix(repo)))?;
    let by_etag: BTreeMap<(&str, u64), String> = listing
        .iter()
        .filter_map(|info| {
            let (_, _, digest) = site::parse_content_key(&info.key)?;
            let etag = info.etag.as_deref().filter(|e| !e.contains('-'))?;
            Some(((etag, info.size), digest.to_string()))
        })
        .collect();
    let mut tags = BTreeMap::new();
    for info in &listing {
        let Some((_, tag)) = site::parse_tag_key(&info.key) else {
            continue;
        };
        let same_bytes = info
            .etag
            .as_deref()
            .and_then(|etag| by_etag.get(&(etag, info.size)).cloned());
        let digest = match (&info.sha256, same_bytes) {
            (Some(d), _) => Some(d.to_string()),
            (None, Some(d)) => Some(d),
            (None, None) => store
                .head(&info.key)?
                .and_then(|i| i.sha256)
                .map(|d| d.to_string()),
        };
        if let Some(digest) = digest {
            tags.insert(tag.to_string(), digest);
        }
    }
    Ok(tags)
}

/// An index object, compact JSON. Not for caches: every change must show at once.
fn json_object(key: &str, value: &impl Serialize) -> SiteObject {
    let value = serde_json::to_value(value).unwrap_or_default();
    let mut object = site::json_object(key.to_string(), &value, Phase::Catalog);
    object.cache_control = "no-store";
    object
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a package index object: {e}"))
}

/// `regpress check --repair`: derive the whole index again from the tags present and the SBOM
/// referrers they reach (SBOM files and SBOM artifacts; SBOMs carried only inside attestations
/// return with the image's next publish). Returns the objects written or removed.
pub fn rebuild(store: &dyn Store, pool: &rayon::ThreadPool) -> Result<Indexed, StoreError> {
    let listing = store.list("v2/")?;
    let repos: BTreeSet<String> = site::tags_in(listing.iter().map(|i| i.key.as_str()))
        .into_keys()
        .collect();
    let view = tag_view(store, &repos, pool)?;
    let roots: BTreeSet<(&String, &String)> = view
        .iter()
        .flat_map(|(repo, tags)| tags.values().map(move |d| (repo, d)))
        .collect();
    let found: Vec<Vec<Entry>> = pool.install(|| {
        roots
            .par_iter()
            .map(|(repo, root)| crawl(store, repo, root))
            .collect::<Result<_, StoreError>>()
    })?;
    let mut shards: BTreeMap<String, Shard> = BTreeMap::new();
    for entry in found.into_iter().flatten() {
        for key in entry.shards() {
            shards.entry(key).or_default().entries.insert(entry.clone());
        }
    }
    let mut wanted: BTreeMap<String, Option<SiteObject>> = shards
        .iter()
        .map(|(key, shard)| (key.clone(), Some(json_object(key, shard))))
        .collect();
    let indexed: BTreeSet<&String> = shards
        .values()
        .flat_map(|s| s.entries.iter().map(|e| &e.repository))
        .collect();
    for (repo, tags) in view.iter().filter(|(repo, _)| indexed.contains(repo)) {
        let map = TagMap {
            repository: repo.clone(),
            tags: tags.clone(),
        };
        wanted.insert(
            tag_map_key(repo),
            Some(json_object(&tag_map_key(repo), &map)),
        );
    }
    for info in listing.iter().filter(|i| i.key.starts_with(PREFIX)) {
        wanted.entry(info.key.clone()).or_insert(None);
    }
    let written: Vec<u64> = pool.install(|| {
        wanted
            .par_iter()
            .map(|(key, object)| settle_key(store, key, || Ok(object.clone())))
            .collect::<Result<_, StoreError>>()
    })?;
    Ok(Indexed {
        written: written.iter().sum(),
    })
}

/// The entries of one tagged digest: the packages of the SBOM referrers of it and of each
/// platform manifest of it.
fn crawl(store: &dyn Store, repo: &str, root: &str) -> Result<Vec<Entry>, StoreError> {
    let Ok(root_digest) = Digest::parse(root) else {
        return Ok(Vec::new());
    };
    let Some(document) = get_json(store, &site::manifest_key(repo, &root_digest))? else {
        return Ok(Vec::new());
    };
    let children: Vec<(String, Option<String>)> = document["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["digest"].as_str()?.to_string(),
                platform_of(&m["platform"]),
            ))
        })
        .collect();
    let index = document["manifests"].is_array().then(|| root.to_string());
    let mut subjects = vec![(root.to_string(), None)];
    subjects.extend(children);
    let mut out = Vec::new();
    let mut statements = Vec::new();
    for (subject, platform) in subjects {
        let Ok(subject_digest) = Digest::parse(&subject) else {
            continue;
        };
        let Some(referrers) = get_json(store, &site::referrers_key(repo, &subject_digest))? else {
            continue;
        };
        let attached = referrers["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                matches!(
                    r["artifactType"].as_str(),
                    Some(SPDX_MEDIA_TYPE | CYCLONEDX_MEDIA_TYPE | VEX_MEDIA_TYPE)
                )
            });
        for referrer in attached {
            let Some(manifest) = referrer["digest"]
                .as_str()
                .and_then(|d| Digest::parse(d).ok())
            else {
                continue;
            };
            let Some(artifact) = get_json(store, &site::manifest_key(repo, &manifest))? else {
                continue;
            };
            let Some(layer) = artifact["layers"][0]["digest"]
                .as_str()
                .and_then(|d| Digest::parse(d).ok())
            else {
                continue;
            };
            let Some(blob) = store.get(&site::blob_key(repo, &layer))? else {
                continue;
            };
            if Digest::of_bytes(&blob.bytes) != layer {
                continue;
            }
            if referrer["artifactType"] == VEX_MEDIA_TYPE {
                statements.extend(vex::parse_statements(&blob.bytes).unwrap_or_default());
                continue;
            }
            // Only what is still a valid SBOM is indexed.
            if sbom::check_document(&blob.bytes, "").is_err() {
                continue;
            }
            out.extend(sbom::packages(&blob.bytes).into_iter().map(|p| Entry {
                repository: repo.to_string(),
                index: index.clone(),
                digest: subject.clone(),
                platform: platform.clone(),
                package: p.name,
                version: p.version,
                purl: p.purl,
                sbom: layer.to_string(),
                vex: Vec::new(),
            }));
        }
    }
    Ok(out.into_iter().map(|e| e.covered_by(&statements)).collect())
}

/// `os/architecture[/variant]` of an index entry's platform.
fn platform_of(platform: &serde_json::Value) -> Option<String> {
    let os = platform["os"].as_str()?;
    let arch = platform["architecture"].as_str()?;
    Some(match platform["variant"].as_str() {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

fn get_json(store: &dyn Store, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
    Ok(store
        .get(key)?
        .and_then(|f| serde_json::from_slice(&f.bytes).ok()))
}

/// What a search asks for: a name, a version constraint on it, or a purl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// A package name (any case), with a version constraint.
    Name {
        /// The name.
        name: String,
        /// What its version must be.
        version: Constraint,
    },
    /// A package URL: type, namespace and name must agree (and the version, when it has one);
    /// qualifiers are ignored.
    Purl {
        /// As given.
        text: String,
        /// The purl's name (what the shard is chosen by).
        name: String,
    },
}

/// A version constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// Any version.
    Any,
    /// Exactly this one.
    Equal(String),
    /// Older than.
    Less(String),
    /// Older than or equal.
    LessOrEqual(String),
    /// Newer than or equal.
    GreaterOrEqual(String),
}

impl FromStr for Query {
    type Err = String;

    fn from_str(text: &str) -> Result<Query, String> {
        let text = text.trim();
        if text.starts_with("pkg:") {
            let purl = PackageUrl::from_str(text)
                .map_err(|e| format!("query {text:?} is not a valid package URL: {e}"))?;
            return Ok(Query::Purl {
                text: text.to_string(),
                name: purl.name().to_string(),
            });
        }
        // The last `@` that is not the first character (npm scopes start with one).
        let (name, version) = match text
            .char_indices()
            .skip(1)
            .filter(|(_, c)| *c == '@')
            .last()
        {
            Some((at, _)) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        if name.is_empty() {
            return Err("empty query: give a package name, name@version or a purl".to_string());
        }
        let version = match version {
            None => Constraint::Any,
            Some(v) => {
                let (make, v): (fn(String) -> Constraint, &str) =
                    if let Some(v) = v.strip_prefix("<=") {
                        (Constraint::LessOrEqual, v)
                    } else if let Some(v) = v.strip_prefix(">=") {
                        (Constraint::GreaterOrEqual, v)
                    } else if let Some(v) = v.strip_prefix('<') {
                        (Constraint::Less, v)
                    } else {
                        (Constraint::Equal, v)
                    };
                if v.is_empty() {
                    return Err(format!(
                        "query {text:?}: no version after `@` (name@1.2, name@<1.2, name@<=1.2 or name@>=1.2)"
                    ));
                }
                make(v.to_string())
            }
        };
        Ok(Query::Name {
            name: name.to_string(),
            version,
        })
    }
}

impl Query {
    /// The name whose shard holds the answer.
    fn name(&self) -> &str {
        match self {
            Query::Name { name, .. } | Query::Purl { name, .. } => name,
        }
    }

    /// Whether `entry` answers it.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Query::Name { name, version } => {
                entry.package.eq_ignore_ascii_case(name) && version.admits(entry.version.as_deref())
            }
            Query::Purl { text, .. } => {
                entry.purl.as_deref().is_some_and(|p| purl_matches(text, p))
            }
        }
    }
}

impl Constraint {
    /// Whether `version` meets it. Order is version-compare's: numbers compare as numbers, so
    /// apk (`1.36.1-r2`), Debian and semver versions order as their users expect; a version it
    /// cannot compare meets no ordering constraint.
    fn admits(&self, version: Option<&str>) -> bool {
        use version_compare::Cmp;
        let cmp = |wanted: &str| version.and_then(|v| version_compare::compare(v, wanted).ok());
        match self {
            Constraint::Any => true,
            Constraint::Equal(v) => version == Some(v.as_str()),
            Constraint::Less(v) => cmp(v) == Some(Cmp::Lt),
            Constraint::LessOrEqual(v) => matches!(cmp(v), Some(Cmp::Lt | Cmp::Eq)),
            Constraint::GreaterOrEqual(v) => matches!(cmp(v), Some(Cmp::Gt | Cmp::Eq)),
        }
    }
}

/// Whether the purl `found` is the package the purl `query` names: same type, namespace and
/// name, and the same version when the query gives one.
fn purl_matches(query: &str, found: &str) -> bool {
    let (Ok(q), Ok(f)) = (PackageUrl::from_str(query), PackageUrl::from_str(found)) else {
        return false;
    };
    q.ty().eq_ignore_ascii_case(f.ty())
        && q.namespace().map(str::to_lowercase) == f.namespace().map(str::to_lowercase)
        && q.name().eq_ignore_ascii_case(f.name())
        && q.version().is_none_or(|v| f.version() == Some(v))
}

/// One image, tag and platform whose SBOM lists a matching package (`sbom search --json`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Match {
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The SBOM's subject: the platform manifest (or the index, for an SBOM of the index).
    pub digest: String,
    /// The tagged index, when the tag names one.
    pub index: Option<String>,
    /// The platform, for a platform manifest.
    pub platform: Option<String>,
    /// The package's name.
    pub package: String,
    /// Its version.
    pub version: Option<String>,
    /// Its purl.
    pub purl: Option<String>,
    /// The SBOM's digest.
    pub sbom: String,
    /// What the image's VEX documents say of the package, `null` when none names it.
    pub vex: Option<VexStatus>,
}

/// The VEX statements covering a matched package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct VexStatus {
    /// Each statement: vulnerability, status, justification, the document's digest.
    pub statements: Vec<Statement>,
}

/// What a search found (`sbom search --json`).
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// The query, as given.
    pub query: String,
    /// Every match, by repository, tag, platform and package.
    pub matches: Vec<Match>,
    /// GETs the search made.
    pub requests: u64,
}

/// Where a search reads the index from: a store, or a registry's base URL.
pub enum Source<'a> {
    /// A target opened with its credentials.
    Store(&'a dyn Store),
    /// A served registry (`regpress serve`, or an endpoint that serves `v2/_regpress/`).
    Url {
        /// Base URL, e.g. `http://127.0.0.1:5000`.
        base: String,
        /// The client.
        client: reqwest::blocking::Client,
    },
}

impl Source<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Source::Store(store) => store
                .get(key)
                .map(|f| f.map(|f| f.bytes))
                .map_err(|e| e.to_string()),
            Source::Url { base, client } => {
                let url = format!("{}/{key}", base.trim_end_matches('/'));
                let response = client
                    .get(&url)
                    .send()
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if response.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !response.status().is_success() {
                    return Err(format!("GET {url}: {}", response.status()));
                }
                let mut bytes = Vec::new();
                response
                    .take(MAX_INDEX_OBJECT + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if bytes.len() as u64 > MAX_INDEX_OBJECT {
                    return Err(format!("GET {url}: more than {MAX_INDEX_OBJECT} bytes"));
                }
                Ok(Some(bytes))
            }
        }
    }
}

/// Answer `query` from the index at `source`: one GET of the name's shard, then one of the tag
/// map of each repository with a matching entry.
pub fn search(source: &Source, text: &str) -> Result<Found, String> {
    let query: Query = text.parse()?;
    let mut requests = 1;
    let key = shard_key(query.name());
    let shard: Shard = match source.get(&key)? {
        Some(bytes) => parse(&bytes).map_err(|e| format!("{key}: {e}"))?,
        None => Shard::default(),
    };
    let mut by_repo: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for entry in shard.entries.iter().filter(|e| query.matches(e)) {
        by_repo.entry(&entry.repository).or_default().push(entry);
    }
    let mut matches = Vec::new();
    for (repo, entries) in by_repo {
        requests += 1;
        let key = tag_map_key(repo);
        let map: TagMap = match source.get(&key)? {
            Some(bytes) => parse(&bytes).map_err(|e| format!("{key}: {e}"))?,
            None => continue,
        };
        for (tag, digest) in &map.tags {
            for e in entries.iter().filter(|e| e.root() == digest) {
                matches.push(Match {
                    repository: e.repository.clone(),
                    tag: tag.clone(),
                    digest: e.digest.clone(),
                    index: e.index.clone(),
                    platform: e.platform.clone(),
                    package: e.package.clone(),
                    version: e.version.clone(),
                    purl: e.purl.clone(),
                    sbom: e.sbom.clone(),
                    vex: (!e.vex.is_empty()).then(|| VexStatus {
                        statements: e.vex.clone(),
                    }),
                });
            }
        }
    }
    matches.sort();
    matches.dedup();
    Ok(Found {
        query: text.to_string(),
        matches,
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str, purl: Option<&str>) -> Entry {
        Entry {
            repository: "acme/base".into(),
            index: Some("sha256:1".into()),
            digest: "sha256:2".into(),
            platform: Some("linux/amd64".into()),
            package: package.into(),
            version: Some(version.into()),
            purl: purl.map(str::to_string),
            sbom: "sha256:3".into(),
            vex: Vec::new(),
        }
    }

    fn q(text: &str) -> Query {
        text.parse().unwrap()
    }

    #[test]
    fn queries_parse_names_versions_and_purls() {
        assert_eq!(
            q("busybox"),
            Query::Name {
                name: "busybox".into(),
                version: Constraint::Any
            }
        );
        assert_eq!(
            q("openssl@<=3.1.4-r0"),
            Query::Name {
                name: "openssl".into(),
                version: Constraint::LessOrEqual("3.1.4-r0".into())
            }
        );
        assert_eq!(
            q("@types/node@>=20"),
            Query::Name {
                name: "@types/node".into(),
                version: Constraint::GreaterOrEqual("20".into())
            }
        );
        assert!(
            matches!(q("pkg:apk/wolfi/busybox@1.36"), Query::Purl { ref name, .. } if name == "busybox")
        );
        for bad in ["", "x@", "x@<", "pkg:"] {
            assert!(bad.parse::<Query>().is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_order_as_packagers_mean_them() {
        let e = entry(
            "BusyBox",
            "1.36.1-r2",
            Some("pkg:apk/wolfi/busybox@1.36.1-r2?arch=x86_64"),
        );
        for yes in [
            "busybox",
            "busybox@1.36.1-r2",
            "busybox@<1.36.10",
            "busybox@<=1.36.1-r2",
            "busybox@>=1.9",
            "pkg:apk/wolfi/busybox",
            "pkg:apk/wolfi/busybox@1.36.1-r2",
        ] {
            assert!(q(yes).matches(&e), "{yes}");
        }
        for no in [
            "busybo",
            "busybox@1.36.1",
            "busybox@<1.36.1-r2",
            "busybox@>=1.37",
            "pkg:apk/alpine/busybox",
            "pkg:deb/wolfi/busybox",
            "pkg:apk/wolfi/busybox@1.36.1-r3",
        ] {
            assert!(!q(no).matches(&e), "{no}");
        }
    }

    #[test]
    fn an_entry_is_filed_under_its_name_and_its_purls_name() {
        let e = entry(
            "org.acme:widget",
            "1.0",
            Some("pkg:maven/org.acme/widget@1.0"),
        );
        assert_eq!(
            e.shards(),
            BTreeSet::from([shard_key("org.acme:widget"), shard_key("widget")])
        );
        assert_eq!(shard_key("Widget"), shard_key("widget"));
        assert!(shard_key("widget").starts_with("v2/_regpress/packages/shards/"));
    }
}
