//! `regpress check`: crawl a served registry over HTTP the way clients do and verify it.
//!
//! After a publish, the question that matters is what a puller sees. This walks `/v2/`, the
//! catalog (or the repositories named), each tag list, every tag's manifest or index, every
//! child by digest, every manifest's OCI 1.1 referrers list and what it lists, and every blob,
//! and checks each digest, size and Content-Type against what the documents say. It reads the endpoint only: a bucket's website or custom domain, a CDN,
//! or `regpress serve`.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, hash_reader};
use crate::layout::{DocumentKind, MAX_DOCUMENT_SIZE};
use crate::site::REFERRERS_CONTENT_TYPE;

/// The most bytes of a catalog or tag list read: 100,000 repositories or tags of 300
/// characters each.
pub const MAX_LIST_SIZE: u64 = 32 * 1024 * 1024;

/// How deep indexes (and referrers of referrers) may nest below a tag.
pub const MAX_DEPTH: usize = 8;

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
    /// HTTP requests sent.
    pub requests: u64,
    /// The blobs among the problems that are missing or are not the bytes their digest names
    /// (what `check --repair` can write again from a layout).
    pub bad_blobs: Vec<BadBlob>,
}

/// A blob a crawl found missing, or not the bytes (or size) its descriptor names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadBlob {
    /// The repository it was fetched from.
    pub repository: String,
    /// Its digest, as the manifest names it.
    pub digest: String,
    /// Its size, as the manifest says.
    pub size: u64,
    /// The problem, as in [`Outcome::problems`].
    pub problem: String,
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

/// What is wrong at one URL of the registry: a problem of the [`Outcome`], or what stops the
/// crawl.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {kind}")]
struct Fault {
    url: String,
    kind: FaultKind,
}

#[derive(Debug, thiserror::Error)]
enum FaultKind {
    /// No response (connection, TLS, timeout), or the body broke off.
    #[error("{0}")]
    Request(reqwest::Error),
    /// A blob's body broke off while it was hashed.
    #[error("{0}")]
    Body(std::io::Error),
    /// A status other than success.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// `/v2/` answered, but not with 200.
    #[error("HTTP {0} (clients need 200)")]
    Root(reqwest::StatusCode),
    /// The body is not the JSON document expected there.
    #[error("{0}")]
    Json(serde_json::Error),
    /// A tag list naming another repository.
    #[error("name is {name:?}, not {repository:?}")]
    TagListName { name: String, repository: String },
    /// An answer longer than anything that may be served there: the crawl reads no further.
    #[error("more than {limit} bytes, over the limit for {what}")]
    TooLarge { limit: u64, what: &'static str },
    /// Indexes nested deeper than any image.
    #[error("indexes nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// A manifest that is not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// A manifest served with another Content-Type than its mediaType.
    #[error("Content-Type {content_type:?} but mediaType {media_type:?}")]
    ContentType {
        content_type: String,
        media_type: String,
    },
    /// A document that is not a manifest or index.
    #[error("{0:?} is not a manifest or index type")]
    NotAManifest(String),
    /// Bytes that do not hash to the digest they are served under.
    #[error("content hashes to {actual}, not {expected}")]
    Digest { actual: Digest, expected: String },
    /// Bytes of another size than their descriptor says.
    #[error("{size} bytes, descriptor says {expected}")]
    Size { size: u64, expected: u64 },
    /// A manifest of another mediaType than its descriptor says.
    #[error("mediaType {media_type:?}, descriptor says {expected:?}")]
    MediaType {
        media_type: String,
        expected: String,
    },
    /// Listed as a referrer of a manifest it does not name as its subject.
    #[error("listed as a referrer of {subject}, but its subject is not")]
    NotAReferrer { subject: String },
    /// A referrers list served as something else.
    #[error("Content-Type {0:?}, not {REFERRERS_CONTENT_TYPE:?}")]
    ReferrersType(String),
    /// A referrers list that is not an image index.
    #[error("not an image index: {0}")]
    NotAnIndex(String),
}

/// The crawl's HTTP client, counting the requests it sends.
struct Http {
    client: Client,
    sent: AtomicU64,
}

impl Http {
    fn new() -> Result<Http, String> {
        let client = Client::builder()
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Http {
            client,
            sent: AtomicU64::new(0),
        })
    }

    fn get(&self, url: &str) -> reqwest::blocking::RequestBuilder {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client.get(url)
    }
}

fn fault(url: &str, kind: FaultKind) -> Fault {
    Fault {
        url: url.to_string(),
        kind,
    }
}

/// Crawl the registry at `base` (e.g. `https://cr.example.com`); only `repositories` when given.
/// The error (the registry cannot be crawled at all) is the CLI's usage error message.
pub fn check(base: &str, repositories: &[String], jobs: usize) -> Result<Outcome, String> {
    let base = base.trim_end_matches('/');
    let http = Http::new()?;
    let mut outcome = Outcome {
        url: base.to_string(),
        ..Outcome::default()
    };
    let root = format!("{base}/v2/");
    match http.get(&root).send() {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => outcome
            .problems
            .push(fault(&root, FaultKind::Root(r.status())).to_string()),
        Err(e) => return Err(fault(&root, FaultKind::Request(e)).to_string()),
    }
    let repositories = if repositories.is_empty() {
        let url = format!("{base}/v2/_catalog");
        match get_json::<Catalog>(&http, &url) {
            Ok(c) => c.repositories,
            Err(e) => return Err(e.to_string()),
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
                outcome.problems.push(e.to_string());
                continue;
            }
        };
        if &list.name != repo {
            let kind = FaultKind::TagListName {
                name: list.name.clone(),
                repository: repo.clone(),
            };
            outcome.problems.push(fault(&url, kind).to_string());
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
                    crawl.walk(wanted);
                }
                Err(e) => outcome.problems.push(e.to_string()),
            }
        }
    }
    let wanted: Vec<(String, String, u64)> = blobs
        .into_iter()
        .map(|(repo, desc)| (repo, desc.digest, desc.size))
        .collect();
    outcome.blobs = wanted.len();
    let bad = check_blobs_with(&http, base, &wanted, jobs)?;
    outcome
        .problems
        .extend(bad.iter().map(|b| b.problem.clone()));
    outcome.bad_blobs = bad;
    outcome.requests = http.sent.load(Ordering::Relaxed);
    Ok(outcome)
}

/// Fetch and hash each of `blobs` (repository, digest, size) at `base`, `jobs` at a time; the
/// ones that are missing or wrong. For re-checking what `check --repair` wrote again.
pub fn check_blobs(
    base: &str,
    blobs: &[(String, String, u64)],
    jobs: usize,
) -> Result<Vec<BadBlob>, String> {
    let http = Http::new()?;
    check_blobs_with(&http, base.trim_end_matches('/'), blobs, jobs)
}

fn check_blobs_with(
    http: &Http,
    base: &str,
    blobs: &[(String, String, u64)],
    jobs: usize,
) -> Result<Vec<BadBlob>, String> {
    let bad = Mutex::new(Vec::new());
    let pool = crate::sync::worker_pool(jobs).map_err(|e| e.to_string())?;
    pool.install(|| {
        blobs.par_iter().for_each(|(repo, digest, size)| {
            let desc = Descriptor {
                media_type: String::new(),
                digest: digest.clone(),
                size: *size,
            };
            if let Err(e) = check_blob(http, base, repo, &desc)
                && let Ok(mut b) = bad.lock()
            {
                b.push(BadBlob {
                    repository: repo.clone(),
                    digest: digest.clone(),
                    size: *size,
                    problem: e.to_string(),
                });
            }
        })
    });
    let mut bad = bad.into_inner().unwrap_or_default();
    bad.sort_by(|a, b| (&a.repository, &a.digest).cmp(&(&b.repository, &b.digest)));
    Ok(bad)
}

/// A document the crawl has yet to fetch, with how deep below its tag it is.
enum Visit {
    /// A manifest or index by digest; a referrer names its subject.
    Manifest {
        wanted: Descriptor,
        subject: Option<String>,
        depth: usize,
    },
    /// The referrers list of a manifest.
    Referrers { digest: String, depth: usize },
}

/// The state of one repository's crawl.
struct Crawl<'a> {
    http: &'a Http,
    base: &'a str,
    repo: &'a str,
    seen: &'a mut BTreeSet<String>,
    blobs: &'a mut BTreeSet<(String, Descriptor)>,
    outcome: &'a mut Outcome,
}

impl Crawl<'_> {
    /// Fetch a manifest by digest, check it against `wanted`, then its children and
    /// referrers (a referrer must name its subject as `subject`); collect blobs. Iterative,
    /// depth first, at most [`MAX_DEPTH`] levels below `wanted`.
    fn walk(&mut self, wanted: Descriptor) {
        let mut next = vec![Visit::Manifest {
            wanted,
            subject: None,
            depth: 0,
        }];
        while let Some(visit) = next.pop() {
            match visit {
                Visit::Manifest {
                    wanted,
                    subject,
                    depth,
                } => self.manifest(wanted, subject, depth, &mut next),
                Visit::Referrers { digest, depth } => self.referrers(digest, depth, &mut next),
            }
        }
    }

    fn manifest(
        &mut self,
        wanted: Descriptor,
        subject: Option<String>,
        depth: usize,
        next: &mut Vec<Visit>,
    ) {
        if !self.seen.insert(wanted.digest.clone()) {
            return;
        }
        self.outcome.manifests += 1;
        let url = format!("{}/v2/{}/manifests/{}", self.base, self.repo, wanted.digest);
        if depth > MAX_DEPTH {
            return self.problem(fault(&url, FaultKind::TooDeep));
        }
        let doc = match fetch_document(self.http, &url, Some(&wanted)) {
            Ok((_, _, doc)) => doc,
            Err(e) => return self.problem(e),
        };
        if let Some(subject) = subject
            && doc.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject.as_str())
        {
            self.problem(fault(&url, FaultKind::NotAReferrer { subject }));
        }
        next.push(Visit::Referrers {
            digest: wanted.digest,
            depth,
        });
        next.extend(
            doc.manifests
                .into_iter()
                .rev()
                .map(|child| Visit::Manifest {
                    wanted: child,
                    subject: None,
                    depth: depth + 1,
                }),
        );
        for blob in doc.config.into_iter().chain(doc.layers) {
            self.blobs.insert((self.repo.to_string(), blob));
        }
    }

    /// The referrers list of `digest`, when the registry has one: an OCI index whose entries
    /// exist by digest and name `digest` as their subject. A 404 is no referrers.
    fn referrers(&mut self, digest: String, depth: usize, next: &mut Vec<Visit>) {
        let url = format!("{}/v2/{}/referrers/{digest}", self.base, self.repo);
        let response = match self.http.get(&url).send() {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return,
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return self.problem(fault(&url, FaultKind::Status(r.status()))),
            Err(e) => return self.problem(fault(&url, FaultKind::Request(e))),
        };
        self.outcome.referrers += 1;
        let content_type = content_type(&response);
        if content_type != REFERRERS_CONTENT_TYPE {
            return self.problem(fault(&url, FaultKind::ReferrersType(content_type)));
        }
        let bytes = match read_capped(response, MAX_DOCUMENT_SIZE, "a referrers index") {
            Ok(bytes) => bytes,
            Err(kind) => return self.problem(fault(&url, kind)),
        };
        let list: Document = match serde_json::from_slice(&bytes) {
            Ok(list) => list,
            Err(e) => return self.problem(fault(&url, FaultKind::NotAnIndex(e.to_string()))),
        };
        next.extend(
            list.manifests
                .into_iter()
                .rev()
                .map(|entry| Visit::Manifest {
                    wanted: entry,
                    subject: Some(digest.clone()),
                    depth: depth + 1,
                }),
        );
    }

    fn problem(&mut self, problem: Fault) {
        self.outcome.problems.push(problem.to_string());
    }
}

/// GET a manifest or index: Content-Type must be its mediaType; with `wanted`, its digest and
/// size must match the descriptor.
fn fetch_document(
    http: &Http,
    url: &str,
    wanted: Option<&Descriptor>,
) -> Result<(Digest, String, Document), Fault> {
    let at = |kind| fault(url, kind);
    let response = http
        .get(url)
        .send()
        .map_err(|e| at(FaultKind::Request(e)))?;
    if !response.status().is_success() {
        return Err(at(FaultKind::Status(response.status())));
    }
    let content_type = content_type(&response);
    let bytes = read_capped(response, MAX_DOCUMENT_SIZE, "a manifest").map_err(at)?;
    let digest = Digest::of_bytes(&bytes);
    let doc: Document = serde_json::from_slice(&bytes).map_err(|e| at(FaultKind::NotJson(e)))?;
    let media_type = doc
        .media_type
        .clone()
        .or_else(|| wanted.map(|w| w.media_type.clone()))
        .unwrap_or(content_type.clone());
    if content_type != media_type {
        return Err(at(FaultKind::ContentType {
            content_type,
            media_type,
        }));
    }
    if DocumentKind::of(&media_type).is_none() {
        return Err(at(FaultKind::NotAManifest(media_type)));
    }
    if let Some(w) = wanted {
        if digest.as_str() != w.digest {
            return Err(at(FaultKind::Digest {
                actual: digest,
                expected: w.digest.clone(),
            }));
        }
        if w.size != 0 && bytes.len() as u64 != w.size {
            return Err(at(FaultKind::Size {
                size: bytes.len() as u64,
                expected: w.size,
            }));
        }
        if media_type != w.media_type {
            return Err(at(FaultKind::MediaType {
                media_type,
                expected: w.media_type.clone(),
            }));
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
fn check_blob(http: &Http, base: &str, repo: &str, desc: &Descriptor) -> Result<(), Fault> {
    let url = format!("{base}/v2/{repo}/blobs/{}", desc.digest);
    let at = |kind| fault(&url, kind);
    let response = http
        .get(&url)
        .send()
        .map_err(|e| at(FaultKind::Request(e)))?;
    if !response.status().is_success() {
        return Err(at(FaultKind::Status(response.status())));
    }
    // One byte more than the descriptor says is enough to know the size is wrong.
    let (digest, size) =
        hash_reader(response.take(desc.size + 1), |_| {}).map_err(|e| at(FaultKind::Body(e)))?;
    if size > desc.size {
        return Err(at(FaultKind::TooLarge {
            limit: desc.size,
            what: "the blob its descriptor describes",
        }));
    }
    if size != desc.size {
        return Err(at(FaultKind::Size {
            size,
            expected: desc.size,
        }));
    }
    if digest.as_str() != desc.digest {
        return Err(at(FaultKind::Digest {
            actual: digest,
            expected: desc.digest.clone(),
        }));
    }
    Ok(())
}

fn get_json<T: serde::de::DeserializeOwned>(http: &Http, url: &str) -> Result<T, Fault> {
    let at = |kind| fault(url, kind);
    let response = http
        .get(url)
        .send()
        .map_err(|e| at(FaultKind::Request(e)))?;
    if !response.status().is_success() {
        return Err(at(FaultKind::Status(response.status())));
    }
    let bytes = read_capped(response, MAX_LIST_SIZE, "a catalog or tag list").map_err(at)?;
    serde_json::from_slice(&bytes).map_err(|e| at(FaultKind::Json(e)))
}

/// The body of `response`, refused past `limit` bytes (`what` names the document): a server
/// cannot make the crawl hold more than that.
fn read_capped(
    response: reqwest::blocking::Response,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, FaultKind> {
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(FaultKind::Body)?;
    if bytes.len() as u64 > limit {
        return Err(FaultKind::TooLarge { limit, what });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_name_the_url_then_what_is_wrong() {
        let url = "https://cr.example.com/v2/a/referrers/x";
        assert_eq!(
            fault(url, FaultKind::ReferrersType("text/plain".into())).to_string(),
            format!("{url}: Content-Type \"text/plain\", not \"{REFERRERS_CONTENT_TYPE}\"")
        );
        assert_eq!(
            fault(url, FaultKind::Root(reqwest::StatusCode::FORBIDDEN)).to_string(),
            format!("{url}: HTTP 403 Forbidden (clients need 200)")
        );
        let kind = FaultKind::Size {
            size: 3,
            expected: 4,
        };
        assert_eq!(
            fault(url, kind).to_string(),
            format!("{url}: 3 bytes, descriptor says 4")
        );
    }
}
