//! Fuzz targets: every parser that reads untrusted input, each as a function of raw bytes.
//!
//! The cargo-fuzz binaries in `fuzz_targets/` call these under libFuzzer; `tests/fuzz_corpus.rs`
//! replays the seeds and every regression input through the same functions on every test run,
//! so a fixed crash stays fixed. Each returns whether the input was accepted, so the replay can
//! check that the seeds reach the deep code (a valid seed is accepted) and not just the first
//! error path. Nothing here may panic on any input: that is what the fuzzers look for.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};

use regpress::auth::config::IssuerConfig;
use regpress::auth::oidc::Verifier;
use regpress::auth::scope::{Scope, parse_request};
use regpress::auth::token::Signer;
use regpress::config::ImageSpec;
use regpress::digest::Digest;
use regpress::progress::Mode;
use regpress::verify::policy::Policy;
use regpress::verify::sbom::check_document;
use regpress::verify::signature::parse_bundle;
use regpress::verify::trust::{PolicySpec, RootSource, SignerSpec, TrustPolicy};
use regpress::verify::verify_all;
use sigstore_verify::types::{Artifact, Sha256Hash};

/// A P-256 key made for the fuzzers only: it signs registry tokens, and its public half is the
/// layout target's trusted key.
pub const FUZZ_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsAKUKqmSqpROvH73
bjNeozmVnxcy/00mzx3TeuGz9QihRANCAATPVQ4UtRCO1YQz/NzQqS5mx9md7P26
jGP2g4kZCu6WqkNVYkIh4y4kLDLw4ztjDbgJdpOPDecasTiVpXc+yNnD
-----END PRIVATE KEY-----
";
const FUZZ_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz1UOFLUQjtWEM/zc0KkuZsfZnez9
uoxj9oOJGQrulqpDVWJCIeMuJCwy8OM7Yw24CXaTjw3nGrE4laV3PsjZww==
-----END PUBLIC KEY-----
";

/// Separates `index.json` from the blobs, and the blobs from each other, in a layout input.
pub const LAYOUT_SEPARATOR: &[u8] = b"\n--blob--\n";
/// Most blobs a layout input may carry.
const MAX_BLOBS: usize = 8;

/// A whole OCI layout: `index.json`, then up to eight blobs, separated by [`LAYOUT_SEPARATOR`].
/// `@D<i>@` and `@S<i>@` in a part stand for the digest and size of blob `i` (counted from 1,
/// after `index.json`); a blob may name only blobs after it, so inputs can describe a real
/// descriptor graph (index → manifests → config and layers) that the fuzzer then mutates.
/// The layout is written to a temporary directory and verified completely (every document
/// parsed and checked, blobs hashed, signatures scanned against a trusted key).
pub fn layout(data: &[u8]) -> bool {
    let mut parts = split(data, LAYOUT_SEPARATOR);
    if parts.len() > MAX_BLOBS + 1 {
        return false;
    }
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let blobs = dir.path().join("blobs/sha256");
    if std::fs::create_dir_all(&blobs).is_err() {
        return false;
    }
    let mut named: Vec<(usize, Digest, usize)> = Vec::new();
    for i in (0..parts.len()).rev() {
        let mut part = parts[i].clone();
        for (j, digest, size) in &named {
            part = replace(
                &part,
                format!("@D{j}@").as_bytes(),
                digest.as_str().as_bytes(),
            );
            part = replace(
                &part,
                format!("@S{j}@").as_bytes(),
                size.to_string().as_bytes(),
            );
        }
        if i > 0 {
            let digest = Digest::of_bytes(&part);
            if std::fs::write(blobs.join(digest.hex()), &part).is_err() {
                return false;
            }
            named.push((i, digest, part.len()));
        }
        parts[i] = part;
    }
    let written = std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .and_then(|()| std::fs::write(dir.path().join("index.json"), &parts[0]));
    if written.is_err() {
        return false;
    }
    let spec = ImageSpec {
        layout: dir.path().to_path_buf(),
        repository: "fuzz/image".to_string(),
        tags: vec!["latest".to_string()],
        ref_name: None,
        bundles: Vec::new(),
        sboms: None,
        vex: Vec::new(),
        provenance: Default::default(),
    };
    let Some(trust) = trust_policy() else {
        return false;
    };
    verify_all(&[spec], &Policy::default(), Some(trust), Mode::Quiet).is_ok()
}

/// An SBOM document (SPDX or CycloneDX JSON): schema, references, NTIA elements.
pub fn sbom(data: &[u8]) -> bool {
    check_document(data, "fuzz").is_ok()
}

/// A Sigstore bundle, parsed and verified over a fixed artifact (the conformance suite's
/// `a.txt`), as a blob and as a digest, against the production root with a policy that accepts
/// any GitHub Actions identity and the fuzzers' key: certificate chain, timestamps, inclusion
/// proofs, DSSE.
pub fn bundle(data: &[u8]) -> bool {
    let Some(policy) = trust_policy() else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(bundle) = parse_bundle(text) else {
        return false;
    };
    let artifact = include_bytes!("../fixtures/sigstore-conformance/bundle-verify/a.txt");
    let as_blob = policy
        .verify(&bundle, Artifact::from_blob(artifact))
        .is_ok();
    let as_digest = Sha256Hash::from_hex(Digest::of_bytes(artifact).hex()).is_ok_and(|digest| {
        policy
            .verify(&bundle, Artifact::from_digest(digest))
            .is_ok()
    });
    as_blob || as_digest
}

/// The trust policy the `layout` and `bundle` targets verify against, loaded once (loading
/// parses the embedded production root, far more work than most inputs): any GitHub Actions
/// identity, or the fuzzers' key, without requiring signatures.
fn trust_policy() -> Option<&'static TrustPolicy> {
    static POLICY: OnceLock<Option<(TrustPolicy, tempfile::TempDir)>> = OnceLock::new();
    let loaded = POLICY.get_or_init(|| {
        let dir = tempfile::tempdir().ok()?;
        std::fs::write(dir.path().join("key.pub"), FUZZ_PUBLIC_KEY).ok()?;
        let spec = PolicySpec {
            require: false,
            signers: vec![
                SignerSpec {
                    identity_regexp: Some(".*".to_string()),
                    issuer: Some("https://token.actions.githubusercontent.com".to_string()),
                    ..SignerSpec::default()
                },
                SignerSpec {
                    key: Some(dir.path().join("key.pub")),
                    ..SignerSpec::default()
                },
            ],
            ..PolicySpec::default()
        };
        let policy = TrustPolicy::with_root(&spec, &RootSource::Production).ok()?;
        Some((policy, dir))
    });
    loaded.as_ref().map(|(policy, _key_dir)| policy)
}

/// What `/check` reads from the proxy: the original method, a newline, the original URI
/// (path tricks, percent-encoding, repository names); and `/token` scopes, one per line.
pub fn request(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let (method, rest) = text.split_once('\n').unwrap_or(("GET", &text));
    let mut lines = rest.lines();
    let uri = lines.next().unwrap_or_default();
    let reached = parse_request(method, uri).is_ok();
    let scoped = lines.map(Scope::parse).filter(Option::is_some).count();
    reached || scoped > 0
}

/// A registry token as `/check` receives it in `Authorization: Bearer …`.
pub fn registry_token(data: &[u8]) -> bool {
    static SIGNER: OnceLock<Option<Signer>> = OnceLock::new();
    let Some(signer) = SIGNER.get_or_init(|| {
        Signer::new(
            FUZZ_KEY,
            "https://auth.fuzz.example/token",
            "fuzz.example",
            Duration::from_secs(300),
        )
        .ok()
    }) else {
        return false;
    };
    let text = String::from_utf8_lossy(data);
    signer.verify(&text).is_ok()
}

/// The issuer the `id_token` target trusts, as in tokens' `iss`.
pub const ID_TOKEN_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience the `id_token` target accepts.
pub const ID_TOKEN_AUDIENCE: &str = "fuzz.example";
/// In a signed `id_token` input, stands for the `kid` of the fuzzers' key.
pub const KID_PLACEHOLDER: &[u8] = b"@KID@";

/// An OIDC ID token as `/token` receives it (the Basic password), verified completely by the
/// handler's [`Verifier`] against one allowed issuer whose key is the fuzzers' (ES256), its
/// JWKS served in process from a loopback port, so nothing leaves the machine.
///
/// Two shapes of input. A token as sent (three base64url parts) exercises the size cap, header
/// parsing, the issuer allowlist, algorithm pinning and the signature check. A header and
/// claims as JSON on two lines (the first byte `{`) are signed here with the fuzzers' key
/// first, so that every mutation passes the signature and reaches the checks past it: `iss`,
/// `aud`, `exp`, `nbf`, `iat`, `sub`, `crit`, the header's `alg` and `kid` (`@KID@` in the
/// header stands for the key's `kid`).
pub fn id_token(data: &[u8]) -> bool {
    static FIXTURE: OnceLock<Option<IdTokens>> = OnceLock::new();
    let Some(fixture) = FIXTURE.get_or_init(IdTokens::start) else {
        return false;
    };
    let token = match data.first() {
        Some(b'{') => match fixture.sign(data) {
            Some(token) => token,
            None => return false,
        },
        _ => String::from_utf8_lossy(data).into_owned(),
    };
    fixture
        .runtime
        .block_on(fixture.verifier.verify(&token))
        .is_ok()
}

/// What the `id_token` target verifies with: the verifier, its runtime, and the fuzzers' key.
struct IdTokens {
    verifier: Verifier,
    runtime: tokio::runtime::Runtime,
    key: EncodingKey,
    kid: String,
}

impl IdTokens {
    fn start() -> Option<IdTokens> {
        let signer = Signer::new(
            FUZZ_KEY,
            "https://auth.fuzz.example/token",
            ID_TOKEN_AUDIENCE,
            Duration::from_secs(300),
        )
        .ok()?;
        let jwks = signer.jwks();
        let kid = jwks["keys"][0]["kid"].as_str()?.to_string();
        let issuer = IssuerConfig {
            url: ID_TOKEN_ISSUER.to_string(),
            audience: vec![ID_TOKEN_AUDIENCE.to_string()],
            algorithms: vec!["RS256".to_string(), "ES256".to_string()],
            jwks_uri: Some(serve_in_process(jwks.to_string())?),
            // One fetch per fuzzer process: unknown kids are refused without another.
            jwks_cooldown: 3600,
        };
        Some(IdTokens {
            verifier: Verifier::new(&[issuer]).ok()?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?,
            key: EncodingKey::from_ec_pem(FUZZ_KEY.as_bytes()).ok()?,
            kid,
        })
    }

    /// `header\nclaims` (JSON, `@KID@` in the header replaced) as a token signed with ES256.
    fn sign(&self, data: &[u8]) -> Option<String> {
        let at = data.iter().position(|&b| b == b'\n')?;
        let header = replace(&data[..at], KID_PLACEHOLDER, self.kid.as_bytes());
        let claims = &data[at + 1..];
        let b64 = |part: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part);
        let message = format!("{}.{}", b64(&header), b64(claims));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::ES256).ok()?;
        Some(format!("{message}.{signature}"))
    }
}

/// Answer every HTTP request on a loopback port with `body` (JSON); return the URL.
fn serve_in_process(body: String) -> Option<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let url = format!("http://{}/jwks", listener.local_addr().ok()?);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Some(url)
}

/// A fuzz target: takes any bytes, says whether they were accepted.
pub type Target = fn(&[u8]) -> bool;

/// Every target by name, for the corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("layout", layout),
    ("sbom", sbom),
    ("bundle", bundle),
    ("request", request),
    ("registry_token", registry_token),
    ("id_token", id_token),
];

/// Whether a seed or regression input is meant to be accepted (`ok-*`) or refused (anything
/// else).
pub fn expects_acceptance(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("ok-"))
}

fn split(data: &[u8], separator: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, separator) {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
