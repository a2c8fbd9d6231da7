//! Replays the fuzzers' seeds and regression inputs (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`) through the same target functions cargo fuzz runs, on every
//! test run: no input may panic, every `ok-*` input must be accepted (so the seeds reach the
//! deep code, not the first error) and every other one refused, and every target has seeds and
//! regression inputs.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use regpress::auth::scope::{PULL, Scope};
use regpress::auth::token::{Access, Signer};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_seed_and_regression_input_is_judged_as_named_and_none_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut wrong = Vec::new();
    for (name, target) in targets::TARGETS {
        for kind in ["seeds", "regressions"] {
            let found = inputs(&root.join(kind).join(name));
            assert!(!found.is_empty(), "fuzz/{kind}/{name} has no inputs");
            for input in &found {
                let data = std::fs::read(input).expect("read input");
                let expected = targets::expects_acceptance(input);
                if target(&data) != expected {
                    wrong.push(format!(
                        "{}: expected {}",
                        input.display(),
                        if expected { "accepted" } else { "refused" }
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "seeds judged wrongly:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_fresh_registry_token_passes_the_token_target() {
    // Tokens expire, so the accepted case is minted here rather than stored as a seed.
    let signer = Signer::new(
        targets::FUZZ_KEY,
        "https://auth.fuzz.example/token",
        "fuzz.example",
        Duration::from_secs(300),
    )
    .expect("fuzz key loads");
    let scope = Scope::parse("repository:acme/app:pull").expect("scope");
    let minted = signer
        .mint(
            "fuzz",
            vec![Access {
                kind: "repository".to_string(),
                name: scope.repository,
                actions: vec![PULL.to_string()],
            }],
            &regpress::auth::token::Via::default(),
        )
        .expect("mint");
    assert!(targets::registry_token(minted.token.as_bytes()));
    let mut forged = minted.token.into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    assert!(!targets::registry_token(&forged));
}

#[test]
fn a_token_signed_by_the_fuzz_issuer_passes_the_id_token_target() {
    // The token shape, signed here (signatures are not stored as seeds: they would pin a key
    // format), then the same token with its signature or its claims touched.
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": targets::ID_TOKEN_ISSUER, "aud": targets::ID_TOKEN_AUDIENCE,
        "sub": "repo:acme/app:ref:refs/heads/main", "iat": now, "nbf": now, "exp": now + 300,
    });
    let kid = Signer::new(targets::FUZZ_KEY, "i", "s", Duration::from_secs(60))
        .expect("fuzz key loads")
        .jwks()["keys"][0]["kid"]
        .as_str()
        .expect("kid")
        .to_string();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(targets::FUZZ_KEY.as_bytes()).expect("key");
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    assert!(targets::id_token(token.as_bytes()));
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    assert!(!targets::id_token(&forged));
    // The signed shape reaches the claim checks: the same claims for another audience fail
    // there, past a good signature.
    let signed = |claims: &serde_json::Value| {
        format!("{{\"alg\":\"ES256\",\"kid\":\"@KID@\"}}\n{claims}").into_bytes()
    };
    assert!(targets::id_token(&signed(&claims)));
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = "other.example".into();
    assert!(!targets::id_token(&signed(&elsewhere)));
}

#[test]
fn layout_inputs_name_their_blobs() {
    // The placeholder scheme the layout seeds rely on: a part may name the blobs after it.
    let separator = std::str::from_utf8(targets::LAYOUT_SEPARATOR).expect("ASCII");
    let data = [
        r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":@S1@,"digest":"@D1@","annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#,
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":@S2@,"digest":"@D2@"},"layers":[]}"#,
        "{}",
    ]
    .join(separator);
    assert!(targets::layout(data.as_bytes()));
    let dangling = data.replace("@D2@", "@D3@");
    assert!(!targets::layout(dangling.as_bytes()));
}
