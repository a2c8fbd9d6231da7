//! Yank (quarantine): take an image off the shelves in one command, and keep it off.
//!
//! `regpress yank REF… --reason TEXT` removes every tag, in every repository of the target,
//! that resolves to the yanked digest or to an index listing it, and records the yank at
//! `v2/_regpress/yanked/<digest>` (digest, reason, time, who). Publishes list that prefix (one
//! request) and refuse a yanked digest unless told `--allow-yanked`; `regpress unyank` removes
//! the record. The record is written before any tag is removed, so a publish racing the yank
//! sees it; the tag lists and catalog are then settled as a publish settles them
//! ([`crate::lists`]). Blobs and manifests stay until `gc` finds them unreachable.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Error;
use crate::site::{self, Content};
use crate::store::{Attributes, Body, ObjectInfo, Store, StoreError};
use crate::sync::Inventory;
use crate::verify::VerifiedImage;

/// Where yank records live: beside the repositories, under a name no repository can have.
pub const YANKED: &str = "v2/_regpress/yanked/";

/// Key of the record of `digest`'s yank.
pub fn record_key(digest: &Digest) -> String {
    format!("{YANKED}{digest}")
}

/// A yank record, as stored (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The yanked digest (an index or a manifest).
    pub digest: String,
    /// Why.
    pub reason: String,
    /// When, RFC 3339.
    pub time: String,
    /// Who, from the environment (`REGPRESS_ACTOR`, else `GITHUB_ACTOR` and the workflow,
    /// else `USER`).
    pub by: String,
    /// The references the yank was asked for.
    pub refs: Vec<String>,
}

/// What to yank: `repo@sha256:…` or `repo:tag` (a tag is resolved to its digest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    /// `repo@sha256:…`.
    Digest(String, Digest),
    /// `repo:tag`.
    Tag(String, String),
}

impl Ref {
    /// Parse `repo@sha256:…` or `repo:tag`.
    pub fn parse(text: &str) -> Result<Ref, String> {
        let bad = |why: &str| format!("{text:?}: {why} (give repo@sha256:<hex> or repo:tag)");
        if let Some((repo, digest)) = text.split_once('@') {
            crate::names::check_repository(repo).map_err(|e| bad(&e))?;
            let digest = Digest::parse(digest).map_err(|e| bad(&e.to_string()))?;
            return Ok(Ref::Digest(repo.to_string(), digest));
        }
        let (repo, tag) = text
            .rsplit_once(':')
            .ok_or_else(|| bad("no tag or digest"))?;
        crate::names::check_repository(repo).map_err(|e| bad(&e))?;
        crate::names::check_tag(tag).map_err(|e| bad(&e))?;
        Ok(Ref::Tag(repo.to_string(), tag.to_string()))
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ref::Digest(repo, digest) => write!(f, "{repo}@{digest}"),
            Ref::Tag(repo, tag) => write!(f, "{repo}:{tag}"),
        }
    }
}

/// The references of a `regpress sbom search --json` result: each match's
/// `repository@digest`.
pub fn refs_from_search(json: &[u8]) -> Result<Vec<Ref>, String> {
    #[derive(Deserialize)]
    struct Search {
        matches: Vec<Match>,
    }
    #[derive(Deserialize)]
    struct Match {
        repository: String,
        digest: String,
    }
    let search: Search = serde_json::from_slice(json)
        .map_err(|e| format!("not a `regpress sbom search --json` result: {e}"))?;
    let mut refs: Vec<Ref> = Vec::new();
    for m in search.matches {
        let r = Ref::parse(&format!("{}@{}", m.repository, m.digest))?;
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    Ok(refs)
}

/// Who is yanking, from the environment.
pub fn actor() -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(actor) = env("REGPRESS_ACTOR") {
        return actor;
    }
    if let Some(actor) = env("GITHUB_ACTOR") {
        return match env("GITHUB_WORKFLOW_REF") {
            Some(workflow) => format!("{actor} ({workflow})"),
            None => actor,
        };
    }
    env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The yank records of the target, by digest.
pub fn records(store: &dyn Store) -> Result<BTreeMap<Digest, String>, StoreError> {
    Ok(records_in(
        store.list(YANKED)?.iter().map(|i| i.key.as_str()),
    ))
}

/// The yank records among `keys`, by digest.
fn records_in<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeMap<Digest, String> {
    keys.filter_map(|key| {
        let digest = Digest::parse(key.strip_prefix(YANKED)?).ok()?;
        Some((digest, key.to_string()))
    })
    .collect()
}

/// Refuse to publish any of `images` whose index or manifests were yanked from the target: the
/// records are among the `inventory` when it listed all of `v2/`, else one more listing; the
/// record of each refused digest is read to say why.
pub fn refuse_yanked(
    store: &dyn Store,
    inventory: &Inventory,
    images: &[VerifiedImage],
) -> Result<(), Error> {
    let yanked = if inventory.whole {
        records_in(inventory.objects.keys().map(String::as_str))
    } else {
        records(store)?
    };
    if yanked.is_empty() {
        return Ok(());
    }
    let mut refused = Vec::new();
    for image in images {
        let digests = std::iter::once(&image.root).chain(&image.documents);
        for digest in digests.map(|d| &d.digest).collect::<BTreeSet<_>>() {
            let Some(key) = yanked.get(digest) else {
                continue;
            };
            let why = match store.get(key)? {
                Some(f) => match serde_json::from_slice::<Record>(&f.bytes) {
                    Ok(r) => format!("\"{}\", by {} at {}", r.reason, r.by, r.time),
                    Err(e) => format!("the record is unreadable: {e}"),
                },
                None => "the record is gone (unyanked meanwhile?)".to_string(),
            };
            refused.push(format!(
                "image {} (layout {}): {digest} was yanked from {} ({why}; record {key})",
                image.name(),
                image.layout.display(),
                store.name()
            ));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::Governance(format!(
        "{}; nothing was written: publish it anyway with --allow-yanked, or lift the yank with \
         `regpress unyank`",
        refused.join("; ")
    )))
}

/// What a yank did (or, on a dry run, would do) to one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The target.
    pub target: String,
    /// True when nothing was written on purpose.
    pub dry_run: bool,
    /// The digests yanked, each with its record's key.
    pub yanked: Vec<Yanked>,
    /// Every tag removed.
    pub removed_tags: Vec<RemovedTag>,
    /// Tag lists and catalogs rewritten to match.
    pub lists_rewritten: u64,
}

/// One yanked digest.
#[derive(Clone, Debug, Serialize)]
pub struct Yanked {
    /// The digest.
    pub digest: Digest,
    /// Where its record is.
    pub record: String,
}

/// A tag a yank removes.
#[derive(Clone, Debug, Serialize)]
pub struct RemovedTag {
    /// Repository name.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// What it pointed at.
    pub digest: Digest,
}

/// Yank `refs` from `store`: record each digest, then remove every tag reaching one, then
/// settle the lists. `dry_run`: find, write nothing.
pub fn yank(
    store: &dyn Store,
    refs: &[Ref],
    reason: &str,
    dry_run: bool,
    pool: &rayon::ThreadPool,
) -> Result<Report, Error> {
    let listing = store.list("v2/")?;
    let mut digests: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for r in refs {
        let digest = match r {
            Ref::Digest(_, digest) => digest.clone(),
            Ref::Tag(repo, tag) => match store.get(&site::tag_key(repo, tag))? {
                Some(f) => Digest::of_bytes(&f.bytes),
                None => {
                    return Err(Error::Usage(format!(
                        "{r}: no such tag in {} (yank a digest with repo@sha256:…)",
                        store.name()
                    )));
                }
            },
        };
        digests.entry(digest).or_default().push(r.to_string());
    }
    let reaching = tags_reaching(store, &listing, &digests.keys().cloned().collect(), pool)?;
    let mut report = Report {
        target: store.name().to_string(),
        dry_run,
        yanked: digests
            .keys()
            .map(|d| Yanked {
                digest: d.clone(),
                record: record_key(d),
            })
            .collect(),
        removed_tags: reaching,
        lists_rewritten: 0,
    };
    if dry_run {
        return Ok(report);
    }
    let by = actor();
    let time = jiff::Timestamp::now().to_string();
    for (digest, refs) in digests {
        let record = Record {
            digest: digest.to_string(),
            reason: reason.to_string(),
            time: time.clone(),
            by: by.clone(),
            refs,
        };
        let bytes = serde_json::to_vec_pretty(&record)
            .map_err(|e| Error::Internal(format!("cannot encode yank record: {e}")))?;
        let attributes = Attributes {
            content_type: site::JSON_CONTENT_TYPE.to_string(),
            cache_control: site::CACHE_NONE.to_string(),
            sha256: Digest::of_bytes(&bytes),
        };
        store.put(
            &record_key(&digest),
            &Body::Bytes(bytes.into()),
            &attributes,
        )?;
    }
    let removed = report
        .removed_tags
        .iter()
        .map(|t| (t.repository.as_str(), t.tag.as_str()));
    report.lists_rewritten = super::remove_tags(store, removed, pool)?;
    Ok(report)
}

/// Every tag of `listing` whose manifest is one of `digests` or an index listing one, and the
/// referrers-schema tags (`sha256-<hex>`) of those images and of the manifests their indexes
/// list: the tags of each repository holding one of `digests` by digest (an index and the
/// manifests it lists are stored in one repository), read in parallel.
fn tags_reaching(
    store: &dyn Store,
    listing: &[ObjectInfo],
    digests: &BTreeSet<Digest>,
    pool: &rayon::ThreadPool,
) -> Result<Vec<RemovedTag>, StoreError> {
    let holding: BTreeSet<&str> = listing
        .iter()
        .filter_map(|i| site::parse_content_key(&i.key))
        .filter(|(_, kind, digest)| *kind == Content::Manifest && digests.contains(digest))
        .map(|(repo, _, _)| repo)
        .collect();
    let tags: Vec<(&str, &str)> = listing
        .iter()
        .filter_map(|i| site::parse_tag_key(&i.key))
        .filter(|(repo, _)| holding.contains(repo))
        .collect();
    let read: Vec<Option<(RemovedTag, Vec<Digest>)>> = pool.install(|| {
        tags.par_iter()
            .map(|(repo, tag)| {
                let Some(fetched) = store.get(&site::tag_key(repo, tag))? else {
                    return Ok(None);
                };
                let tag = RemovedTag {
                    repository: repo.to_string(),
                    tag: tag.to_string(),
                    digest: Digest::of_bytes(&fetched.bytes),
                };
                Ok(Some((tag, listed(&fetched.bytes))))
            })
            .collect::<Result<_, StoreError>>()
    })?;
    let read: Vec<(RemovedTag, Vec<Digest>)> = read.into_iter().flatten().collect();
    let mut gone = digests.clone();
    for (tag, listed) in &read {
        if digests.contains(&tag.digest) || listed.iter().any(|d| digests.contains(d)) {
            gone.insert(tag.digest.clone());
            gone.extend(listed.iter().cloned());
        }
    }
    let referrers_tag = |d: &Digest| format!("sha256-{}", d.hex());
    let fallbacks: BTreeSet<String> = gone.iter().map(referrers_tag).collect();
    Ok(read
        .into_iter()
        .filter(|(tag, listed)| {
            digests.contains(&tag.digest)
                || listed.iter().any(|d| digests.contains(d))
                || fallbacks.contains(&tag.tag)
        })
        .map(|(tag, _)| tag)
        .collect())
}

/// The manifests the document `bytes` lists, if it is an index.
fn listed(bytes: &[u8]) -> Vec<Digest> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let entries = doc["manifests"].as_array().into_iter().flatten();
    entries
        .filter_map(|e| Digest::parse(e["digest"].as_str()?).ok())
        .collect()
}

/// Lift the yanks of `digests`: remove their records (those that exist). Returns the records
/// removed (on a dry run, that would be).
pub fn unyank(store: &dyn Store, digests: &[Digest], dry_run: bool) -> Result<Vec<String>, Error> {
    let held = records(store)?;
    let keys: Vec<String> = digests
        .iter()
        .filter_map(|d| held.get(d).cloned())
        .collect();
    if !dry_run && !keys.is_empty() {
        store.delete_many(&keys)?;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_and_say_what_is_wrong() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(
            Ref::parse(&format!("acme/app@{d}")).unwrap(),
            Ref::Digest("acme/app".into(), d.clone())
        );
        assert_eq!(
            Ref::parse("localhost/acme/app:v1").unwrap(),
            Ref::Tag("localhost/acme/app".into(), "v1".into())
        );
        assert!(
            Ref::parse("acme/app")
                .unwrap_err()
                .contains("no tag or digest")
        );
        assert!(Ref::parse("acme/app@sha256:zz").is_err());
        let search = format!(
            r#"{{"matches":[{{"repository":"a","digest":"{d}"}},{{"repository":"a","digest":"{d}"}}]}}"#
        );
        assert_eq!(refs_from_search(search.as_bytes()).unwrap().len(), 1);
        assert!(refs_from_search(b"[]").is_err());
    }

    #[test]
    fn an_index_lists_what_its_manifests_name() {
        let d = Digest::of_bytes(b"platform");
        let index = format!(r#"{{"manifests":[{{"digest":"{d}"}},{{"digest":"bad"}}]}}"#);
        assert_eq!(listed(index.as_bytes()), [d]);
        assert!(listed(b"{}").is_empty());
        assert!(listed(b"not json").is_empty());
    }
}
