//! Sigstore's trusted root, kept current through TUF.
//!
//! Sigstore rotates keys and adds logs (Rekor v2 brought new ones), so a `trusted_root.json`
//! built into the binary goes stale and new signatures stop verifying. As cosign and
//! sigstore-python do, regpress fetches `trusted_root.json` from Sigstore's TUF repository
//! (the public-good one, or a mirror), verifying the metadata chain root → timestamp →
//! snapshot → targets from an initial `root.json`: Sigstore's own, as `sigstore-trust-root`
//! embeds it, or one given for a private repository. The TUF client is Sigstore's
//! `sigstore-tuf` (signatures, thresholds, expiry, rollback floors, lengths and hashes); this
//! module decides when the network is used and what happens when it cannot be:
//!
//! - the repository answers and its metadata verifies: that root is used, and what verified is
//!   cached (per repository, under [`CACHE_ENV`] or the XDG cache directory);
//! - it cannot be reached (DNS, connection, timeout, an HTTP error, an oversized answer): the
//!   cache is used, verified again from the initial root as of its last refresh, else the
//!   root built into regpress; a one-line note names the root used and its age;
//! - it answers with metadata that does not verify (a bad signature, an expired, rolled back
//!   or altered role): refused, as cosign refuses it; nothing of it is cached;
//! - `offline`: the network is never touched; the cache, else the built-in root.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use sigstore_trust_root::SigstoreInstance;
use sigstore_trust_root::tuf::TRUSTED_ROOT_TARGET;
use sigstore_tuf::{FileStore, HttpRepository, StoreRepository, Updater};
use sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT;

use crate::causes::chain;

/// The environment variable naming the directory TUF metadata is cached in (one directory
/// per repository below it), like cosign's `TUF_ROOT`.
pub const CACHE_ENV: &str = "REGPRESS_TUF_CACHE";

/// The file, in a repository's cache directory, recording when it last refreshed (RFC 3339).
const REFRESHED: &str = "regpress-refreshed";

/// How long to wait for a connection, and for one whole request, before taking the
/// repository as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the trusted root comes from: which TUF repository, which initial root, and whether
/// the network may be used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// The repository's URL [default: Sigstore's public-good repository].
    pub mirror: Option<String>,
    /// Its initial `root.json` [default: Sigstore's, built in; only for the public-good
    /// repository and its mirrors].
    pub root: Option<PathBuf>,
    /// Never touch the network.
    pub offline: bool,
}

impl Source {
    /// The repository's URL.
    pub fn mirror(&self) -> &str {
        self.mirror
            .as_deref()
            .unwrap_or(SigstoreInstance::PublicGood.tuf_url())
    }

    /// Whether the repository is the public-good one (or a mirror of it): its initial root
    /// is the built-in one, and so is its fallback.
    fn public_good(&self) -> bool {
        self.root.is_none()
    }
}

/// A trusted root, and where it came from.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The `trusted_root.json`.
    pub json: String,
    /// Where it came from (the note printed).
    pub origin: Origin,
}

/// Where a trusted root came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Fetched and verified now.
    Fresh {
        /// The repository.
        mirror: String,
        /// The version of its root metadata reached.
        root_version: u64,
    },
    /// The cache of a repository, verified again from its initial root.
    Cached {
        /// The repository.
        mirror: String,
        /// When it was last refreshed, if recorded.
        refreshed: Option<Timestamp>,
        /// Why the network was not used: `offline`, or why the repository was unreachable.
        why: String,
    },
    /// The root built into regpress.
    Embedded {
        /// The newest `validFor.start` in it: it is at least this recent.
        newest_key: Option<Timestamp>,
        /// Why neither the repository nor a cache was used.
        why: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Fresh {
                mirror,
                root_version,
            } => write!(
                f,
                "trusted root: fetched now through TUF from {mirror} (root v{root_version})"
            ),
            Origin::Cached {
                mirror,
                refreshed,
                why,
            } => {
                write!(f, "note: trusted root: the TUF cache of {mirror}, ")?;
                match refreshed {
                    Some(at) => write!(f, "refreshed {} ago ({at:.0})", age(*at))?,
                    None => f.write_str("of unknown age")?,
                }
                write!(f, "; {why}")
            }
            Origin::Embedded { newest_key, why } => {
                f.write_str("note: trusted root: the one built into regpress")?;
                if let Some(at) = newest_key {
                    write!(f, " (its newest key from {at:.0}, {} ago)", age(*at))?;
                }
                write!(f, "; {why}")
            }
        }
    }
}

/// Why no trusted root could be had through TUF.
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    /// The repository answered with metadata that does not verify.
    #[error(
        "TUF repository {mirror} refused: {reason}; nothing of it was trusted (the cache keeps \
         the last metadata that verified: --offline verifies with it)"
    )]
    Refused {
        /// The repository.
        mirror: String,
        /// The role and why (expired, rolled back, signature threshold, length or hash).
        reason: String,
    },
    /// The initial root given cannot be read.
    #[error("cannot read the TUF initial root {}: {reason}", path.display())]
    RootUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The initial root given is not a root that verifies.
    #[error("TUF initial root {}: {reason}", path.display())]
    BadRoot {
        /// The file.
        path: PathBuf,
        /// What `sigstore-tuf` said.
        reason: String,
    },
    /// A private repository (own initial root) could not be reached, nor its cache used: there
    /// is no built-in root to fall back to.
    #[error("no trusted root for TUF repository {mirror}: {network}; its cache: {cache}")]
    Unavailable {
        /// The repository.
        mirror: String,
        /// Why the network was not used.
        network: String,
        /// Why the cache could not be.
        cache: String,
    },
}

impl TufError {
    /// Whether it is the configuration's fault (an initial root that cannot be used), not the
    /// repository's.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            TufError::RootUnreadable { .. } | TufError::BadRoot { .. }
        )
    }
}

/// The current trusted root of `source`: fetched (unless offline), else cached, else built in
/// (public-good only); the note saying which is printed on stderr when it is not fresh.
pub fn resolve(source: &Source) -> Result<Fetched, TufError> {
    let initial = initial_root(source)?;
    let cache = cache_dir(source.mirror());
    let why = if source.offline {
        "offline".to_string()
    } else {
        match fetch(source.mirror(), &initial, cache.as_deref()) {
            Ok(fetched) => return Ok(fetched),
            Err(Failure::Refused(reason)) => {
                return Err(TufError::Refused {
                    mirror: source.mirror().to_string(),
                    reason,
                });
            }
            Err(Failure::Unreachable(reason)) => {
                format!("{} could not be reached: {reason}", source.mirror())
            }
        }
    };
    let fetched = match from_cache(source.mirror(), &initial, cache.as_deref(), &why) {
        Ok(fetched) => fetched,
        Err(unusable) if source.public_good() => Fetched {
            json: SIGSTORE_PRODUCTION_TRUSTED_ROOT.to_string(),
            origin: Origin::Embedded {
                newest_key: newest_key(SIGSTORE_PRODUCTION_TRUSTED_ROOT),
                why: format!("{why}; no usable cache ({unusable})"),
            },
        },
        Err(unusable) => {
            return Err(TufError::Unavailable {
                mirror: source.mirror().to_string(),
                network: why,
                cache: unusable,
            });
        }
    };
    eprintln!("{}", fetched.origin);
    Ok(fetched)
}

/// Refresh the cache of `source` from the network now (`regpress trust-root update`): any
/// failure, an unreachable repository included, is an error.
pub fn update(source: &Source) -> Result<Fetched, TufError> {
    let initial = initial_root(source)?;
    let mirror = source.mirror();
    fetch(mirror, &initial, cache_dir(mirror).as_deref()).map_err(|failure| match failure {
        Failure::Refused(reason) => TufError::Refused {
            mirror: mirror.to_string(),
            reason,
        },
        Failure::Unreachable(network) => TufError::Unavailable {
            mirror: mirror.to_string(),
            network: format!("unreachable: {network}"),
            cache: "not used (updating needs the network)".to_string(),
        },
    })
}

/// The cache directory of one repository: `$REGPRESS_TUF_CACHE/<mirror>`, else
/// `$XDG_CACHE_HOME/regpress/tuf/<mirror>`, else `~/.cache/regpress/tuf/<mirror>`; none
/// without a home (then nothing is cached).
pub fn cache_dir(mirror: &str) -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = var(CACHE_ENV).map(PathBuf::from).or_else(|| {
        var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|cache| cache.join("regpress").join("tuf"))
    })?;
    Some(base.join(dirname(mirror)))
}

/// A URL as one file name: unreserved characters kept, the rest percent-encoded (as
/// sigstore-python and sigstore-rust name their caches).
fn dirname(mirror: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    percent_encoding::utf8_percent_encode(mirror.trim_end_matches('/'), ESCAPED).to_string()
}

fn initial_root(source: &Source) -> Result<Vec<u8>, TufError> {
    let Some(path) = &source.root else {
        return Ok(SigstoreInstance::PublicGood.tuf_root().to_vec());
    };
    let bytes = std::fs::read(path).map_err(|reason| TufError::RootUnreadable {
        path: path.clone(),
        reason,
    })?;
    sigstore_tuf::TrustedMetadataSet::from_root(&bytes).map_err(|e| TufError::BadRoot {
        path: path.clone(),
        reason: chain(&e),
    })?;
    Ok(bytes)
}

/// Why a refresh failed: the repository could not be reached, or what it sent was refused.
enum Failure {
    Unreachable(String),
    Refused(String),
}

impl From<sigstore_tuf::Error> for Failure {
    fn from(e: sigstore_tuf::Error) -> Failure {
        match e {
            sigstore_tuf::Error::Transport { .. } => Failure::Unreachable(chain(&e)),
            e => Failure::Refused(chain(&e)),
        }
    }
}

/// Refresh from the network and fetch the trusted root; record the refresh in the cache.
fn fetch(mirror: &str, initial: &[u8], cache: Option<&Path>) -> Result<Fetched, Failure> {
    let client = sigstore_tuf::reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("regpress/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Unreachable(chain(&e)))?;
    let repo = HttpRepository::new(mirror)?.with_http_client(client);
    let mut updater = Updater::new(repo, initial)?;
    if let Some(dir) = cache {
        updater = updater.with_store(FileStore::new(dir));
    }
    let now = Timestamp::now();
    let json = run(async {
        updater.refresh(now).await?;
        updater.get_target(TRUSTED_ROOT_TARGET, now).await
    })?;
    let json = target_text(json).map_err(Failure::Refused)?;
    if let Some(dir) = cache {
        // Only the age printed later depends on it: a cache that cannot record it still works.
        let _ = std::fs::write(dir.join(REFRESHED), now.to_string());
    }
    Ok(Fetched {
        json,
        origin: Origin::Fresh {
            mirror: mirror.to_string(),
            root_version: updater.trusted().root().version,
        },
    })
}

/// The trusted root from the cache alone, every file verified again from the initial root;
/// expiry is judged as of the last refresh, when the network last vouched for it.
fn from_cache(
    mirror: &str,
    initial: &[u8],
    cache: Option<&Path>,
    why: &str,
) -> Result<Fetched, String> {
    let dir = cache.ok_or("no cache directory (set REGPRESS_TUF_CACHE or HOME)")?;
    if !dir.join("timestamp.json").is_file() {
        return Err(format!("{} holds no TUF metadata", dir.display()));
    }
    let refreshed = std::fs::read_to_string(dir.join(REFRESHED))
        .ok()
        .and_then(|at| at.trim().parse::<Timestamp>().ok());
    let at = refreshed.unwrap_or_else(Timestamp::now);
    let store = FileStore::new(dir);
    let mut updater = Updater::new(StoreRepository::new(store.clone()), initial)
        .map_err(|e| chain(&e))?
        .with_store(store);
    let json = run(async {
        updater.refresh(at).await?;
        updater.get_target(TRUSTED_ROOT_TARGET, at).await
    })
    .map_err(|e| format!("{}: {}", dir.display(), chain(&e)))?;
    Ok(Fetched {
        json: target_text(json)?,
        origin: Origin::Cached {
            mirror: mirror.to_string(),
            refreshed,
            why: why.to_string(),
        },
    })
}

/// Run a TUF refresh on a runtime of its own (the callers are synchronous).
fn run<T>(
    work: impl Future<Output = Result<T, sigstore_tuf::Error>>,
) -> Result<T, sigstore_tuf::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| sigstore_tuf::Error::io("starting the TUF client's runtime", e))?
        .block_on(work)
}

fn target_text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{TRUSTED_ROOT_TARGET} is not UTF-8"))
}

/// The newest `validFor.start` anywhere in a trusted root: the root is at least that recent.
fn newest_key(json: &str) -> Option<Timestamp> {
    fn walk(value: &serde_json::Value, newest: &mut Option<Timestamp>) {
        match value {
            serde_json::Value::Object(map) => {
                let start = map
                    .get("validFor")
                    .and_then(|v| v.get("start"))
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse::<Timestamp>().ok());
                if start > *newest {
                    *newest = start;
                }
                map.values().for_each(|v| walk(v, newest));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, newest)),
            _ => {}
        }
    }
    let value = serde_json::from_str(json).ok()?;
    let mut newest = None;
    walk(&value, &mut newest);
    newest
}

/// How long ago `at` was, roughly: `40 seconds`, `5 minutes`, `3 hours`, `12 days`.
fn age(at: Timestamp) -> String {
    let seconds = (Timestamp::now().as_second() - at.as_second()).max(0);
    let (n, unit) = match seconds {
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_root_is_sigstores_public_good_root() {
        // Sigstore's root-signing repository, metadata/root_history/16.root.json (as
        // sigstore-trust-root embeds it): five root keyholders, threshold 3.
        let root: serde_json::Value =
            serde_json::from_slice(SigstoreInstance::PublicGood.tuf_root()).unwrap();
        let signed = &root["signed"];
        assert_eq!(signed["_type"], "root");
        assert!(signed["version"].as_u64().unwrap() >= 16);
        assert_eq!(signed["roles"]["root"]["threshold"], 3);
        assert!(
            signed["roles"]["root"]["keyids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "e71a54d543835ba86adad9460379c7641fb8726d164ea766801a1c522aba7ea2")
        );
        sigstore_tuf::TrustedMetadataSet::from_root(SigstoreInstance::PublicGood.tuf_root())
            .expect("self-signed to threshold");
        assert_eq!(
            Source::default().mirror(),
            "https://tuf-repo-cdn.sigstore.dev"
        );
    }

    #[test]
    fn each_repository_has_its_own_cache_directory() {
        assert_eq!(
            dirname("https://tuf-repo-cdn.sigstore.dev/"),
            "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
        );
        assert_eq!(
            dirname("http://127.0.0.1:8080/a_b"),
            "http%3A%2F%2F127.0.0.1%3A8080%2Fa_b"
        );
        assert_ne!(dirname("http://a/x"), dirname("http://a/y"));
    }

    #[test]
    fn the_embedded_roots_age_is_its_newest_key() {
        let newest = newest_key(SIGSTORE_PRODUCTION_TRUSTED_ROOT).expect("dated keys");
        assert!(newest > "2024-01-01T00:00:00Z".parse().unwrap(), "{newest}");
        let json = r#"{"a":[{"validFor":{"start":"2020-01-01T00:00:00Z"}},
            {"b":{"validFor":{"start":"2021-06-01T00:00:00Z"}}}]}"#;
        assert_eq!(
            newest_key(json),
            Some("2021-06-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn ages_read_as_people_say_them() {
        let ago = |s: i64| age(Timestamp::from_second(Timestamp::now().as_second() - s).unwrap());
        assert_eq!(ago(5), "5 seconds");
        assert_eq!(ago(600), "10 minutes");
        assert_eq!(ago(3 * 3600), "3 hours");
        assert_eq!(ago(86400 * 9), "9 days");
        assert_eq!(ago(86400), "24 hours");
    }
}
