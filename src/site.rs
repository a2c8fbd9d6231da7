//! The site plan: every object a registry client can GET, as a pure function of verified images.
//!
//! This is the only module that knows the bucket's key layout, Content-Types and Cache-Control.
//! Manifests are planned byte for byte as they were verified; Content-Type is exactly the
//! document's media type, because clients dispatch on it. Planning is pure (no I/O) so it is
//! tested without any store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Error;
use crate::store::{Attributes, Body};
use crate::verify::VerifiedImage;

/// Cache-Control for content-addressed keys: they never change.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-Control for tags and lists: they move, so caches must recheck soon.
pub const CACHE_SHORT: &str = "public, max-age=60";
/// Cache-Control of records no client reads (a tag's first publication).
pub const CACHE_NONE: &str = "no-store";
/// Content-Type of blobs (configs and layers).
pub const BLOB_CONTENT_TYPE: &str = "application/octet-stream";
/// Content-Type of the JSON API documents (`/v2/`, tag lists, catalog).
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// Content-Type of referrers lists (OCI 1.1 distribution spec).
pub const REFERRERS_CONTENT_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Key of the repository catalog.
pub const CATALOG_KEY: &str = "v2/_catalog";
/// Keys answering `GET /v2/`: the key itself, and an index document for website endpoints.
pub const ROOT_KEYS: [&str; 2] = ["v2/", "v2/index.html"];

/// Publish order. Each phase completes before the next starts, so a reader never sees a
/// reference to something missing: blobs, then manifests by digest (leaves first), then tags,
/// tag lists, the catalog and the API root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Configs and layers.
    Blobs,
    /// Blobs already in the target (or just uploaded) under another repository, copied
    /// server-side instead of sent again.
    BlobCopies,
    /// Manifests and indexes by digest; the number is the nesting level (0 = image manifest).
    Manifests(u32),
    /// `referrers/<digest>`: the OCI 1.1 referrers list of each manifest.
    Referrers,
    /// `manifests/<tag>`.
    Tags,
    /// `tags/list`.
    TagLists,
    /// `_catalog`.
    Catalog,
    /// `v2/`.
    Root,
    /// With `--prune`: removing the tag lists of repositories no longer configured (already
    /// gone from the catalog).
    RemoveTagLists,
    /// With `--prune`: removing tags no longer configured (already gone from their lists).
    RemoveTags,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Blobs => f.write_str("blobs"),
            Phase::BlobCopies => f.write_str("blob copies"),
            Phase::Manifests(0) => f.write_str("manifests"),
            Phase::Manifests(n) => write!(f, "indexes (level {n})"),
            Phase::Referrers => f.write_str("referrers"),
            Phase::Tags => f.write_str("tags"),
            Phase::TagLists => f.write_str("tag lists"),
            Phase::Catalog => f.write_str("catalog"),
            Phase::Root => f.write_str("root"),
            Phase::RemoveTagLists => f.write_str("removed tag lists"),
            Phase::RemoveTags => f.write_str("removed tags"),
        }
    }
}

/// One object of the site.
#[derive(Clone, Debug)]
pub struct SiteObject {
    /// The object key, e.g. `v2/apko/golden/manifests/latest`.
    pub key: String,
    /// Its bytes.
    pub body: Body,
    /// Length of the body.
    pub size: u64,
    /// sha256 of the body (for manifests and blobs, their digest).
    pub sha256: Digest,
    /// Content-Type to serve it with.
    pub content_type: String,
    /// Cache-Control to serve it with.
    pub cache_control: &'static str,
    /// When it is written.
    pub phase: Phase,
}

impl SiteObject {
    /// What the store serves it with.
    pub fn attributes(&self) -> Attributes {
        Attributes {
            content_type: self.content_type.clone(),
            cache_control: self.cache_control.to_string(),
            sha256: self.sha256.clone(),
        }
    }
}

/// A tag the site publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublishedTag {
    /// Repository name.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Digest of the tagged manifest or index.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
}

/// The planned site: objects in publish order.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// Every object, sorted by phase then key.
    pub objects: Vec<SiteObject>,
    /// Every tag published by this plan.
    pub tags: Vec<PublishedTag>,
}

/// What the target already holds that the plan must keep: a publish only adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    /// Tags present per repository.
    pub tags: BTreeMap<String, BTreeSet<String>>,
    /// Repositories in the current catalog.
    pub repositories: BTreeSet<String>,
    /// What the referrers indexes this plan rewrites already list, by repository and subject,
    /// then by referrer digest: kept, since a registry never forgets a referrer because a later
    /// push did not repeat it (see [`crate::sync::held_referrers`]).
    pub referrers: HeldReferrers,
}

/// Referrers entries by (repository, subject), then by referrer digest.
pub type HeldReferrers = BTreeMap<(String, Digest), BTreeMap<Digest, serde_json::Value>>;

/// An object the target holds that the desired state (`publish --prune`) has no place for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// Its key.
    pub key: String,
    /// When it is removed: after every write, lists before the tags they named.
    pub phase: Phase,
}

/// The path segment under which `gc` keeps a repository's marks: an empty object
/// `v2/<repo>/_marked/<kind>/<digest>` says that a collection found the content-addressed
/// `v2/<repo>/<kind>/<digest>` unreachable, at the mark's own modification time (the store's
/// clock, not a publisher's). A later collection deletes the object only once its mark is
/// older than the grace period; a publish treats a marked object as absent and writes it anew.
///
/// No repository name has a component starting with `_`, so no client's request can reach a
/// mark by a registry path, and a mark sorts before the blobs, manifests and referrers of its
/// repository: the one listing of the repository that publish and gc make anyway sees its
/// marks before the objects they mark, at no extra request.
pub const MARKS: &str = "_marked";

/// Key of the mark on the content-addressed `key` (`None` if `key` is not one).
pub fn mark_key(key: &str) -> Option<String> {
    parse_content_key(key)?;
    let (repo_path, last) = key.rsplit_once('/')?;
    let (repo_prefix, kind) = repo_path.rsplit_once('/')?;
    Some(format!("{repo_prefix}/{MARKS}/{kind}/{last}"))
}

/// If `key` is a mark, the content-addressed key it marks.
pub fn parse_mark_key(key: &str) -> Option<String> {
    let (repo_prefix, rest) = key.split_once(&format!("/{MARKS}/"))?;
    let marked = format!("{repo_prefix}/{rest}");
    parse_content_key(&marked).is_some().then_some(marked)
}

/// `v2/<repo>/_tags/<tag>` records that the tag was published, at the record's own
/// modification time (the store's clock): written once when the tag is first published (an
/// empty object), never rewritten while the tag exists, removed with it. Retention dates tags
/// by it ([`crate::governance::retention`]). Like [`MARKS`], no registry path reaches it.
pub const TAG_RECORDS: &str = "_tags";

/// Key of the record of `repository:tag`'s first publication.
pub fn tag_record_key(repository: &str, tag: &str) -> String {
    format!("{}{TAG_RECORDS}/{tag}", repository_prefix(repository))
}

/// If `key` is a tag's record, its repository and tag.
pub fn parse_tag_record_key(key: &str) -> Option<(&str, &str)> {
    let (repo, tag) = key
        .strip_prefix("v2/")?
        .rsplit_once(&format!("/{TAG_RECORDS}/"))?;
    let valid =
        crate::names::check_tag(tag).is_ok() && crate::names::check_repository(repo).is_ok();
    valid.then_some((repo, tag))
}

/// The record of `repository:tag`'s first publication: empty, never cached.
pub fn tag_record_object(repository: &str, tag: &str) -> SiteObject {
    SiteObject {
        key: tag_record_key(repository, tag),
        size: 0,
        sha256: Digest::of_bytes(b""),
        body: Body::Bytes(Arc::from(&b""[..])),
        content_type: BLOB_CONTENT_TYPE.to_string(),
        cache_control: CACHE_NONE,
        phase: Phase::Tags,
    }
}

/// Prefix of every key of a repository.
pub fn repository_prefix(repository: &str) -> String {
    format!("v2/{repository}/")
}

/// Key of a repository's tag list.
pub fn tag_list_key(repository: &str) -> String {
    format!("{}tags/list", repository_prefix(repository))
}

/// Key of a tag.
pub fn tag_key(repository: &str, tag: &str) -> String {
    format!("{}manifests/{tag}", repository_prefix(repository))
}

/// Key of a manifest or index by digest.
pub fn manifest_key(repository: &str, digest: &Digest) -> String {
    format!("{}manifests/{digest}", repository_prefix(repository))
}

/// Key of a config or layer blob.
pub fn blob_key(repository: &str, digest: &Digest) -> String {
    format!("{}blobs/{digest}", repository_prefix(repository))
}

/// A referrers index (OCI 1.1) listing `entries`: every manifest without referrers has one
/// listing none, and `gc` knows those by their bytes without reading them.
pub fn referrers_index(entries: Vec<&serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": REFERRERS_CONTENT_TYPE,
        "manifests": entries,
    })
}

/// Key of the referrers index (OCI 1.1) of the manifest `subject`.
pub fn referrers_key(repository: &str, subject: &Digest) -> String {
    format!("{}referrers/{subject}", repository_prefix(repository))
}

/// If `key` is a tag list (`v2/<repo>/tags/list`), its repository.
pub fn parse_tag_list_key(key: &str) -> Option<&str> {
    let repo = key.strip_prefix("v2/")?.strip_suffix("/tags/list")?;
    crate::names::check_repository(repo).is_ok().then_some(repo)
}

/// What a content-addressed key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Content {
    /// `v2/<repo>/blobs/<digest>`.
    Blob,
    /// `v2/<repo>/manifests/<digest>`.
    Manifest,
    /// `v2/<repo>/referrers/<digest>`: the referrers index of that manifest.
    Referrers,
}

/// If `key` is content-addressed (a blob, a manifest by digest or a referrers index), its
/// repository, kind and digest.
pub fn parse_content_key(key: &str) -> Option<(&str, Content, Digest)> {
    let rest = key.strip_prefix("v2/")?;
    let (path, reference) = rest.rsplit_once('/')?;
    let (repo, kind) = path.rsplit_once('/')?;
    let kind = match kind {
        "blobs" => Content::Blob,
        "manifests" => Content::Manifest,
        "referrers" => Content::Referrers,
        _ => return None,
    };
    let digest = Digest::parse(reference).ok()?;
    let canonical = digest.as_str() == reference && crate::names::check_repository(repo).is_ok();
    canonical.then_some((repo, kind, digest))
}

/// The tags of the target: every tag key in `keys`, by repository.
pub fn tags_in<'a>(keys: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, BTreeSet<String>> {
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in keys {
        if let Some((repo, tag)) = parse_tag_key(key) {
            tags.entry(repo.to_string())
                .or_default()
                .insert(tag.to_string());
        }
    }
    tags
}

/// A repository's tag list document.
pub fn tag_list_object(repository: &str, tags: &BTreeSet<String>) -> SiteObject {
    let body = serde_json::json!({ "name": repository, "tags": tags });
    json_object(tag_list_key(repository), &body, Phase::TagLists)
}

/// The catalog document.
pub fn catalog_object(repositories: &BTreeSet<String>) -> SiteObject {
    let body = serde_json::json!({ "repositories": repositories });
    json_object(CATALOG_KEY.to_string(), &body, Phase::Catalog)
}

/// Desired state (`publish --prune`): of the `present` keys, the tags and tag lists that the
/// plan does not produce. Generated tags the plan produces are kept; manifests and blobs are
/// left to `gc`.
pub fn prune<'a>(site: &Site, present: impl IntoIterator<Item = &'a str>) -> Vec<Removal> {
    let planned: BTreeSet<&str> = site.objects.iter().map(|o| o.key.as_str()).collect();
    let mut removals: Vec<Removal> = present
        .into_iter()
        .filter(|key| !planned.contains(key))
        .filter_map(|key| {
            let phase = if parse_tag_key(key).is_some() || parse_tag_record_key(key).is_some() {
                Phase::RemoveTags
            } else if parse_tag_list_key(key).is_some() {
                Phase::RemoveTagLists
            } else {
                return None;
            };
            Some(Removal {
                key: key.to_string(),
                phase,
            })
        })
        .collect();
    removals.sort_by(|a, b| (a.phase, &a.key).cmp(&(b.phase, &b.key)));
    removals
}

/// If `key` is a tag (`v2/<repo>/manifests/<tag>`), its repository and tag.
pub fn parse_tag_key(key: &str) -> Option<(&str, &str)> {
    let (repo, reference) = key.strip_prefix("v2/")?.rsplit_once("/manifests/")?;
    let valid = !reference.contains('/')
        && crate::names::check_tag(reference).is_ok()
        && crate::names::check_repository(repo).is_ok();
    valid.then_some((repo, reference))
}

/// Why a site cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Two images of the run claim one tag with different content.
    #[error("tag {repository}:{tag} is claimed by two different images: {first} and {second}")]
    TagClaimedTwice {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
        /// The image that claimed it first.
        first: Box<Owner>,
        /// The image that claimed it again.
        second: Box<Owner>,
    },
}

/// An image claiming a tag: its root digest, and the layout it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The tagged digest.
    pub digest: Digest,
    /// The layout directory.
    pub layout: PathBuf,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.digest, self.layout.display())
    }
}

/// Two images for one tag is a mistake in what the user asked to publish.
impl From<PlanError> for Error {
    fn from(e: PlanError) -> Error {
        Error::Usage(e.to_string())
    }
}

/// Plan the site for `images`, keeping what `existing` says the target already has.
/// Fails only when two images claim the same tag with different content.
pub fn plan(images: &[VerifiedImage], existing: &Existing) -> Result<Site, PlanError> {
    let mut objects: BTreeMap<String, SiteObject> = BTreeMap::new();
    let mut tag_owner: BTreeMap<String, Owner> = BTreeMap::new();
    let mut tags = Vec::new();
    let mut lists: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut referrers: BTreeMap<(String, Digest), BTreeMap<Digest, serde_json::Value>> =
        BTreeMap::new();

    for image in images {
        let repo = &image.repository;
        let prefix = repository_prefix(repo);
        for blob in &image.blobs {
            add(
                &mut objects,
                SiteObject {
                    key: format!("{prefix}blobs/{}", blob.digest),
                    body: Body::file(blob.path.clone(), blob.size),
                    size: blob.size,
                    sha256: blob.digest.clone(),
                    content_type: BLOB_CONTENT_TYPE.to_string(),
                    cache_control: CACHE_IMMUTABLE,
                    phase: Phase::Blobs,
                },
            );
        }
        for doc in &image.documents {
            add(
                &mut objects,
                document_object(
                    format!("{prefix}manifests/{}", doc.digest),
                    doc,
                    Phase::Manifests(doc.level),
                    CACHE_IMMUTABLE,
                ),
            );
        }
        let list = lists
            .entry(repo.clone())
            .or_insert_with(|| existing.tags.get(repo).cloned().unwrap_or_default());
        for doc in &image.documents {
            referrers
                .entry((repo.clone(), doc.digest.clone()))
                .or_default();
        }
        for attachment in &image.attachments {
            plan_attachment(&mut objects, &prefix, attachment);
            match &attachment.tag {
                Some(tag) => {
                    add(
                        &mut objects,
                        document_object(
                            format!("{prefix}manifests/{tag}"),
                            &attachment.document,
                            Phase::Tags,
                            CACHE_SHORT,
                        ),
                    );
                    list.insert(tag.clone());
                }
                None => {
                    referrers
                        .entry((repo.clone(), attachment.subject.clone()))
                        .or_default()
                        .insert(
                            attachment.document.digest.clone(),
                            referrer_entry(attachment),
                        );
                }
            }
        }
        for tag in &image.tags {
            let key = format!("{prefix}manifests/{tag}");
            let owner = Owner {
                digest: image.root.digest.clone(),
                layout: image.layout.clone(),
            };
            if let Some(first) = tag_owner.get(&key)
                && objects
                    .get(&key)
                    .is_some_and(|o| o.sha256 != image.root.digest)
            {
                return Err(PlanError::TagClaimedTwice {
                    repository: repo.clone(),
                    tag: tag.clone(),
                    first: Box::new(first.clone()),
                    second: Box::new(owner),
                });
            }
            tag_owner.insert(key.clone(), owner);
            add(
                &mut objects,
                document_object(key, &image.root, Phase::Tags, CACHE_SHORT),
            );
            list.insert(tag.clone());
            add(&mut objects, tag_record_object(repo, tag));
            tags.push(PublishedTag {
                repository: repo.clone(),
                tag: tag.clone(),
                digest: image.root.digest.clone(),
                media_type: image.root.media_type.clone(),
            });
        }
    }

    for (subject, entries) in referrers.iter_mut() {
        for (digest, entry) in existing.referrers.get(subject).into_iter().flatten() {
            entries
                .entry(digest.clone())
                .or_insert_with(|| entry.clone());
        }
    }
    for ((repo, subject), entries) in &referrers {
        let prefix = repository_prefix(repo);
        let index = referrers_index(entries.values().collect());
        let mut object = json_object(
            format!("{prefix}referrers/{subject}"),
            &index,
            Phase::Referrers,
        );
        object.content_type = REFERRERS_CONTENT_TYPE.to_string();
        if !entries.is_empty() {
            // The OCI referrers tag schema, for clients that look for a tag first; like every
            // tag, its manifest is also there by digest.
            let tag = format!("sha256-{}", subject.hex());
            let mut fallback = object.clone();
            fallback.key = format!("{prefix}manifests/{tag}");
            fallback.phase = Phase::Tags;
            add(&mut objects, fallback);
            let mut by_digest = object.clone();
            by_digest.key = format!("{prefix}manifests/{}", object.sha256);
            by_digest.cache_control = CACHE_IMMUTABLE;
            add(&mut objects, by_digest);
            if let Some(list) = lists.get_mut(repo) {
                list.insert(tag);
            }
        }
        add(&mut objects, object);
    }

    // Every repository the target has tags for gets its list planned too: when a list
    // disagrees with the tags present (a race between two publishers), this run heals it.
    for (repo, tags) in &existing.tags {
        lists.entry(repo.clone()).or_insert_with(|| tags.clone());
    }
    let mut repositories = existing.repositories.clone();
    for (repo, list) in &lists {
        repositories.insert(repo.clone());
        add(&mut objects, tag_list_object(repo, list));
    }
    add(&mut objects, catalog_object(&repositories));
    for key in ROOT_KEYS {
        add(
            &mut objects,
            json_object(key.to_string(), &serde_json::json!({}), Phase::Root),
        );
    }

    let mut objects: Vec<SiteObject> = objects.into_values().collect();
    objects.sort_by(|a, b| (a.phase, &a.key).cmp(&(b.phase, &b.key)));
    tags.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    tags.dedup();
    Ok(Site { objects, tags })
}

/// An attachment's manifest and the small blobs generated for it (its files are among the
/// image's blobs).
fn plan_attachment(
    objects: &mut BTreeMap<String, SiteObject>,
    prefix: &str,
    attachment: &crate::verify::Attachment,
) {
    for (digest, bytes) in &attachment.inline_blobs {
        add(
            objects,
            SiteObject {
                key: format!("{prefix}blobs/{digest}"),
                body: Body::Bytes(bytes.clone()),
                size: bytes.len() as u64,
                sha256: digest.clone(),
                content_type: BLOB_CONTENT_TYPE.to_string(),
                cache_control: CACHE_IMMUTABLE,
                phase: Phase::Blobs,
            },
        );
    }
    let doc = &attachment.document;
    add(
        objects,
        document_object(
            format!("{prefix}manifests/{}", doc.digest),
            doc,
            Phase::Manifests(0),
            CACHE_IMMUTABLE,
        ),
    );
}

/// The descriptor of an attachment in its subject's referrers list.
fn referrer_entry(attachment: &crate::verify::Attachment) -> serde_json::Value {
    let doc = &attachment.document;
    let mut entry = serde_json::json!({
        "mediaType": doc.media_type,
        "digest": doc.digest.as_str(),
        "size": doc.bytes.len(),
    });
    if let Some(artifact_type) = &attachment.artifact_type {
        entry["artifactType"] = artifact_type.as_str().into();
    }
    if !attachment.annotations.is_empty() {
        entry["annotations"] = serde_json::json!(attachment.annotations);
    }
    entry
}

fn add(objects: &mut BTreeMap<String, SiteObject>, object: SiteObject) {
    objects.entry(object.key.clone()).or_insert(object);
}

fn document_object(
    key: String,
    doc: &crate::verify::Document,
    phase: Phase,
    cache_control: &'static str,
) -> SiteObject {
    SiteObject {
        key,
        body: Body::Bytes(doc.bytes.clone()),
        size: doc.bytes.len() as u64,
        sha256: doc.digest.clone(),
        content_type: doc.media_type.clone(),
        cache_control,
        phase,
    }
}

/// A small JSON document (compact, as `serde_json` writes it) served as `application/json`.
pub fn json_object(key: String, value: &serde_json::Value, phase: Phase) -> SiteObject {
    let bytes: Arc<[u8]> = Arc::from(value.to_string().into_bytes());
    SiteObject {
        key,
        size: bytes.len() as u64,
        sha256: Digest::of_bytes(&bytes),
        body: Body::Bytes(bytes),
        content_type: JSON_CONTENT_TYPE.to_string(),
        cache_control: CACHE_SHORT,
        phase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Blob, Document};
    use std::path::PathBuf;

    fn doc(json: &str, media_type: &str, level: u32) -> Document {
        Document {
            digest: Digest::of_bytes(json.as_bytes()),
            media_type: media_type.to_string(),
            bytes: Arc::from(json.as_bytes().to_vec()),
            level,
        }
    }

    fn image(repo: &str, tags: &[&str], root_json: &str) -> VerifiedImage {
        let child = doc(
            r#"{"schemaVersion":2}"#,
            "application/vnd.oci.image.manifest.v1+json",
            0,
        );
        let root = doc(root_json, "application/vnd.oci.image.index.v1+json", 1);
        VerifiedImage {
            layout: PathBuf::from("/l"),
            repository: repo.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            label: "index.json".to_string(),
            root: root.clone(),
            documents: vec![child, root],
            blobs: vec![Blob {
                digest: Digest::of_bytes(b"layer"),
                size: 5,
                path: PathBuf::from("/l/blobs/sha256/x"),
            }],
            attachments: Vec::new(),
            signers: Vec::new(),
            sboms: Vec::new(),
            provenance: Vec::new(),
        }
    }

    fn body(site: &Site, key: &str) -> String {
        let o = site.objects.iter().find(|o| o.key == key).expect(key);
        match &o.body {
            Body::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
            Body::File { path, .. } => path.display().to_string(),
        }
    }

    #[test]
    fn plans_every_key_in_publish_order() {
        let img = image(
            "apko/golden",
            &["latest", "1.0"],
            r#"{"schemaVersion":2,"x":1}"#,
        );
        let site = plan(std::slice::from_ref(&img), &Existing::default()).unwrap();
        let keys: Vec<(Phase, &str)> = site
            .objects
            .iter()
            .map(|o| (o.phase, o.key.as_str()))
            .collect();
        let d = |s: &str| Digest::of_bytes(s.as_bytes()).to_string();
        let layer = Digest::of_bytes(b"layer");
        assert_eq!(
            keys,
            vec![
                (
                    Phase::Blobs,
                    format!("v2/apko/golden/blobs/{layer}").as_str()
                ),
                (
                    Phase::Manifests(0),
                    format!("v2/apko/golden/manifests/{}", d(r#"{"schemaVersion":2}"#)).as_str()
                ),
                (
                    Phase::Manifests(1),
                    format!("v2/apko/golden/manifests/{}", img.root.digest).as_str()
                ),
                (
                    Phase::Referrers,
                    format!("v2/apko/golden/referrers/{}", d(r#"{"schemaVersion":2}"#)).as_str()
                ),
                (
                    Phase::Referrers,
                    format!("v2/apko/golden/referrers/{}", img.root.digest).as_str()
                ),
                (Phase::Tags, "v2/apko/golden/_tags/1.0"),
                (Phase::Tags, "v2/apko/golden/_tags/latest"),
                (Phase::Tags, "v2/apko/golden/manifests/1.0"),
                (Phase::Tags, "v2/apko/golden/manifests/latest"),
                (Phase::TagLists, "v2/apko/golden/tags/list"),
                (Phase::Catalog, "v2/_catalog"),
                (Phase::Root, "v2/"),
                (Phase::Root, "v2/index.html"),
            ]
        );
        let tag = site
            .objects
            .iter()
            .find(|o| o.key.ends_with("/manifests/latest"))
            .unwrap();
        assert_eq!(tag.content_type, "application/vnd.oci.image.index.v1+json");
        assert_eq!(tag.cache_control, CACHE_SHORT);
        assert_eq!(tag.sha256, img.root.digest);
        assert_eq!(
            body(&site, "v2/apko/golden/manifests/latest"),
            r#"{"schemaVersion":2,"x":1}"#
        );
        let by_digest = &site.objects[2];
        assert_eq!(by_digest.cache_control, CACHE_IMMUTABLE);
        assert_eq!(site.objects[0].content_type, BLOB_CONTENT_TYPE);
        assert_eq!(
            body(&site, "v2/apko/golden/tags/list"),
            r#"{"name":"apko/golden","tags":["1.0","latest"]}"#
        );
        assert_eq!(
            body(&site, "v2/_catalog"),
            r#"{"repositories":["apko/golden"]}"#
        );
        assert_eq!(body(&site, "v2/"), "{}");
        assert_eq!(site.tags.len(), 2);
    }

    #[test]
    fn attachments_publish_as_referrers_fallback_tags_and_sig_tags() {
        let mut img = image("a", &["t"], "{}");
        let subject = img.root.digest.clone();
        let sig = doc(
            r#"{"sig":1}"#,
            "application/vnd.oci.image.manifest.v1+json",
            0,
        );
        let legacy = doc(
            r#"{"legacy":1}"#,
            "application/vnd.oci.image.manifest.v1+json",
            0,
        );
        let empty = Digest::of_bytes(b"{}");
        img.attachments = vec![
            crate::verify::Attachment {
                subject: subject.clone(),
                document: sig.clone(),
                artifact_type: Some("application/vnd.dev.sigstore.bundle.v0.3+json".into()),
                annotations: [("k".to_string(), "v".to_string())].into(),
                tag: None,
                inline_blobs: vec![(empty.clone(), Arc::from(&b"{}"[..]))],
                kind: crate::verify::AttachmentKind::Signature,
                summary: String::new(),
            },
            crate::verify::Attachment {
                subject: subject.clone(),
                document: legacy.clone(),
                artifact_type: None,
                annotations: BTreeMap::new(),
                tag: Some(format!("sha256-{}.sig", subject.hex())),
                inline_blobs: Vec::new(),
                kind: crate::verify::AttachmentKind::Signature,
                summary: String::new(),
            },
        ];
        let site = plan(&[img], &Existing::default()).unwrap();
        let referrers = format!("v2/a/referrers/{subject}");
        let listed: serde_json::Value = serde_json::from_str(&body(&site, &referrers)).unwrap();
        assert_eq!(
            listed["manifests"],
            serde_json::json!([{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sig.digest.as_str(),
                "size": sig.bytes.len(),
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "annotations": {"k": "v"},
            }])
        );
        let object = site.objects.iter().find(|o| o.key == referrers).unwrap();
        assert_eq!(object.content_type, REFERRERS_CONTENT_TYPE);
        let fallback = format!("v2/a/manifests/sha256-{}", subject.hex());
        assert_eq!(body(&site, &fallback), body(&site, &referrers));
        let digest = Digest::of_bytes(body(&site, &referrers).as_bytes());
        assert_eq!(
            body(&site, &format!("v2/a/manifests/{digest}")),
            body(&site, &referrers)
        );
        assert_eq!(
            body(
                &site,
                &format!("v2/a/manifests/sha256-{}.sig", subject.hex())
            ),
            r#"{"legacy":1}"#
        );
        assert_eq!(body(&site, &format!("v2/a/blobs/{empty}")), "{}");
        assert!(body(&site, "v2/a/tags/list").contains(&format!("sha256-{}.sig", subject.hex())));
        // A manifest without referrers gets an empty list, and no fallback tag.
        let child = site
            .objects
            .iter()
            .find(|o| o.key.contains("/referrers/") && o.key != referrers)
            .unwrap();
        assert!(body(&site, &child.key).contains(r#""manifests":[]"#));
        let tags = body(&site, "v2/a/tags/list");
        assert_eq!(tags.matches("sha256-").count(), 2, "{tags}");
    }

    #[test]
    fn keeps_existing_tags_and_repositories() {
        let img = image("a", &["new"], "{}");
        let mut existing = Existing::default();
        existing.tags.insert("a".into(), ["old".to_string()].into());
        existing.tags.insert("b".into(), ["x".to_string()].into());
        existing.repositories.insert("c".into());
        let site = plan(&[img], &existing).unwrap();
        assert_eq!(
            body(&site, "v2/a/tags/list"),
            r#"{"name":"a","tags":["new","old"]}"#
        );
        assert_eq!(
            body(&site, "v2/_catalog"),
            r#"{"repositories":["a","b","c"]}"#
        );
        // Lists of repositories not published are planned from the tags present (and written
        // only when they disagree).
        assert_eq!(
            body(&site, "v2/b/tags/list"),
            r#"{"name":"b","tags":["x"]}"#
        );
        assert!(!site.objects.iter().any(|o| o.key == "v2/c/tags/list"));
    }

    #[test]
    fn refuses_one_tag_for_two_images() {
        let a = image("a", &["t"], r#"{"a":1}"#);
        let mut b = image("a", &["t"], r#"{"b":1}"#);
        b.layout = PathBuf::from("/m");
        let e = plan(&[a.clone(), b.clone()], &Existing::default()).unwrap_err();
        let owner = |i: &VerifiedImage| {
            Box::new(Owner {
                digest: i.root.digest.clone(),
                layout: i.layout.clone(),
            })
        };
        assert_eq!(
            e,
            PlanError::TagClaimedTwice {
                repository: "a".into(),
                tag: "t".into(),
                first: owner(&a),
                second: owner(&b),
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "tag a:t is claimed by two different images: {} (/l) and {} (/m)",
                a.root.digest, b.root.digest
            )
        );
        assert!(plan(&[a.clone(), a], &Existing::default()).is_ok());
    }

    #[test]
    fn prune_removes_unplanned_tags_and_lists_only() {
        let img = image("a", &["keep"], "{}");
        let site = plan(&[img], &Existing::default()).unwrap();
        let present = [
            "v2/a/manifests/keep",
            "v2/a/manifests/old",
            "v2/a/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "v2/a/tags/list",
            "v2/gone/manifests/x",
            "v2/gone/tags/list",
            "v2/gone/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "v2/_catalog",
            "v2/unknown",
        ];
        let removals = prune(&site, present);
        let got: Vec<(Phase, &str)> = removals.iter().map(|r| (r.phase, r.key.as_str())).collect();
        assert_eq!(
            got,
            [
                (Phase::RemoveTagLists, "v2/gone/tags/list"),
                (Phase::RemoveTags, "v2/a/manifests/old"),
                (Phase::RemoveTags, "v2/gone/manifests/x"),
            ]
        );
        assert!(Phase::Root < Phase::RemoveTagLists && Phase::RemoveTagLists < Phase::RemoveTags);
    }

    #[test]
    fn content_and_list_keys() {
        let hex = "a".repeat(64);
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        for (key, kind) in [
            (blob_key("x/y", &d), Content::Blob),
            (manifest_key("x/y", &d), Content::Manifest),
            (referrers_key("x/y", &d), Content::Referrers),
        ] {
            assert_eq!(parse_content_key(&key), Some(("x/y", kind, d.clone())));
        }
        for bad in [
            format!("v2/x/blobs/sha256:{}", "A".repeat(64)),
            "v2/x/blobs/sha256:abc".to_string(),
            format!("v2/X/blobs/sha256:{hex}"),
            format!("v2/x/tags/sha256:{hex}"),
            format!("v2/blobs/sha256:{hex}"),
            "v2/x/manifests/latest".to_string(),
        ] {
            assert_eq!(parse_content_key(&bad), None, "{bad}");
        }
        assert_eq!(parse_tag_list_key("v2/a/b/tags/list"), Some("a/b"));
        assert_eq!(parse_tag_list_key("v2/tags/list"), None);
        assert_eq!(parse_tag_list_key("v2/A/tags/list"), None);
        let tags = tags_in(["v2/a/manifests/t", "v2/a/manifests/u", "v2/b/tags/list"]);
        assert_eq!(tags.len(), 1);
        assert_eq!(tags["a"].len(), 2);
    }

    #[test]
    fn tag_keys() {
        assert_eq!(
            parse_tag_key("v2/a/b/manifests/latest"),
            Some(("a/b", "latest"))
        );
        assert_eq!(parse_tag_key("v2/a/b/manifests/sha256:abc"), None);
        assert_eq!(parse_tag_key("v2/a/blobs/sha256:abc"), None);
        assert_eq!(parse_tag_key("v2/a/b/tags/list"), None);
        assert_eq!(parse_tag_key("v2/manifests/x"), None);
        // A repository may itself contain a `manifests` component.
        assert_eq!(
            parse_tag_key("v2/x/manifests/y/manifests/t"),
            Some(("x/manifests/y", "t"))
        );
    }
}
