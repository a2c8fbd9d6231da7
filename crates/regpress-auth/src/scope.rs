//! What a client asks for: `scope` strings at `/token`, and original request paths at `/check`.
//!
//! Both name a repository and actions, and both are attacker-controlled, so both are parsed
//! strictly against the distribution grammar. A path that a proxy or bucket could read as a
//! different repository than the one checked here (`..`, percent-encoding, `//`, `;`, `\`, a
//! `#` fragment, bytes outside visible ASCII) is refused rather than normalised or cut short:
//! no registry client sends such paths.

use regpress_oci::digest::Digest;
use regpress_oci::names::{check_repository, check_tag};

/// The pull action.
pub const PULL: &str = "pull";
/// The push action.
pub const PUSH: &str = "push";

/// A repository scope: `repository:<name>:<action>[,<action>…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The repository name.
    pub repository: String,
    /// The actions asked for, in the order asked, each once.
    pub actions: Vec<String>,
}

impl Scope {
    /// Parse one scope. `None` for other resource types (`registry:catalog:*`), unknown
    /// actions only, or a name outside the grammar: those are granted nothing, not refused.
    pub fn parse(scope: &str) -> Option<Scope> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind != "repository" || check_repository(name).is_err() {
            return None;
        }
        let mut asked: Vec<String> = Vec::new();
        for action in actions.split(',') {
            if (action == PULL || action == PUSH) && !asked.iter().any(|a| a == action) {
                asked.push(action.to_string());
            }
        }
        (!asked.is_empty()).then(|| Scope {
            repository: name.to_string(),
            actions: asked,
        })
    }

    /// The scope as a string, for challenges and logs.
    pub fn render(&self) -> String {
        format!("repository:{}:{}", self.repository, self.actions.join(","))
    }
}

/// What an original request (as seen by the proxy) reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/v2/`: the API version check every client starts with.
    Base,
    /// Something under a repository, needing `action` on it.
    Repository {
        /// The repository name.
        name: String,
        /// `pull` for reads, `push` for writes.
        action: &'static str,
    },
}

/// Parse the original method and URI into what it reaches. Errors say why it is refused.
///
/// The URI must be visible ASCII without a fragment (no client sends `#` to a server; nginx's
/// `$request_uri` keeps whatever follows it). Its path, up to `?`, may only hold the characters
/// of repository names, tags and digests (`a-z A-Z 0-9 . _ - : + = /`): no percent-encoding at
/// all, no `;` path parameters, no backslashes. The query is not read.
pub fn parse_request(method: &str, uri: &str) -> Result<Target, String> {
    if let Some(b) = uri.bytes().find(|b| !b.is_ascii_graphic()) {
        return Err(format!("byte 0x{b:02x} outside visible ASCII in the URI"));
    }
    if uri.contains('#') {
        return Err("fragment (#) in the URI".to_string());
    }
    let path = uri.split('?').next().unwrap_or_default();
    if path.contains('%') {
        return Err("percent-encoding in a registry path".to_string());
    }
    if let Some(c) = path.chars().find(|c| !is_path_char(*c)) {
        return Err(format!("character {c:?} is in no registry path"));
    }
    if path.contains("//") {
        return Err("empty path segment".to_string());
    }
    let action = match method {
        "GET" | "HEAD" => PULL,
        "PUT" | "POST" | "PATCH" | "DELETE" => PUSH,
        other => return Err(format!("method {other} is not a registry method")),
    };
    let Some(rest) = path.strip_prefix("/v2") else {
        return Err("not under /v2/".to_string());
    };
    if rest.is_empty() || rest == "/" {
        return Ok(Target::Base);
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err("not under /v2/".to_string());
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err("dot segment in path".to_string());
    }
    let n = segments.len();
    let (name_end, ok) = match segments.as_slice() {
        // /v2/<name>/blobs/uploads/ and /v2/<name>/blobs/uploads/<id>: pushes.
        [.., "blobs", "uploads", _] if n >= 4 => (n - 3, action == PUSH),
        [.., "manifests", reference] if n >= 3 => {
            (n - 2, check_tag(reference).is_ok() || is_digest(reference))
        }
        [.., "blobs" | "referrers", digest] if n >= 3 => (n - 2, is_digest(digest)),
        [.., "tags", "list"] if n >= 3 => (n - 2, action == PULL),
        _ => return Err("not a repository endpoint".to_string()),
    };
    if !ok {
        return Err("bad reference or method for this endpoint".to_string());
    }
    let name = segments[..name_end].join("/");
    check_repository(&name)?;
    Ok(Target::Repository { name, action })
}

/// What a repository request's URI (one [`parse_request`] accepted) reaches, for the audit:
/// `manifest`, `blob`, `referrers`, `tags` or `upload`, and the reference (tag, digest,
/// `list`, upload id).
pub fn endpoint(uri: &str) -> (&'static str, &str) {
    let path = uri.split('?').next().unwrap_or_default();
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let last = segments.next().unwrap_or_default();
    let kind = match segments.next() {
        Some("manifests") => "manifest",
        Some("blobs") => "blob",
        Some("referrers") => "referrers",
        Some("tags") => "tags",
        _ => "upload",
    };
    (kind, last)
}

/// Characters of repository names, tags, digests and the `/` between them.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '+' | '=' | '/')
}

fn is_digest(s: &str) -> bool {
    Digest::parse(s).is_ok_and(|d| d.as_str() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, action: &'static str) -> Result<Target, String> {
        Ok(Target::Repository {
            name: name.to_string(),
            action,
        })
    }

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn scopes_parse_and_drop_what_is_not_a_repository_action() {
        let s = Scope::parse("repository:acme/app:pull,push,pull,delete").unwrap();
        assert_eq!(s.repository, "acme/app");
        assert_eq!(s.actions, vec!["pull", "push"]);
        assert_eq!(s.render(), "repository:acme/app:pull,push");
        for ignored in [
            "registry:catalog:*",
            "repository:acme/app:delete",
            "repository:Acme:pull",
            "repository:a/../b:pull",
            "repository:acme/app",
            "",
        ] {
            assert_eq!(Scope::parse(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn registry_paths_name_the_repository_and_action() {
        assert_eq!(parse_request("GET", "/v2/"), Ok(Target::Base));
        assert_eq!(parse_request("GET", "/v2"), Ok(Target::Base));
        assert_eq!(
            parse_request("GET", "/v2/acme/app/manifests/latest"),
            repo("acme/app", PULL)
        );
        assert_eq!(
            parse_request("HEAD", &format!("/v2/a/b/c/manifests/{DIGEST}")),
            repo("a/b/c", PULL)
        );
        assert_eq!(
            parse_request("GET", &format!("/v2/acme/app/blobs/{DIGEST}")),
            repo("acme/app", PULL)
        );
        assert_eq!(
            parse_request(
                "GET",
                &format!("/v2/acme/app/referrers/{DIGEST}?artifactType=x")
            ),
            repo("acme/app", PULL)
        );
        assert_eq!(
            parse_request("GET", "/v2/acme/app/tags/list?n=10&last=a%2Fb"),
            repo("acme/app", PULL)
        );
        assert_eq!(
            parse_request("PUT", "/v2/acme/app/manifests/latest"),
            repo("acme/app", PUSH)
        );
        assert_eq!(
            parse_request("POST", "/v2/acme/app/blobs/uploads/"),
            repo("acme/app", PUSH)
        );
        // A repository may be called `manifests`; the endpoint is the last two segments.
        assert_eq!(
            parse_request("GET", "/v2/x/manifests/manifests/latest"),
            repo("x/manifests", PULL)
        );
    }

    #[test]
    fn path_tricks_are_refused() {
        for bad in [
            "/v2/public/../private/app/manifests/latest",
            "/v2/public/%2e%2e/private/app/manifests/latest",
            "/v2/private%2Fapp/manifests/latest",
            "/v2/priv%61te/app/manifests/latest",
            "/v2//private/app/manifests/latest",
            "/v2/private//app/manifests/latest",
            "/v2/./private/app/manifests/latest",
            "/v2/private/app/manifests/../../other/manifests/latest",
            "/v2/private\\app/manifests/latest",
            "/v2/_catalog",
            "/v2/_regpress/packages/shards/ab.json",
            "/v2/_regpress/packages/tags/acme/manifests/latest.json",
            "/v2/acme/app/blobs/latest",
            "/v2/acme/app/manifests/sha256:ABC",
            "/v2/acme/app/tags/other",
            "/v2/Acme/manifests/latest",
            "/other/acme/app/manifests/latest",
            "/v2/acme/app/manifests/",
        ] {
            assert!(parse_request("GET", bad).is_err(), "{bad}");
        }
        assert!(parse_request("OPTIONS", "/v2/acme/app/manifests/latest").is_err());
        assert!(parse_request("", "/v2/acme/app/manifests/latest").is_err());
        assert!(parse_request("GET", "/v2/acme/app/blobs/uploads/x").is_err());
    }

    #[test]
    fn encodings_separators_and_fragments_are_refused_not_cut_short() {
        for (bad, why) in [
            (
                "/v2/public/base%252f..%252facme/app/manifests/latest",
                "percent",
            ),
            ("/v2/acme%5Capp/manifests/latest", "percent"),
            ("/v2/public/%2E%2E/acme/app/manifests/latest", "percent"),
            ("/v2/acme%2Fapp/manifests/latest", "percent"),
            ("/v2/acme/app;x/manifests/latest", "';'"),
            ("/v2/acme/app/manifests/latest;a=b", "';'"),
            ("/v2/public/base;/../../acme/app/manifests/latest", "';'"),
            ("/v2/acme\\app/manifests/latest", "'\\\\'"),
            ("/v2/acme/app@x/manifests/latest", "'@'"),
            // Everything after `#` used to be dropped: the check saw public/base, while nginx
            // passes the whole URI on to a bucket that may resolve the `..`.
            (
                "/v2/public/base/manifests/latest#/../../../../acme/app/manifests/latest",
                "fragment",
            ),
            ("/v2/acme/app/manifests/latest?x=#", "fragment"),
            (
                "/v2/acme/app/manifests/latest?q=\u{e9}",
                "outside visible ASCII",
            ),
            (
                "/v2/acme/app/manifests/latest?q=a b",
                "outside visible ASCII",
            ),
            ("/v2/acme/app/manifests/lat\test", "outside visible ASCII"),
            ("/v2acme/app/manifests/latest", "not under /v2/"),
        ] {
            let err = parse_request("GET", bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {why:?} not in {err:?}");
        }
        // The query is not the path: percent-encoding there is fine.
        assert_eq!(
            parse_request("GET", "/v2/acme/app/tags/list?last=a%2Fb%5C"),
            repo("acme/app", PULL)
        );
    }
}
