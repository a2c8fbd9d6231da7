//! Fuzz targets: every parser that reads untrusted input, each as a function of raw bytes.
//!
//! The cargo-fuzz binaries in `fuzz_targets/` call these under libFuzzer; `tests/fuzz_corpus.rs`
//! replays the seeds and every regression input through the same functions on every test run,
//! so a fixed crash stays fixed. Each returns whether the input was accepted, so the replay can
//! check that the seeds reach the deep code (a valid seed is accepted) and not just the first
//! error path. Nothing here may panic on any input: that is what the fuzzers look for.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

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
            trusted_root: None,
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

/// An OIDC ID token as `/token` receives it (the Basic password): size cap, header, issuer
/// allowlist, algorithm pinning, claims. The one allowed issuer's keys live at a closed port, so
/// a token naming it is refused as unavailable without leaving the machine.
pub fn id_token(data: &[u8]) -> bool {
    static VERIFIER: OnceLock<Option<(Verifier, tokio::runtime::Runtime)>> = OnceLock::new();
    let Some((verifier, runtime)) = VERIFIER.get_or_init(|| {
        let issuer = IssuerConfig {
            url: "https://token.actions.githubusercontent.com".to_string(),
            audience: vec!["fuzz.example".to_string()],
            algorithms: vec!["RS256".to_string(), "ES256".to_string()],
            jwks_uri: Some("http://127.0.0.1:9/jwks".to_string()),
            jwks_cooldown: 3600,
        };
        let verifier = Verifier::new(&[issuer]).ok()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some((verifier, runtime))
    }) else {
        return false;
    };
    let text = String::from_utf8_lossy(data);
    runtime.block_on(verifier.verify(&text)).is_ok()
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

/// Whether a seed file is meant to be accepted (`ok-*`) or refused (anything else).
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
