//! Signed images end to end: layouts signed by a test Sigstore (key-signed and keyless, cosign
//! v3 bundles as OCI referrers, legacy `.sig` images, sidecar bundles) publish with their
//! signatures, which the site serves as referrers; every tampered variant is refused with its
//! reason and nothing written.

mod common;

use std::path::Path;

use common::signing::{
    self, COSIGN_SIGN, IDENTITY, ISSUER, KeyType, Signer, TestSigstore, Validity, World,
    attach_legacy, attach_to_index, attach_to_manifest,
};
use common::synth::{self, Flavor, Generated, Layer};
use common::{Run, Server, fixture, regpress, report, s, skopeo, snapshot};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A small two-platform apko-shaped layout in `dir`.
fn layout(dir: &Path, seed: u64) -> Generated {
    let base = vec![Layer::new(seed, 4_000)];
    synth::apko_layout(
        dir,
        &synth::Image {
            name: "signed",
            seed,
            base: &base,
            app_size: 3_000,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    )
}

/// Sign the index of `g` as cosign v3 does; returns the referrer's digest.
fn sign_index(sigstore: &TestSigstore, signer: &Signer, g: &Generated) -> String {
    attach_to_index(
        g,
        &sigstore.dsse_bundle(signer, &g.index_digest, COSIGN_SIGN),
    )
}

impl World {
    fn key_file(&self, signer: &Signer, name: &str) -> String {
        let path = self.path(name);
        signer.write_public(&path);
        s(&path)
    }

    /// `publish LAYOUT --repo signed --tag v1 --to SITE` with `policy` flags.
    fn publish(&self, layout: &Path, site: &Path, policy: &[&str]) -> Run {
        let mut args = vec![
            "publish".to_string(),
            s(layout),
            "--repo".into(),
            "signed".into(),
            "--tag".into(),
            "v1".into(),
            "--to".into(),
            s(site),
            "--trusted-root".into(),
            s(&self.root),
        ];
        args.extend(policy.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        regpress(&args)
    }
}

fn get_json(server: &Server, path: &str) -> (String, serde_json::Value) {
    let response = reqwest::blocking::get(server.url(path)).unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.json().unwrap())
}

#[test]
fn key_signed_image_publishes_with_its_signature_as_a_referrer_and_pulls() {
    let w = World::new();
    let g = layout(&w.path("layout"), 1);
    let signer = Signer::key();
    let key = w.key_file(&signer, "cosign.pub");
    let bundle = w
        .sigstore
        .dsse_bundle(&signer, &g.index_digest, COSIGN_SIGN);
    let referrer = attach_to_index(&g, &bundle);
    let site = w.path("site");

    let report = s(&w.path("report.json"));
    let run = w.publish(
        &g.dir,
        &site,
        &["--require-signature", "--key", &key, "--report", &report],
    );
    run.ok();
    // The report and the Action's summary name the verified signer.
    let published = common::report(Path::new(&report));
    let signer_named = published["images"][0]["signers"][0].as_str().unwrap();
    assert!(signer_named.starts_with("key "), "{published}");
    let summary = regpress(&["summarize", "--report", &report]);
    summary.ok();
    assert!(
        summary.stdout.contains(&format!("| ✅ {signer_named} |")),
        "{}",
        summary.stdout
    );

    let verified = regpress(&[
        "verify",
        &s(&g.dir),
        "--require-signature",
        "--key",
        &key,
        "--trusted-root",
        &s(&w.root),
    ]);
    verified.ok();
    assert!(
        verified.stdout.contains("signed by key"),
        "{}",
        verified.stdout
    );

    let server = Server::start(&site);
    let (content_type, referrers) =
        get_json(&server, &format!("/v2/signed/referrers/{}", g.index_digest));
    assert_eq!(content_type, OCI_INDEX);
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{referrers}");
    assert_eq!(listed[0]["digest"], referrer.as_str());
    assert_eq!(listed[0]["artifactType"], signing::BUNDLE_V03);
    // The fallback tag (OCI referrers tag schema) lists the same.
    let hex = g.index_digest.trim_start_matches("sha256:");
    let (_, fallback) = get_json(&server, &format!("/v2/signed/manifests/sha256-{hex}"));
    assert_eq!(fallback, referrers);
    // The referrer manifest and its bundle are served byte for byte.
    let (_, manifest) = get_json(&server, &format!("/v2/signed/manifests/{referrer}"));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let served = reqwest::blocking::get(server.url(&format!("/v2/signed/blobs/{layer}")))
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(served.as_ref(), bundle.to_string().as_bytes());
    // Platform manifests have (empty) referrers lists too.
    let (_, empty) = get_json(&server, &format!("/v2/signed/referrers/{}", g.manifests[0]));
    assert_eq!(empty["manifests"], serde_json::json!([]));
    // The image itself still pulls.
    let dest = w.path("pulled");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &server.image("signed:v1"),
        &format!("oci:{}", s(&dest)),
    ])
    .ok();
}

#[test]
fn keyless_signatures_verify_by_identity_and_issuer() {
    let w = World::new();
    let g = layout(&w.path("layout"), 2);
    let signer = w.sigstore.keyless(IDENTITY, ISSUER, Validity::CURRENT);
    attach_to_index(
        &g,
        &w.sigstore
            .dsse_bundle(&signer, &g.index_digest, COSIGN_SIGN),
    );
    let site = w.path("site");
    w.publish(
        &g.dir,
        &site,
        &[
            "--require-signature",
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    )
    .ok();
    // An anchored pattern accepts the same identity; a pattern that only matches a part does not.
    w.publish(
        &g.dir,
        &w.path("site2"),
        &[
            "--require-signature",
            "--certificate-identity-regexp",
            r"https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/heads/main",
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    )
    .ok();
    let partial = w.publish(
        &g.dir,
        &w.path("site3"),
        &[
            "--require-signature",
            "--certificate-identity-regexp",
            "https://github.com/acme",
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    );
    assert_eq!(partial.code, 3, "{}", partial.stderr);
    assert!(
        partial.stderr.contains("identity mismatch"),
        "{}",
        partial.stderr
    );
    assert!(!w.path("site3").join("v2").exists());
}

#[test]
fn legacy_sig_images_and_sidecar_bundles_are_verified_and_published() {
    let w = World::new();
    let g = layout(&w.path("layout"), 3);
    let signer = w.sigstore.keyless(IDENTITY, ISSUER, Validity::CURRENT);
    let (payload, annotations) = w.sigstore.legacy_signature(&signer, &g.index_digest);
    let sig = attach_legacy(&g.dir, &payload, &annotations);
    let key_signer = Signer::key();
    let key = w.key_file(&key_signer, "cosign.pub");
    let sidecar = w.path("index.json.sigstore.json");
    std::fs::write(
        &sidecar,
        w.sigstore
            .blob_bundle(&key_signer, &g.index_bytes)
            .to_string(),
    )
    .unwrap();
    let site = w.path("site");
    let run = w.publish(
        &g.dir,
        &site,
        &[
            "--require-signature",
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "--key",
            &key,
            "--bundle",
            &s(&sidecar),
        ],
    );
    run.ok();
    let server = Server::start(&site);
    let hex = g.index_digest.trim_start_matches("sha256:");
    let (_, sig_manifest) = get_json(&server, &format!("/v2/signed/manifests/sha256-{hex}.sig"));
    assert_eq!(
        sig_manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"],
        annotations["dev.cosignproject.cosign/signature"].as_str()
    );
    let (_, by_digest) = get_json(&server, &format!("/v2/signed/manifests/{sig}"));
    assert_eq!(by_digest, sig_manifest);
    let (_, referrers) = get_json(&server, &format!("/v2/signed/referrers/{}", g.index_digest));
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "the sidecar bundle: {referrers}");
    let (_, tags) = get_json(&server, "/v2/signed/tags/list");
    let tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&format!("sha256-{hex}.sig").as_str()),
        "{tags:?}"
    );
    assert!(tags.contains(&format!("sha256-{hex}").as_str()), "{tags:?}");
    assert!(tags.contains(&"v1"), "{tags:?}");
}

/// Every key type a policy accepts signs in every form: a cosign v3 DSSE referrer, a legacy
/// `.sig` image and a sidecar `sign-blob` bundle over the index, and a message-signature
/// referrer over a platform manifest's bytes. Ed25519 verifies only over the signed bytes, and
/// a P-384 message signature hashes with SHA-384: both need the artifact itself, not its
/// SHA-256 digest.
#[test]
fn every_key_type_signs_in_every_form_and_publishes() {
    let w = World::new();
    for (i, key_type) in KeyType::ALL.into_iter().enumerate() {
        let name = format!("{key_type:?}");
        let g = layout(&w.path(&format!("layout-{name}")), 40 + i as u64);
        let signer = Signer::of(key_type);
        let key = w.key_file(&signer, &format!("{name}.pub"));
        let dsse = sign_index(&w.sigstore, &signer, &g);
        let (payload, annotations) = w.sigstore.legacy_signature(&signer, &g.index_digest);
        let sig = attach_legacy(&g.dir, &payload, &annotations);
        let sidecar = w.path(&format!("{name}.sigstore.json"));
        let bundle = w.sigstore.blob_bundle(&signer, &g.index_bytes);
        std::fs::write(&sidecar, bundle.to_string()).unwrap();
        let platform = &g.manifests[0];
        let platform_bytes = std::fs::read(synth::blob_path(&g.dir, platform)).unwrap();
        let on_platform = attach_to_manifest(
            &g,
            platform,
            &w.sigstore.blob_bundle(&signer, &platform_bytes),
        );
        let site = w.path(&format!("site-{name}"));
        let report = w.path(&format!("report-{name}.json"));
        let run = w.publish(
            &g.dir,
            &site,
            &[
                "--require-signature",
                "--key",
                &key,
                "--bundle",
                &s(&sidecar),
                "--report",
                &s(&report),
            ],
        );
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        let r = common::report(&report);
        let image = &r["images"][0];
        assert_eq!(
            image["signers"],
            serde_json::json!([format!("key {key}")]),
            "{name}"
        );
        let attachments = image["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 4, "{name}: {attachments:?}");
        for a in attachments {
            assert_eq!(a["kind"], "signature", "{name}: {a}");
            assert!(
                a["summary"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("verified: key {key}")),
                "{name}: {a}"
            );
        }
        let digests: Vec<&str> = attachments
            .iter()
            .map(|a| a["digest"].as_str().unwrap())
            .collect();
        for made in [&dsse, &sig, &on_platform] {
            assert!(
                digests.contains(&made.as_str()),
                "{name}: {made} in {digests:?}"
            );
        }
        let server = Server::start(&site);
        let (_, referrers) = get_json(&server, &format!("/v2/signed/referrers/{platform}"));
        assert_eq!(
            referrers["manifests"][0]["digest"],
            on_platform.as_str(),
            "{name}: {referrers}"
        );
        let hex = g.index_digest.trim_start_matches("sha256:");
        let (_, sig_manifest) =
            get_json(&server, &format!("/v2/signed/manifests/sha256-{hex}.sig"));
        assert_eq!(
            sig_manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"],
            annotations["dev.cosignproject.cosign/signature"].as_str(),
            "{name}"
        );
    }
}

#[test]
fn requiring_signatures_without_signers_is_a_usage_error() {
    let w = World::new();
    let g = layout(&w.path("layout"), 50);
    sign_index(&w.sigstore, &Signer::key(), &g);
    let site = w.path("site");
    let run = w.publish(&g.dir, &site, &["--require-signature"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("signatures are required")
            && run.stderr.contains("no signer is accepted")
            && run.stderr.contains("--key"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("unsigned"), "{}", run.stderr);
    assert!(!site.exists());
    // The same in a config.
    let config = w.path("regpress.toml");
    std::fs::write(
        &config,
        format!(
            "[target]\nto = \"{}\"\n[signatures]\nrequire = true\n[[image]]\nlayout = \"{}\"\n\
             repository = \"signed\"\ntags = [\"v1\"]\n",
            s(&site),
            s(&g.dir)
        ),
    )
    .unwrap();
    let run = regpress(&["verify", "--config", &s(&config)]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("[[signatures.signer]]"),
        "{}",
        run.stderr
    );
}

fn golden_sbom() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(fixture("apko/golden/sboms/sbom-index.spdx.json")).unwrap(),
    )
    .unwrap()
}

/// The golden index SBOM, rewritten to describe `digest` (its checksum, purl and IDs).
fn sbom_of(digest: &str) -> serde_json::Value {
    let golden = golden_sbom().to_string();
    let hex = "b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";
    serde_json::from_str(&golden.replace(hex, digest.trim_start_matches("sha256:"))).unwrap()
}

#[test]
fn sbom_attestations_are_validated_verified_and_published() {
    let w = World::new();
    let g = layout(&w.path("layout"), 4);
    let signer = Signer::key();
    let key = w.key_file(&signer, "cosign.pub");
    sign_index(&w.sigstore, &signer, &g);
    let attestation = w.sigstore.attestation(
        &signer,
        &g.index_digest,
        "https://spdx.dev/Document",
        sbom_of(&g.index_digest),
    );
    let referrer = attach_to_index(&g, &attestation);
    let site = w.path("site");
    let report = w.path("report.json");
    let run = w.publish(
        &g.dir,
        &site,
        &[
            "--require-signature",
            "--key",
            &key,
            "--sbom",
            "required",
            "--report",
            &s(&report),
        ],
    );
    run.ok();
    // The attestation is the image's SBOM: counted, judged, reported with its origin.
    let r = common::report(&report);
    let sboms = r["images"][0]["sboms"].as_array().unwrap();
    assert_eq!(sboms.len(), 1, "{r}");
    assert_eq!(sboms[0]["origin"], format!("attestation {referrer}"));
    assert_eq!(sboms[0]["subject"], g.index_digest.as_str());
    assert_eq!(sboms[0]["path"], serde_json::Value::Null);
    assert_eq!(sboms[0]["format"], "spdx");
    assert_eq!(sboms[0]["ntia"], "pass");
    assert_eq!(r["sboms"], r["images"][0]["sboms"]);
    let verified = regpress(&[
        "verify",
        &s(&g.dir),
        "--key",
        &key,
        "--trusted-root",
        &s(&w.root),
    ]);
    verified.ok();
    assert!(
        verified
            .stdout
            .contains(&format!("{referrer} SBOM attestation (SPDX-2.3")),
        "{}",
        verified.stdout
    );
    let server = Server::start(&site);
    let (_, referrers) = get_json(&server, &format!("/v2/signed/referrers/{}", g.index_digest));
    let listed: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&referrer.as_str()), "{referrers}");
    assert_eq!(
        listed.len(),
        2,
        "the signature and the attestation, the SBOM not published twice"
    );
}

/// Each tampered or mis-signed variant, the flags to publish it with, and what the refusal
/// must say: its specific reason, the digest it concerns (`{index}` is the image index,
/// `{m0}` its first platform manifest) and the signer tried (or, when none got that far, the
/// signers that would have been).
#[test]
fn every_bad_signature_is_refused_with_its_reason_and_nothing_written() {
    let w = World::new();
    let site = w.path("site");
    // A good publish first, so the site exists and can be checked for untouchedness.
    let good = layout(&w.path("good"), 10);
    regpress(&[
        "publish",
        &s(&good.dir),
        "--repo",
        "good",
        "--tag",
        "v1",
        "--to",
        &s(&site),
        "-q",
    ])
    .ok();
    let before = snapshot(&site);

    let key_signer = Signer::key();
    let key = w.key_file(&key_signer, "cosign.pub");
    let other_key = w.key_file(&Signer::key(), "other.pub");
    let keyless = [
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let by_key = format!("key {key}");
    let by_other_key = format!("key {other_key}");
    let by_identity = format!("identity {IDENTITY} (issuer {ISSUER})");
    let untried = format!("(not checked against key {key})");
    let stranger = w.sigstore.other_ca();
    let spdx = "https://spdx.dev/Document";

    type Make<'a> = Box<dyn Fn(&Generated) + 'a>;
    let cases: Vec<(&str, Make, Vec<&str>, Vec<&str>)> = vec![
        (
            "unsigned",
            Box::new(|_: &Generated| {}),
            vec!["--key", &key],
            vec![
                "{index}: unsigned: signatures are required, and none signs {index}",
                &by_key,
            ],
        ),
        (
            "unknown key",
            Box::new(|g: &Generated| {
                sign_index(&w.sigstore, &key_signer, g);
            }),
            vec!["--key", &other_key],
            vec![
                "referrer of {index}: ",
                &by_other_key,
                "DSSE signature verification failed",
            ],
        ),
        (
            "keyless signature, only keys accepted",
            Box::new(|g: &Generated| {
                let signer = w.sigstore.keyless(IDENTITY, ISSUER, Validity::CURRENT);
                sign_index(&w.sigstore, &signer, g);
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: ",
                "signed with a certificate (keyless), but the policy accepts no identities",
                &by_key,
            ],
        ),
        (
            "wrong identity",
            Box::new(|g: &Generated| {
                let signer = w.sigstore.keyless(
                    "https://github.com/evil/images/.github/workflows/release.yml@refs/heads/main",
                    ISSUER,
                    Validity::CURRENT,
                );
                sign_index(&w.sigstore, &signer, g);
            }),
            keyless.to_vec(),
            vec!["referrer of {index}: ", &by_identity, "identity mismatch"],
        ),
        (
            "wrong issuer",
            Box::new(|g: &Generated| {
                let signer =
                    w.sigstore
                        .keyless(IDENTITY, "https://accounts.google.com", Validity::CURRENT);
                sign_index(&w.sigstore, &signer, g);
            }),
            keyless.to_vec(),
            vec!["referrer of {index}: ", &by_identity, "issuer mismatch"],
        ),
        (
            "tampered payload",
            Box::new(|g: &Generated| {
                let mut bundle = w
                    .sigstore
                    .dsse_bundle(&key_signer, &g.index_digest, COSIGN_SIGN);
                let statement = serde_json::json!({
                    "_type": "https://in-toto.io/Statement/v1",
                    "subject": [{"name": "", "digest": {"sha256": g.index_digest.trim_start_matches("sha256:")}}],
                    "predicateType": COSIGN_SIGN,
                    "predicate": {"tampered": true},
                });
                use base64::Engine;
                bundle["dsseEnvelope"]["payload"] = base64::engine::general_purpose::STANDARD
                    .encode(statement.to_string())
                    .into();
                attach_to_index(g, &bundle);
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: ",
                &by_key,
                "DSSE signature verification failed",
            ],
        ),
        (
            "referrer manifest changed after it was written",
            Box::new(|g: &Generated| {
                let referrer = sign_index(&w.sigstore, &key_signer, g);
                let path = synth::blob_path(&g.dir, &referrer);
                let changed = String::from_utf8(std::fs::read(&path).unwrap())
                    .unwrap()
                    .replacen("{", "{ ", 1);
                std::fs::write(&path, changed).unwrap();
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: digest mismatch: its manifest sha256:",
                " hashes to sha256:",
                &untried,
            ],
        ),
        (
            "signature over another digest",
            Box::new(|g: &Generated| {
                let other = synth::digest_of(b"another image");
                attach_to_index(g, &w.sigstore.dsse_bundle(&key_signer, &other, COSIGN_SIGN));
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: ",
                &by_key,
                "artifact hash does not match any subject in attestation",
            ],
        ),
        (
            "expired certificate",
            Box::new(|g: &Generated| {
                let signer = w.sigstore.keyless(IDENTITY, ISSUER, Validity::EXPIRED);
                sign_index(&w.sigstore, &signer, g);
            }),
            keyless.to_vec(),
            vec![
                "referrer of {index}: ",
                &by_identity,
                "certificate chain validation failed: CertExpired",
            ],
        ),
        (
            "untrusted certificate authority",
            Box::new(|g: &Generated| {
                let signer = stranger.keyless(IDENTITY, ISSUER, Validity::CURRENT);
                sign_index(&stranger, &signer, g);
            }),
            keyless.to_vec(),
            vec!["referrer of {index}: ", &by_identity, "certificate chain"],
        ),
        (
            "bad inclusion proof",
            Box::new(|g: &Generated| {
                let mut bundle = w
                    .sigstore
                    .dsse_bundle(&key_signer, &g.index_digest, COSIGN_SIGN);
                bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"] =
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
                attach_to_index(g, &bundle);
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: ",
                &by_key,
                "inclusion proof root hash does not match checkpoint root hash",
            ],
        ),
        (
            "bad signed entry timestamp",
            Box::new(|g: &Generated| {
                let mut bundle = w
                    .sigstore
                    .dsse_bundle(&key_signer, &g.index_digest, COSIGN_SIGN);
                let entry = &mut bundle["verificationMaterial"]["tlogEntries"][0];
                let time: i64 = entry["integratedTime"].as_str().unwrap().parse().unwrap();
                entry["integratedTime"] = (time - 3600).to_string().into();
                attach_to_index(g, &bundle);
            }),
            vec!["--key", &key],
            vec!["referrer of {index}: ", &by_key, "SET"],
        ),
        (
            "legacy payload edited to name another manifest",
            Box::new(|g: &Generated| {
                let (payload, annotations) =
                    w.sigstore.legacy_signature(&key_signer, &g.index_digest);
                let text = String::from_utf8(payload)
                    .unwrap()
                    .replace(g.index_digest.as_str(), &g.manifests[0]);
                attach_legacy(&g.dir, text.as_bytes(), &annotations);
            }),
            vec!["--key", &key],
            vec![
                "cosign signature image of {m0}: payload ",
                &by_key,
                "signature verification failed",
            ],
        ),
        (
            "SBOM attestation by an untrusted key",
            Box::new(|g: &Generated| {
                sign_index(&w.sigstore, &key_signer, g);
                let stranger_key = Signer::key();
                attach_to_index(
                    g,
                    &w.sigstore.attestation(
                        &stranger_key,
                        &g.index_digest,
                        spdx,
                        sbom_of(&g.index_digest),
                    ),
                );
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: ",
                &by_key,
                "DSSE signature verification failed",
            ],
        ),
        (
            "SBOM attestation missing required fields",
            Box::new(|g: &Generated| {
                sign_index(&w.sigstore, &key_signer, g);
                let mut predicate = sbom_of(&g.index_digest);
                predicate.as_object_mut().unwrap().remove("creationInfo");
                attach_to_index(
                    g,
                    &w.sigstore
                        .attestation(&key_signer, &g.index_digest, spdx, predicate),
                );
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: SBOM attestation: does not match the SPDX 2.3 schema",
                "at /: \"creationInfo\" is a required property",
                &by_key,
            ],
        ),
        (
            "SBOM attestation whose predicate describes another image",
            Box::new(|g: &Generated| {
                sign_index(&w.sigstore, &key_signer, g);
                attach_to_index(
                    g,
                    &w.sigstore
                        .attestation(&key_signer, &g.index_digest, spdx, golden_sbom()),
                );
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: SBOM attestation: the predicate describes sha256:b5f05e6f",
                "not its subject {index}",
                &by_key,
            ],
        ),
        (
            "SBOM attestation with an SPDX predicate type and a CycloneDX document",
            Box::new(|g: &Generated| {
                sign_index(&w.sigstore, &key_signer, g);
                let bom: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(fixture("sbom/bom-go-mod.cyclonedx.json")).unwrap(),
                )
                .unwrap();
                attach_to_index(
                    g,
                    &w.sigstore
                        .attestation(&key_signer, &g.index_digest, spdx, bom),
                );
            }),
            vec!["--key", &key],
            vec![
                "predicate type https://spdx.dev/Document is SPDX, but the predicate is a CycloneDX document",
                &by_key,
            ],
        ),
        (
            "referrer blob changed on disk",
            Box::new(|g: &Generated| {
                let bundle = w
                    .sigstore
                    .dsse_bundle(&key_signer, &g.index_digest, COSIGN_SIGN);
                let referrer = attach_to_index(g, &bundle);
                let manifest: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(synth::blob_path(&g.dir, &referrer)).unwrap(),
                )
                .unwrap();
                let layer = manifest["layers"][0]["digest"].as_str().unwrap();
                let path = synth::blob_path(&g.dir, layer);
                let mut bytes = std::fs::read(&path).unwrap();
                let at = bytes.len() / 2;
                bytes[at] ^= 1;
                std::fs::write(path, bytes).unwrap();
            }),
            vec!["--key", &key],
            vec![
                "referrer of {index}: blob sha256:",
                ": digest mismatch: content hashes to sha256:",
                &untried,
            ],
        ),
    ];

    let mut wrong = Vec::new();
    for (i, (name, make, flags, expected)) in cases.iter().enumerate() {
        let g = layout(&w.path(&format!("case-{i}")), 20 + i as u64);
        make(&g);
        let mut flags = flags.clone();
        flags.push("--require-signature");
        let run = w.publish(&g.dir, &site, &flags);
        assert_eq!(run.code, 3, "{name}: {}{}", run.stdout, run.stderr);
        let missing: Vec<String> = expected
            .iter()
            .map(|e| {
                e.replace("{index}", &g.index_digest)
                    .replace("{m0}", &g.manifests[0])
            })
            .chain(["image signed:v1".to_string()])
            .filter(|e| !run.stderr.contains(e.as_str()))
            .collect();
        if !missing.is_empty() {
            wrong.push(format!("{name}: missing {missing:?} in:\n{}", run.stderr));
        }
        assert!(snapshot(&site) == before, "{name}: the site changed");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn the_real_golden_layout_is_refused_unsigned_and_publishes_when_optional() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let key = tmp.path().join("cosign.pub");
    Signer::key().write_public(&key);
    let golden = fixture("apko/golden");
    let refused = regpress(&[
        "publish",
        &s(&golden),
        "--repo",
        "golden",
        "--tag",
        "v1",
        "--to",
        &s(&site),
        "--require-signature",
        "--key",
        &s(&key),
    ]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("unsigned"), "{}", refused.stderr);
    assert!(!site.exists());
    // Signers but no requirement: an unsigned image publishes.
    regpress(&[
        "publish",
        &s(&golden),
        "--repo",
        "golden",
        "--tag",
        "v1",
        "--to",
        &s(&site),
        "--key",
        &s(&key),
        "-q",
    ])
    .ok();
}

/// A registry never forgets a referrer because a later push did not repeat it: re-publishing
/// the same digest without its signature (a nightly rebuild, a re-tag from another workflow)
/// keeps the signature in the subject's referrers index, a second signature joins the first,
/// and the `sha256-<hex>` fallback tag always holds the same index byte for byte.
#[test]
fn referrers_accumulate_across_publishes_and_the_fallback_tag_follows() {
    let w = World::new();
    let g = layout(&w.path("layout"), 7);
    let site = w.path("site");
    let sidecar = |name: &str, signer: &Signer| {
        let path = w.path(name);
        let bundle = w.sigstore.blob_bundle(signer, &g.index_bytes);
        std::fs::write(&path, bundle.to_string()).unwrap();
        s(&path)
    };
    let (first, second) = (Signer::key(), Signer::key());
    let (key1, key2) = (
        w.key_file(&first, "one.pub"),
        w.key_file(&second, "two.pub"),
    );
    let (bundle1, bundle2) = (
        sidecar("one.sigstore.json", &first),
        sidecar("two.sigstore.json", &second),
    );
    let hex = g.index_digest.trim_start_matches("sha256:").to_string();
    let listed = || {
        let server = Server::start(&site);
        let (_, index) = get_json(&server, &format!("/v2/signed/referrers/{}", g.index_digest));
        let (_, fallback) = get_json(&server, &format!("/v2/signed/manifests/sha256-{hex}"));
        assert_eq!(fallback, index, "the fallback tag is the referrers index");
        let raw = |path: &str| {
            reqwest::blocking::get(server.url(path))
                .unwrap()
                .bytes()
                .unwrap()
        };
        assert_eq!(
            raw(&format!("/v2/signed/manifests/sha256-{hex}")),
            raw(&format!("/v2/signed/referrers/{}", g.index_digest))
        );
        let digests: Vec<String> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string())
            .collect();
        digests
    };

    w.publish(&g.dir, &site, &["--key", &key1, "--bundle", &bundle1])
        .ok();
    let signed = listed();
    assert_eq!(signed.len(), 1, "the first signature");

    // The same digest again, from a run that carries no signature.
    w.publish(&g.dir, &site, &[]).ok();
    assert_eq!(listed(), signed, "the signature stays listed");

    // Another signature: listed beside the first.
    w.publish(&g.dir, &site, &["--key", &key2, "--bundle", &bundle2])
        .ok();
    let both = listed();
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&signed[0]));

    // Nothing to merge on a no-op re-publish: nothing is written.
    let report_path = w.path("report.json");
    w.publish(&g.dir, &site, &["--report", &s(&report_path)])
        .ok();
    assert_eq!(report(&report_path)["objects_written"], 0);
    assert_eq!(listed(), both);
}
