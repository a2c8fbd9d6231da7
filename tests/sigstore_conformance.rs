//! The sigstore-conformance suite's bundle-verify cases, driven through
//! `regpress sigstore verify-bundle` exactly as the suite drives a client: every case with the
//! artifact as a file and as a `sha256:` digest; `_fail` cases must be refused.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, regpress, s};
use sha2::{Digest, Sha256};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn cases() -> Vec<PathBuf> {
    let root = fixture("sigstore-conformance/bundle-verify");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn read_or(case: &Path, name: &str, default: &str) -> String {
    std::fs::read_to_string(case.join(name))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| default.to_string())
}

fn args_for(case: &Path, artifact: String) -> Vec<String> {
    let mut args = vec![
        "sigstore".to_string(),
        "verify-bundle".to_string(),
        "--bundle".to_string(),
        s(&case.join("bundle.sigstore.json")),
    ];
    if case.join("key.pub").exists() {
        args.extend(["--key".to_string(), s(&case.join("key.pub"))]);
    } else {
        args.extend([
            "--certificate-identity".to_string(),
            read_or(case, "identity", DEFAULT_IDENTITY),
            "--certificate-oidc-issuer".to_string(),
            read_or(case, "issuer", DEFAULT_ISSUER),
        ]);
    }
    if case.join("trusted_root.json").exists() {
        args.extend([
            "--trusted-root".to_string(),
            s(&case.join("trusted_root.json")),
        ]);
    }
    args.push(artifact);
    args
}

#[test]
fn every_bundle_verify_case_behaves_as_its_readme_says() {
    let cases = cases();
    assert!(cases.len() >= 14, "conformance cases missing: {cases:?}");
    let mut wrong = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let should_fail = name.ends_with("_fail");
        let artifact = if case.join("artifact").exists() {
            case.join("artifact")
        } else {
            case.parent().unwrap().join("a.txt")
        };
        let digest = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(std::fs::read(&artifact).unwrap()))
        );
        for (form, arg) in [("file", s(&artifact)), ("digest", digest)] {
            let args = args_for(case, arg);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = regpress(&args);
            let ok = run.code == 0;
            if ok == should_fail {
                wrong.push(format!(
                    "{name} as {form}: exit {} (expected {}):\n{}{}",
                    run.code,
                    if should_fail { "refusal" } else { "success" },
                    run.stdout,
                    run.stderr
                ));
            } else if should_fail {
                // Refused cleanly: verification failure (3) or an unusable key (2), never a crash.
                assert!(
                    [2, 3].contains(&run.code) && run.stderr.starts_with("error: "),
                    "{name} as {form}: exit {}: {}",
                    run.code,
                    run.stderr
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn real_production_cosign_attestation_verifies_offline() {
    // The cosign project's test bundle: an in-toto attestation in DSSE, logged in production
    // Rekor, keyless with a GitHub login. Its subject is an image digest.
    let bundle = s(&fixture("sigstore/cosign-oci-attestation.sigstore.json"));
    let root = s(&fixture("sigstore/cosign-trusted_root_pgi.json"));
    let subject = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
    let verify = |identity: &str, issuer: &str, root: Option<&str>, artifact: &str| {
        let mut args = vec![
            "sigstore",
            "verify-bundle",
            "--bundle",
            &bundle,
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            issuer,
        ];
        if let Some(root) = root {
            args.extend(["--trusted-root", root]);
        }
        args.push(artifact);
        regpress(&args)
    };
    let issuer = "https://github.com/login/oauth";
    let ok = verify("cody@soyland.com", issuer, Some(&root), subject);
    ok.ok();
    assert!(ok.stdout.contains("cody@soyland.com"), "{}", ok.stdout);
    // The embedded production root is the same public-good instance.
    verify("cody@soyland.com", issuer, None, subject).ok();
    // Wrong identity, wrong issuer, other digest: refused with the reason.
    let wrong_id = verify("someone@else.com", issuer, None, subject);
    assert_eq!(wrong_id.code, 3);
    assert!(
        wrong_id.stderr.contains("identity mismatch"),
        "{}",
        wrong_id.stderr
    );
    let wrong_issuer = verify(
        "cody@soyland.com",
        "https://accounts.google.com",
        None,
        subject,
    );
    assert_eq!(wrong_issuer.code, 3);
    assert!(
        wrong_issuer.stderr.contains("issuer mismatch"),
        "{}",
        wrong_issuer.stderr
    );
    let other = format!("sha256:{}", "0".repeat(64));
    let wrong_digest = verify("cody@soyland.com", issuer, None, &other);
    assert_eq!(wrong_digest.code, 3);
    assert!(
        wrong_digest.stderr.contains("mismatch"),
        "{}",
        wrong_digest.stderr
    );
}
