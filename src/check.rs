//! `regpress check`: crawl a served registry over HTTP the way clients do and verify it.
//!
//! After a publish, the question that matters is what a puller sees. This walks `/v2/`, the
//! catalog (or the repositories named), each tag list, every tag's manifest or index, every
//! child by digest, every manifest's OCI 1.1 referrers list and what it lists, and every blob,
//! and checks each digest, size and Content-Type against what the documents say. It reads the endpoint only: a bucket's website or custom domain, a CDN,
//! or `regpress serve`.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rayon::prelude::*;
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, hash_reader};
use crate::layout::{DocumentKind, MAX_DOCUMENT_SIZE};
use crate::site::REFERRERS_CONTENT_TYPE;

/// What was checked, and every problem found (`check --json`, `check --report`).
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// The registry crawled.
    pub url: String,
    /// Every tag resolved, with the digest it answered.
    pub checked: Vec<CheckedTag>,
    /// Repositories crawled.
    pub repositories: usize,
    /// Tags resolved.
    pub tags: usize,
    /// Manifests and indexes fetched by digest.
    pub manifests: usize,
    /// Blobs fetched and hashed.
    pub blobs: usize,
    /// Referrers lists fetched (`referrers/<digest>`).
    pub referrers: usize,
    /// Problems, each naming the URL and what is wrong.
    pub problems: Vec<String>,
}

/// One tag that answered.
#[derive(Debug, Serialize)]
pub struct CheckedTag {
    /// Its repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The digest of the document it answered.
    pub digest: Digest,
}

#[derive(Deserialize)]
struct Catalog {
    repositories: Vec<String>,
}

#[derive(Deserialize)]
struct TagList {
    name: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
}

#[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

/// Crawl the registry at `base` (e.g. `https://cr.example.com`); only `repositories` when given.
pub fn check(base: &str, repositories: &[String], jobs: usize) -> Result<Outcome, String> {
    let base = base.trim_end_matches('/');
    let http = Client::builder()
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let mut outcome = Outcome {
        url: base.to_string(),
        ..Outcome::default()
    };
    let root = format!("{base}/v2/");
    match http.get(&root).send() {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => outcome
            .problems
            .push(format!("{root}: HTTP {} (clients need 200)", r.status())),
        Err(e) => return Err(format!("{root}: {e}")),
    }
    let repositories = if repositories.is_empty() {
        let url = format!("{base}/v2/_catalog");
        match get_json::<Catalog>(&http, &url) {
            Ok(c) => c.repositories,
            Err(e) => return Err(e),
        }
    } else {
        repositories.to_vec()
    };
    let mut blobs: BTreeSet<(String, Descriptor)> = BTreeSet::new();
    for repo in &repositories {
        outcome.repositories += 1;
        let url = format!("{base}/v2/{repo}/tags/list");
        let list = match get_json::<TagList>(&http, &url) {
            Ok(l) => l,
            Err(e) => {
                outcome.problems.push(e);
                continue;
            }
        };
        if &list.name != repo {
            outcome
                .problems
                .push(format!("{url}: name is {:?}, not {repo:?}", list.name));
        }
        let mut seen = BTreeSet::new();
        for tag in &list.tags {
            outcome.tags += 1;
            let url = format!("{base}/v2/{repo}/manifests/{tag}");
            match fetch_document(&http, &url, None) {
                Ok((digest, media_type, _)) => {
                    outcome.checked.push(CheckedTag {
                        repository: repo.clone(),
                        tag: tag.clone(),
                        digest: digest.clone(),
                    });
                    // The same bytes must answer by digest.
                    let wanted = Descriptor {
                        media_type,
                        digest: digest.to_string(),
                        size: 0,
                    };
                    let mut crawl = Crawl {
                        http: &http,
                        base,
                        repo,
                        seen: &mut seen,
                        blobs: &mut blobs,
                        outcome: &mut outcome,
                    };
                    crawl.walk(&wanted, None);
                }
                Err(e) => outcome.problems.push(e),
            }
        }
    }
    let problems = Mutex::new(Vec::new());
    let pool = crate::sync::worker_pool(jobs).map_err(|e| e.to_string())?;
    pool.install(|| {
        blobs.par_iter().for_each(|(repo, desc)| {
            if let Err(e) = check_blob(&http, base, repo, desc)
                && let Ok(mut p) = problems.lock()
            {
                p.push(e);
            }
        })
    });
    outcome.blobs = blobs.len();
    outcome
        .problems
        .extend(problems.into_inner().unwrap_or_default());
    Ok(outcome)
}

/// The state of one repository's crawl.
struct Crawl<'a> {
    http: &'a Client,
    base: &'a str,
    repo: &'a str,
    seen: &'a mut BTreeSet<String>,
    blobs: &'a mut BTreeSet<(String, Descriptor)>,
    outcome: &'a mut Outcome,
}

impl Crawl<'_> {
    /// Fetch a manifest by digest, check it against `wanted` (and, for a referrer, that its
    /// `subject` is `subject`), then its children and referrers; collect blobs.
    fn walk(&mut self, wanted: &Descriptor, subject: Option<&str>) {
        if !self.seen.insert(wanted.digest.clone()) {
            return;
        }
        self.outcome.manifests += 1;
        let url = format!("{}/v2/{}/manifests/{}", self.base, self.repo, wanted.digest);
        let doc = match fetch_document(self.http, &url, Some(wanted)) {
            Ok((_, _, doc)) => doc,
            Err(e) => return self.outcome.problems.push(e),
        };
        if let Some(subject) = subject
            && doc.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject)
        {
            self.problem(format!(
                "{url}: listed as a referrer of {subject}, but its subject is not"
            ));
        }
        for child in &doc.manifests {
            self.walk(child, None);
        }
        for blob in doc.config.into_iter().chain(doc.layers) {
            self.blobs.insert((self.repo.to_string(), blob));
        }
        self.referrers(&wanted.digest);
    }

    /// The referrers list of `digest`, when the registry has one: an OCI index whose entries
    /// exist by digest and name `digest` as their subject. A 404 is no referrers.
    fn referrers(&mut self, digest: &str) {
        let url = format!("{}/v2/{}/referrers/{digest}", self.base, self.repo);
        let response = match self.http.get(&url).send() {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return,
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return self.problem(format!("{url}: HTTP {}", r.status())),
            Err(e) => return self.problem(format!("{url}: {e}")),
        };
        self.outcome.referrers += 1;
        let content_type = content_type(&response);
        if content_type != REFERRERS_CONTENT_TYPE {
            return self.problem(format!(
                "{url}: Content-Type {content_type:?}, not {REFERRERS_CONTENT_TYPE:?}"
            ));
        }
        let list: Document = match response
            .bytes()
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(list) => list,
            Err(e) => return self.problem(format!("{url}: not an image index: {e}")),
        };
        for entry in &list.manifests {
            self.walk(entry, Some(digest));
        }
    }

    fn problem(&mut self, problem: String) {
        self.outcome.problems.push(problem);
    }
}

/// GET a manifest or index: Content-Type must be its mediaType; with `wanted`, its digest and
/// size must match the descriptor.
fn fetch_document(
    http: &Client,
    url: &str,
    wanted: Option<&Descriptor>,
) -> Result<(Digest, String, Document), String> {
    let response = http.get(url).send().map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let content_type = content_type(&response);
    let bytes = response.bytes().map_err(|e| format!("{url}: {e}"))?;
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return Err(format!(
            "{url}: {} bytes, over the 4 MiB manifest limit",
            bytes.len()
        ));
    }
    let digest = Digest::of_bytes(&bytes);
    let doc: Document =
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))?;
    let media_type = doc
        .media_type
        .clone()
        .or_else(|| wanted.map(|w| w.media_type.clone()))
        .unwrap_or(content_type.clone());
    if content_type != media_type {
        return Err(format!(
            "{url}: Content-Type {content_type:?} but mediaType {media_type:?}"
        ));
    }
    if DocumentKind::of(&media_type).is_none() {
        return Err(format!(
            "{url}: {media_type:?} is not a manifest or index type"
        ));
    }
    if let Some(w) = wanted {
        if digest.as_str() != w.digest {
            return Err(format!(
                "{url}: content hashes to {digest}, not {}",
                w.digest
            ));
        }
        if w.size != 0 && bytes.len() as u64 != w.size {
            return Err(format!(
                "{url}: {} bytes, descriptor says {}",
                bytes.len(),
                w.size
            ));
        }
        if media_type != w.media_type {
            return Err(format!(
                "{url}: mediaType {media_type:?}, descriptor says {:?}",
                w.media_type
            ));
        }
    }
    Ok((digest, media_type, doc))
}

/// A response's Content-Type ("" when missing).
fn content_type(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// GET a blob and hash it as it streams.
fn check_blob(http: &Client, base: &str, repo: &str, desc: &Descriptor) -> Result<(), String> {
    let url = format!("{base}/v2/{repo}/blobs/{}", desc.digest);
    let response = http.get(&url).send().map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let (digest, size) = hash_reader(response, |_| {}).map_err(|e| format!("{url}: {e}"))?;
    if size != desc.size {
        return Err(format!(
            "{url}: {size} bytes, descriptor says {}",
            desc.size
        ));
    }
    if digest.as_str() != desc.digest {
        return Err(format!(
            "{url}: content hashes to {digest}, not {}",
            desc.digest
        ));
    }
    Ok(())
}

fn get_json<T: serde::de::DeserializeOwned>(http: &Client, url: &str) -> Result<T, String> {
    let response = http.get(url).send().map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let bytes = response.bytes().map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"))
}
