//! Replays the fuzzers' seeds and regression inputs (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`) through the same target functions cargo fuzz runs, on every
//! test run: no input may panic, every `ok-*` seed must be accepted (so the seeds reach the
//! deep code, not the first error) and every other seed refused.

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
fn every_seed_is_judged_as_named_and_no_input_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut wrong = Vec::new();
    for (name, target) in targets::TARGETS {
        let seeds = inputs(&root.join("seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seeds");
        for seed in &seeds {
            let data = std::fs::read(seed).expect("read seed");
            let expected = targets::expects_acceptance(seed);
            if target(&data) != expected {
                wrong.push(format!(
                    "{}: expected {}",
                    seed.display(),
                    if expected { "accepted" } else { "refused" }
                ));
            }
        }
        for input in inputs(&root.join("regressions").join(name)) {
            let data = std::fs::read(&input).expect("read regression input");
            // A former crash: it must come back with an answer, whichever.
            target(&data);
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
        )
        .expect("mint");
    assert!(targets::registry_token(minted.token.as_bytes()));
    let mut forged = minted.token.into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    assert!(!targets::registry_token(&forged));
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
