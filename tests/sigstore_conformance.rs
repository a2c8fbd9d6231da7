//! The sigstore-conformance suite's bundle-verify cases, driven through
//! `regpress sigstore verify-bundle` exactly as the suite drives a client: every case with the
//! artifact as a file and as a `sha256:` digest; `_fail` cases must be refused as verification
//! failures (exit 3) for their own reason. Also: `--staging`, and tampered copies of the Rekor
//! v2 happy path (TSA timestamp, inclusion proof) made in a temporary directory.

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

/// Why each `_fail` case must be refused: the exit code, and words of the reason. Every
/// `_fail` case of the suite must be listed, so a new one cannot pass unexamined.
const FAILURES: &[(&str, i32, &str)] = &[
    (
        "checkpoint-wrong-roothash_fail",
        3,
        "inclusion proof root hash does not match checkpoint root hash",
    ),
    (
        "dsse-mismatch-sig_fail",
        3,
        "DSSE signature in bundle does not match any signature in Rekor entry",
    ),
    (
        "intoto-expired-certificate_fail",
        3,
        "certificate chain validation failed",
    ),
    ("invalid-inclusion-proof_fail", 3, "inclusion proof"),
    // Its key.pub is not a key at all (the base64 ends in "wrongkey=="): regpress refuses the
    // flag's file as a usage error, before there is anything to verify.
    ("managed-key-wrong-key_fail", 2, "failed to parse PEM"),
    (
        "message-digest-mismatch_fail",
        3,
        "message digest in bundle does not match artifact hash",
    ),
    ("set-invalid-signature_fail", 3, "SET verification failed"),
    (
        "signature-mismatch_fail",
        3,
        "signature verification failed",
    ),
];

/// The artifact of `case` (its own, or the suite's `a.txt`) and its `sha256:` digest.
fn artifact_of(case: &Path) -> (PathBuf, String) {
    let artifact = if case.join("artifact").exists() {
        case.join("artifact")
    } else {
        case.parent().unwrap().join("a.txt")
    };
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(&artifact).unwrap()))
    );
    (artifact, digest)
}

fn run(args: &[String]) -> common::Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    regpress(&args)
}

#[test]
fn every_bundle_verify_case_behaves_as_its_readme_says() {
    let cases = cases();
    assert!(cases.len() >= 14, "conformance cases missing: {cases:?}");
    let mut wrong = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = FAILURES.iter().find(|(n, _, _)| *n == name);
        if name.ends_with("_fail") && expected.is_none() {
            wrong.push(format!(
                "{name}: a failure case with no expected reason in FAILURES"
            ));
            continue;
        }
        let (artifact, digest) = artifact_of(case);
        for (form, arg) in [("file", s(&artifact)), ("digest", digest)] {
            let out = run(&args_for(case, arg));
            let fine = match expected {
                None => out.code == 0,
                Some((_, code, reason)) => {
                    out.code == *code
                        && out.stderr.starts_with("error: ")
                        && out.stderr.contains(reason)
                }
            };
            if !fine {
                let want = match expected {
                    None => "success".to_string(),
                    Some((_, code, reason)) => format!("exit {code} naming {reason:?}"),
                };
                wrong.push(format!(
                    "{name} as {form}: exit {} (expected {want}):\n{}{}",
                    out.code, out.stdout, out.stderr
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The rekor2 case's custom trusted root is Sigstore's staging root: with `--staging` (the
/// embedded staging root) instead, it verifies the same; the production root refuses it.
#[test]
fn staging_selects_the_embedded_staging_root() {
    let case = fixture("sigstore-conformance/bundle-verify/rekor2-happy-path");
    let (artifact, digest) = artifact_of(&case);
    let identity = [
        "--certificate-identity".to_string(),
        DEFAULT_IDENTITY.to_string(),
        "--certificate-oidc-issuer".to_string(),
        DEFAULT_ISSUER.to_string(),
    ];
    let bundle = [
        "--bundle".to_string(),
        s(&case.join("bundle.sigstore.json")),
    ];
    let with = |root: &[&str], arg: String| {
        let mut args = vec!["sigstore".to_string(), "verify-bundle".to_string()];
        args.extend(root.iter().map(|a| a.to_string()));
        args.extend(bundle.iter().cloned());
        args.extend(identity.iter().cloned());
        args.push(arg);
        run(&args)
    };
    for arg in [s(&artifact), digest] {
        let staging = with(&["--staging"], arg.clone());
        staging.ok();
        assert!(
            staging.stdout.contains(DEFAULT_IDENTITY),
            "{}",
            staging.stdout
        );
        let production = with(&[], arg);
        assert_eq!(production.code, 3, "{}", production.stderr);
    }
}

/// A copy of `case` in `dir` with its bundle edited by `edit`.
fn tampered(case: &Path, dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let copy = dir.join(case.file_name().unwrap());
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(case).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let path = copy.join("bundle.sigstore.json");
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut bundle);
    std::fs::write(&path, bundle.to_string()).unwrap();
    copy
}

/// Flip one bit in the middle of the base64 field at `pointer`.
fn flip(bundle: &mut serde_json::Value, pointer: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = bundle.pointer_mut(pointer).unwrap();
    let mut bytes = b64.decode(field.as_str().unwrap()).unwrap();
    let at = bytes.len() - 8;
    bytes[at] ^= 1;
    *field = b64.encode(bytes).into();
}

#[test]
fn tampered_rekor_v2_bundles_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let case = fixture("sigstore-conformance/bundle-verify/rekor2-happy-path");
    let (artifact, digest) = artifact_of(&case);
    for arg in [s(&artifact), digest.clone()] {
        run(&args_for(&case, arg)).ok();
    }
    type Edit = fn(&mut serde_json::Value);
    let variants: [(&str, Edit, &str); 3] = [
        (
            "TSA signedTimestamp",
            |b| {
                flip(
                    b,
                    "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp",
                )
            },
            "TSA timestamp verification failed",
        ),
        (
            "an inclusion-proof hash",
            |b| {
                flip(
                    b,
                    "/verificationMaterial/tlogEntries/0/inclusionProof/hashes/3",
                )
            },
            "inclusion proof verification failed: root hash mismatch",
        ),
        (
            "the inclusion-proof hashes, one dropped",
            |b| {
                let hashes = b
                    .pointer_mut("/verificationMaterial/tlogEntries/0/inclusionProof/hashes")
                    .unwrap();
                hashes.as_array_mut().unwrap().pop();
            },
            "inclusion proof verification failed: expected 8 proof hashes, got 7",
        ),
    ];
    for (i, (what, edit, reason)) in variants.into_iter().enumerate() {
        let copy = tampered(&case, &tmp.path().join(i.to_string()), edit);
        for arg in [s(&artifact), digest.clone()] {
            let out = run(&args_for(&copy, arg));
            assert_eq!(out.code, 3, "{what}: {}{}", out.stdout, out.stderr);
            assert!(
                out.stderr.contains(reason),
                "{what}: expected {reason:?}: {}",
                out.stderr
            );
        }
    }
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
