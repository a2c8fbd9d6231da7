//! `docker-credential-regpress`: a Docker credential helper that answers every `get` with a
//! fresh OIDC ID token for the registry's audience, so that docker, podman and anything built
//! on containers/image pull private regpress images with nothing but `credHelpers` configured.
//!
//! The token comes from, in order: GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_URL` and
//! `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, asked with `&audience=`), a token file
//! (`REGPRESS_ID_TOKEN_FILE`, e.g. a Kubernetes projected service-account token, read on every
//! call), or `REGPRESS_ID_TOKEN`. The audience is the `service` of the registry's `/v2/` Bearer
//! challenge, unless the helper's config file names one for the host. Nothing secret is ever
//! written: `store` is refused, `erase` and `list` have nothing to act on, and `install` only
//! writes `credHelpers` entries.
//!
//! The protocol is docker-credential-helpers': `get` reads the server URL on stdin and prints
//! `{"ServerURL", "Username", "Secret"}`; a failure is a message on stdout and exit 1.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// The helper's name in `credHelpers` (docker runs `docker-credential-<name>`).
pub const HELPER: &str = "regpress";
/// GitHub Actions' ID token request URL.
pub const ACTIONS_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions' bearer token for that URL.
pub const ACTIONS_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// A file holding an ID token (re-read on every `get`).
pub const TOKEN_FILE: &str = "REGPRESS_ID_TOKEN_FILE";
/// An ID token itself.
pub const TOKEN: &str = "REGPRESS_ID_TOKEN";
/// The helper's config file, overriding the default location.
pub const CONFIG: &str = "REGPRESS_CREDENTIAL_HELPER_CONFIG";
/// The username returned with an ID token (the handler reads only the password).
pub const USERNAME: &str = "oidc";
/// Timeout of each request the helper makes.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The helper's config file: per-host overrides.
///
/// ```toml
/// [host."cr.example.com"]
/// audience = "cr.example.com"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperConfig {
    /// Settings by registry host (`host` or `host:port`).
    #[serde(default)]
    pub host: BTreeMap<String, HostConfig>,
}

/// One host's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The ID token audience to ask for, instead of the `/v2/` challenge's `service`.
    pub audience: Option<String>,
}

/// Where the config file is: `$REGPRESS_CREDENTIAL_HELPER_CONFIG`, else
/// `$XDG_CONFIG_HOME/regpress/credential-helper.toml`, else `~/.config/regpress/…`.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(path) = env(CONFIG).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("regpress").join("credential-helper.toml"))
}

impl HelperConfig {
    /// Read the config at `path`; a missing file is an empty config, a bad one an error.
    pub fn load(path: Option<&Path>) -> Result<HelperConfig, String> {
        let Some(path) = path else {
            return Ok(HelperConfig::default());
        };
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HelperConfig::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The registry host of a server URL as docker passes it (`cr.example.com`,
/// `https://cr.example.com/v1/`, `127.0.0.1:5000`).
pub fn host_of(server_url: &str) -> Result<String, String> {
    let trimmed = server_url.trim();
    let rest = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err(format!("{server_url:?} is not a registry host"));
    }
    Ok(host.to_ascii_lowercase())
}

/// Is `host` (maybe with a port) loopback? The `/v2/` challenge is then asked over plain HTTP,
/// as docker and podman talk to loopback registries.
fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The value of `param` in a `WWW-Authenticate: Bearer k="v",…` challenge.
pub fn challenge_param(challenge: &str, param: &str) -> Option<String> {
    let (scheme, rest) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if key.eq_ignore_ascii_case(param) {
            return Some(value.to_string());
        }
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    None
}

fn client(redirects: bool) -> Result<reqwest::blocking::Client, String> {
    let policy = if redirects {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .redirect(policy)
        .user_agent(concat!(
            "docker-credential-regpress/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// The audience for `host`: the config's, else the `service` of its `/v2/` challenge.
pub fn audience(host: &str, config: &HelperConfig) -> Result<String, String> {
    if let Some(aud) = config.host.get(host).and_then(|h| h.audience.clone()) {
        return Ok(aud);
    }
    let scheme = if is_loopback(host) { "http" } else { "https" };
    let url = format!("{scheme}://{host}/v2/");
    let response = client(false)?
        .get(&url)
        .send()
        .map_err(|e| format!("cannot ask {url} for its audience: {e}"))?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    challenge_param(&challenge, "service").ok_or_else(|| {
        format!(
            "{url} answered {status} without a Bearer challenge naming a service, so the \
             audience is unknown: set [host.\"{host}\"] audience in the helper's config"
        )
    })
}

/// Where an ID token came from, for the message saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// GitHub Actions' token service.
    Actions,
    /// `REGPRESS_ID_TOKEN_FILE`.
    File,
    /// `REGPRESS_ID_TOKEN`.
    Variable,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Actions => "GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL)",
            Source::File => "the file in REGPRESS_ID_TOKEN_FILE",
            Source::Variable => "REGPRESS_ID_TOKEN",
        })
    }
}

/// A fresh ID token for `audience` from the first source the environment offers.
pub fn id_token(
    audience: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Source), String> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    match (set(ACTIONS_URL), set(ACTIONS_TOKEN)) {
        (Some(url), Some(bearer)) => return actions_token(&url, &bearer, audience),
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "only one of {ACTIONS_URL} and {ACTIONS_TOKEN} is set: a GitHub Actions job \
                 gets both with `permissions: id-token: write`"
            ));
        }
        (None, None) => {}
    }
    if let Some(path) = set(TOKEN_FILE) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{TOKEN_FILE}: cannot read {path}: {e}"))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{TOKEN_FILE}: {path} is empty"));
        }
        return Ok((token.to_string(), Source::File));
    }
    if let Some(token) = set(TOKEN) {
        return Ok((token.trim().to_string(), Source::Variable));
    }
    Err(format!(
        "no OIDC ID token for {audience}: {ACTIONS_URL} and {ACTIONS_TOKEN} are not set (not a \
         GitHub Actions job with `permissions: id-token: write`), {TOKEN_FILE} is not set (no \
         token file, e.g. a Kubernetes projected service-account token), and {TOKEN} is not set"
    ))
}

/// Ask GitHub Actions' token service for an ID token with `audience`.
fn actions_token(url: &str, bearer: &str, audience: &str) -> Result<(String, Source), String> {
    let mut full =
        reqwest::Url::parse(url).map_err(|e| format!("{ACTIONS_URL} is not a URL: {e}"))?;
    full.query_pairs_mut().append_pair("audience", audience);
    // Never print the URL's query: it may carry more than the audience.
    let shown = format!("{}{}", full.origin().ascii_serialization(), full.path());
    let response = client(true)?
        .get(full)
        .header(reqwest::header::AUTHORIZATION, format!("bearer {bearer}"))
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .map_err(|e| format!("GitHub Actions' token service at {shown}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "GitHub Actions' token service at {shown} answered {status} (does the job have \
             `permissions: id-token: write`?)"
        ));
    }
    let body: Value = response
        .text()
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| format!("GitHub Actions' token service at {shown}: not JSON: {e}"))?;
    match body.get("value").and_then(Value::as_str) {
        Some(token) if !token.is_empty() => Ok((token.to_string(), Source::Actions)),
        _ => Err(format!(
            "GitHub Actions' token service at {shown} sent no `value`"
        )),
    }
}

/// `get`: the credentials for `server_url`, as the JSON the protocol prints.
pub fn get(server_url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    let host = host_of(server_url)?;
    let config = HelperConfig::load(config_path(env).as_deref())?;
    let audience = audience(&host, &config)?;
    let (token, source) = id_token(&audience, env)?;
    eprintln!("docker-credential-regpress: an ID token for {audience} from {source}");
    Ok(json!({"ServerURL": server_url.trim(), "Username": USERNAME, "Secret": token}))
}

/// Why `store` is refused: this helper keeps no secrets.
pub const STORE_REFUSED: &str = "docker-credential-regpress stores no credentials: it hands out \
fresh OIDC ID tokens. For a pull token, remove this host from credHelpers and log in with \
docker login, or set REGPRESS_ID_TOKEN";

/// `install`: add `"<host>": "regpress"` to `credHelpers` in the JSON file at `path`, keeping
/// everything else in it; the file is replaced atomically and created (0600) if missing.
pub fn install(path: &Path, hosts: &[String]) -> Result<(), String> {
    let mut doc: Value = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => json!({}),
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let Some(object) = doc.as_object_mut() else {
        return Err(format!("{}: not a JSON object", path.display()));
    };
    let helpers = object
        .entry("credHelpers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| format!("{}: credHelpers is not an object", path.display()))?;
    for host in hosts {
        helpers.insert(host_of(host)?, json!(HELPER));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    file.write_all(format!("{text}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = file.as_file().set_permissions(meta.permissions());
    }
    file.persist(path)
        .map_err(|e| format!("cannot replace {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
        .map(|d| d.join("config.json"))
}

/// containers' auth file (podman, skopeo, buildah): `$REGISTRY_AUTH_FILE`, else
/// `$XDG_CONFIG_HOME/containers/auth.json`, else `~/.config/containers/auth.json`.
pub fn containers_auth(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(path) = env("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))
        .map(|d| d.join("containers").join("auth.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_challenges_parse() {
        assert_eq!(
            host_of("https://CR.example.com/v1/").unwrap(),
            "cr.example.com"
        );
        assert_eq!(host_of("127.0.0.1:5000\n").unwrap(), "127.0.0.1:5000");
        assert!(host_of("").is_err());
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:5")
        );
        assert!(!is_loopback("cr.example.com:443"));
        let c = r#"Bearer realm="https://cr.example.com/token",service="cr.example.com",scope="repository:a:pull""#;
        assert_eq!(
            challenge_param(c, "service").as_deref(),
            Some("cr.example.com")
        );
        assert_eq!(
            challenge_param(c, "realm").as_deref(),
            Some("https://cr.example.com/token")
        );
        assert_eq!(
            challenge_param("Bearer service=x", "service").as_deref(),
            Some("x")
        );
        assert_eq!(challenge_param(r#"Basic realm="x""#, "realm"), None);
    }

    #[test]
    fn sources_are_tried_in_order_and_none_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let file = file.display().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            }
        };
        let both = env(vec![(TOKEN_FILE, file.clone()), (TOKEN, "from-var".into())]);
        assert_eq!(
            id_token("a", &both).unwrap(),
            ("from-file".into(), Source::File)
        );
        let var = env(vec![(TOKEN, "from-var".into())]);
        assert_eq!(
            id_token("a", &var).unwrap(),
            ("from-var".into(), Source::Variable)
        );
        let half = env(vec![(ACTIONS_URL, "http://x".into()), (TOKEN, "t".into())]);
        assert!(id_token("a", &half).unwrap_err().contains("only one of"));
        let none = id_token("cr.example.com", &env(vec![])).unwrap_err();
        for name in [ACTIONS_URL, TOKEN_FILE, TOKEN, "cr.example.com"] {
            assert!(none.contains(name), "{name} not in {none}");
        }
    }

    #[test]
    fn install_adds_cred_helpers_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker").join("config.json");
        install(&path, &["cr.example.com".into()]).unwrap();
        std::fs::write(
            &path,
            r#"{"auths": {"other.io": {}}, "credHelpers": {"gcr.io": "gcloud"}}"#,
        )
        .unwrap();
        install(
            &path,
            &["https://cr.example.com/".into(), "127.0.0.1:5000".into()],
        )
        .unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            doc,
            json!({"auths": {"other.io": {}}, "credHelpers": {
                "gcr.io": "gcloud", "cr.example.com": "regpress", "127.0.0.1:5000": "regpress"}})
        );
        std::fs::write(&path, "[]").unwrap();
        assert!(
            install(&path, &["x".into()])
                .unwrap_err()
                .contains("not a JSON object")
        );
    }
}
