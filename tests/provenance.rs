//! The provenance gate end to end: SLSA provenance statements (v1 and v0.2) generated here,
//! signed in DSSE bundles by the test Sigstore (keyless certificates with GitHub's Fulcio
//! extensions, and keys), attached as OCI referrers, legacy `.att` images and sidecar bundles.
//! A provenance naming the configured builder, source and ref publishes and is reported (verify
//! and publish reports, the Action summary, the publish event); every variant that does not is
//! refused by a real publish, naming the field, with the target left untouched.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use common::signing::{
    IDENTITY, ISSUER, Signer, Validity, World, attach_legacy_attestation, attach_to_index,
    attach_to_manifest, statement,
};
use common::synth::{self, Flavor, Generated, Layer};
use common::{Run, Server, regpress, report, s, snapshot};
use serde_json::{Value, json};

const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const REPO: &str = "https://github.com/acme/images";
const MAIN: &str = "refs/heads/main";
const COMMIT: &str = "5b1c7a0d6f1e2c3b4a5968778695a4b3c2d1e0f9";
/// GitHub's build type and builder for `actions/attest-build-provenance`.
const BUILD_TYPE: &str = "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1";
const GITHUB_HOSTED: &str = "https://github.com/actions/runner/github-hosted";
const GENERATOR: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0";

/// A small two-platform apko-shaped layout in `dir`.
fn layout(dir: &Path, seed: u64) -> Generated {
    let base = vec![Layer::new(seed, 3_000)];
    synth::apko_layout(
        dir,
        &synth::Image {
            name: "built",
            seed,
            base: &base,
            app_size: 2_000,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    )
}

/// What a build says of itself.
#[derive(Clone)]
struct Build<'a> {
    builder: &'a str,
    repo: &'a str,
    git_ref: &'a str,
    workflow: &'a str,
}

const RELEASE: Build = Build {
    builder: GITHUB_HOSTED,
    repo: REPO,
    git_ref: MAIN,
    workflow: ".github/workflows/release.yml",
};

/// An SLSA v1 predicate as GitHub's `actions/attest-build-provenance` writes it.
fn v1(b: &Build) -> Value {
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {"workflow": {
                "ref": b.git_ref, "repository": b.repo, "path": b.workflow}},
            "internalParameters": {"github": {"event_name": "push", "repository_id": "1"}},
            "resolvedDependencies": [{
                "uri": format!("git+{}@{}", b.repo, b.git_ref),
                "digest": {"gitCommit": COMMIT}}]
        },
        "runDetails": {
            "builder": {"id": b.builder},
            "metadata": {"invocationId": "https://github.com/acme/images/actions/runs/42/attempts/1"}
        }
    })
}

/// An SLSA v0.2 predicate as slsa-github-generator's container workflow writes it.
fn v02(b: &Build) -> Value {
    json!({
        "builder": {"id": b.builder},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
        "invocation": {
            "configSource": {
                "uri": format!("git+{}@{}", b.repo, b.git_ref),
                "digest": {"sha1": COMMIT},
                "entryPoint": b.workflow},
            "parameters": {}},
        "metadata": {"buildInvocationId": "42-1", "completeness": {"parameters": true}}
    })
}

impl World {
    /// The release workflow's keyless signer, its certificate carrying GitHub's Fulcio
    /// extensions for `repo`, `git_ref` and the commit.
    fn github(&self, identity: &str, repo: &str, git_ref: &str) -> Signer {
        self.sigstore.keyless_with(
            identity,
            ISSUER,
            Validity::CURRENT,
            &[(12, repo), (13, COMMIT), (14, git_ref)],
        )
    }

    /// A v0.3 bundle of a provenance (`predicate_type`, `predicate`) about `subjects`.
    fn provenance(
        &self,
        signer: &Signer,
        subjects: &[&str],
        predicate_type: &str,
        predicate: Value,
    ) -> Value {
        self.sigstore
            .statement_bundle(signer, &statement(subjects, predicate_type, predicate))
    }

    /// `publish LAYOUT --repo built --tag v1 --to SITE`, the trusted root, and `flags`.
    fn publish(&self, layout: &Path, site: &Path, flags: &[&str]) -> Run {
        let mut args = vec![
            "publish",
            layout.to_str().unwrap(),
            "--repo",
            "built",
            "--tag",
            "v1",
            "--to",
            site.to_str().unwrap(),
            "--trusted-root",
            self.root.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        regpress(&args)
    }
}

/// The policy of the release pipeline: keyless signer, builder, source and ref.
const POLICY: [&str; 11] = [
    "--certificate-identity",
    IDENTITY,
    "--certificate-oidc-issuer",
    ISSUER,
    "--require-provenance",
    "--builder-id",
    GITHUB_HOSTED,
    "--source-repository",
    "git+https://github.com/acme/images",
    "--source-ref",
    "refs/heads/main",
];

/// One HTTP request received on a loopback socket, answered 200: the body of the first POST.
fn receive_one() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length || n == 0 {
                    stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .unwrap();
                    return buf[end + 4..].to_vec();
                }
            }
            assert!(n > 0, "connection closed early");
        }
    });
    (url, handle)
}

#[test]
fn a_provenance_naming_the_configured_builder_source_and_ref_publishes_and_is_reported() {
    let w = World::new();
    let g = layout(&w.path("layout"), 1);
    let signer = w.github(IDENTITY, REPO, MAIN);
    let bundle = w.provenance(&signer, &[&g.index_digest], SLSA_V1, v1(&RELEASE));
    let referrer = attach_to_index(&g, &bundle);
    let site = w.path("site");
    let report_path = w.path("report.json");
    let (url, received) = receive_one();
    let mut flags = POLICY.to_vec();
    let report_arg = s(&report_path);
    flags.extend([
        "--external-parameter",
        "workflow.path=.github/workflows/release.yml",
        "--report",
        report_arg.as_str(),
        "--events-url",
        url.as_str(),
    ]);
    w.publish(&g.dir, &site, &flags).ok();

    // The publish report names what the provenance says and who signed it.
    let published = report(&report_path);
    let p = &published["images"][0]["provenance"][0];
    assert_eq!(p["predicate_type"], SLSA_V1, "{published}");
    assert_eq!(p["builder_id"], GITHUB_HOSTED);
    assert_eq!(p["build_type"], BUILD_TYPE);
    assert_eq!(p["source_repository"], "git+https://github.com/acme/images");
    assert_eq!(p["source_ref"], MAIN);
    assert_eq!(p["revision"], COMMIT);
    assert_eq!(
        p["invocation_id"],
        "https://github.com/acme/images/actions/runs/42/attempts/1"
    );
    assert_eq!(
        p["external_parameters"]["workflow"]["path"],
        RELEASE.workflow
    );
    assert_eq!(
        p["signer"],
        format!("identity {IDENTITY} (issuer {ISSUER})")
    );
    assert_eq!(p["subjects"], json!([g.index_digest]));
    assert_eq!(p["attachment"], referrer.as_str());
    assert_eq!(p["policy"], true);

    // The publish event carries it.
    let event: Value = serde_json::from_slice(&received.join().unwrap()).unwrap();
    assert_eq!(event["data"]["provenance"]["verified"], true, "{event}");
    assert_eq!(
        event["data"]["provenance"]["statements"][0]["builder_id"],
        GITHUB_HOSTED
    );

    // So does the Action's job summary.
    let summary = regpress(&["summarize", "--report", &report_arg]);
    summary.ok();
    let cell =
        format!("| ✅ git+https://github.com/acme/images@refs/heads/main by {GITHUB_HOSTED} |");
    assert!(summary.stdout.contains(&cell), "{}", summary.stdout);

    // And verify, on the human lines and in its report.
    let verify_report = w.path("verify.json");
    let mut args = vec![
        "verify",
        g.dir.to_str().unwrap(),
        "--trusted-root",
        w.root.to_str().unwrap(),
    ];
    let vr = s(&verify_report);
    args.extend_from_slice(&POLICY);
    args.extend(["--report", vr.as_str()]);
    let verified = regpress(&args);
    verified.ok();
    let line = format!(
        "  provenance git+https://github.com/acme/images@refs/heads/main ({COMMIT}) built by \
         {GITHUB_HOSTED}, signed by identity {IDENTITY}"
    );
    assert!(verified.stdout.contains(&line), "{}", verified.stdout);
    assert_eq!(
        report(&verify_report)["images"][0]["provenance"],
        published["images"][0]["provenance"]
    );

    // The provenance is published as a referrer of the index.
    let server = Server::start(&site);
    let listed: Value =
        reqwest::blocking::get(server.url(&format!("/v2/built/referrers/{}", g.index_digest)))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(
        listed["manifests"][0]["digest"],
        referrer.as_str(),
        "{listed}"
    );
}

#[test]
fn v02_sidecars_and_legacy_att_images_publish_under_the_config_and_per_image_policy() {
    let w = World::new();
    let key = Signer::key();
    key.write_public(&w.path("cosign.pub"));
    // acme/a: SLSA v0.2 from slsa-github-generator, as a sidecar bundle over index.json.
    let a = layout(&w.path("a"), 2);
    let generator = Build {
        builder: GENERATOR,
        ..RELEASE
    };
    let sidecar = w.provenance(&key, &[&a.index_digest], SLSA_V02, v02(&generator));
    std::fs::write(w.path("a.intoto.sigstore.json"), sidecar.to_string()).unwrap();
    // acme/b: SLSA v1 from the release workflow on a tag, as a legacy cosign `.att` image.
    let b = layout(&w.path("b"), 3);
    let tagged = Build {
        git_ref: "refs/tags/v1.2.0",
        ..RELEASE
    };
    let (envelope, annotations) = w
        .sigstore
        .legacy_attestation(&key, &statement(&[&b.index_digest], SLSA_V1, v1(&tagged)));
    let att = attach_legacy_attestation(&b.dir, &envelope, &annotations);

    let config = |b_override: &str| {
        format!(
            r#"
[target]
to = "site"
[signatures]
trusted_root = "trusted_root.json"
[[signatures.signer]]
key = "cosign.pub"
[provenance]
require = true
builder_id = ["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v*",
              "https://github.com/actions/runner/github-hosted"]
source_repository = "https://github.com/acme/images"
source_ref = "refs/heads/main"
[[image]]
layout = "a"
repository = "acme/a"
tags = ["v1"]
bundles = ["a.intoto.sigstore.json"]
[[image]]
layout = "b"
repository = "acme/b"
tags = ["v1.2.0"]
{b_override}
"#
        )
    };
    // Under the global policy alone, b's tag build is refused by its ref.
    std::fs::write(w.path("strict.toml"), config("")).unwrap();
    let strict = regpress(&["publish", "--config", &s(&w.path("strict.toml"))]);
    assert_eq!(strict.code, 3, "{}{}", strict.stdout, strict.stderr);
    let wanted = format!(
        "image acme/b:v1.2.0: {att}: provenance of {}: source_ref: the provenance says \
         \"refs/tags/v1.2.0\", the policy wants \"refs/heads/main\" (signed by key ",
        b.index_digest
    );
    assert!(strict.stderr.contains(&wanted), "{}", strict.stderr);
    assert!(!w.path("site").exists(), "a refused publish wrote the site");

    // b's own table accepts release tags; the rest of the policy still applies to it.
    let path = w.path("regpress.toml");
    std::fs::write(
        &path,
        config("[image.provenance]\nsource_ref = \"refs/tags/v*\""),
    )
    .unwrap();
    let report_path = w.path("report.json");
    regpress(&[
        "publish",
        "--config",
        &s(&path),
        "--report",
        &s(&report_path),
    ])
    .ok();
    let published = report(&report_path);
    let pa = &published["images"][0]["provenance"][0];
    assert_eq!(pa["predicate_type"], SLSA_V02, "{published}");
    assert_eq!(pa["builder_id"], GENERATOR);
    assert_eq!(pa["source_ref"], MAIN);
    assert_eq!(pa["revision"], COMMIT);
    assert_eq!(pa["invocation_id"], "42-1");
    let pb = &published["images"][1]["provenance"][0];
    assert_eq!(pb["predicate_type"], SLSA_V1);
    assert_eq!(pb["source_ref"], "refs/tags/v1.2.0");
    assert_eq!(pb["attachment"], att.as_str());
    assert!(pb["signer"].as_str().unwrap().starts_with("key "), "{pb}");

    // The `.att` image is served under its tag, byte for byte.
    let server = Server::start(&w.path("site"));
    let hex = b.index_digest.trim_start_matches("sha256:");
    let served =
        reqwest::blocking::get(server.url(&format!("/v2/acme/b/manifests/sha256-{hex}.att")))
            .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.bytes().unwrap().as_ref(),
        std::fs::read(synth::blob_path(&b.dir, &att)).unwrap()
    );
}

#[test]
fn per_platform_provenance_must_name_every_platform_manifest() {
    let w = World::new();
    let signer = w.github(IDENTITY, REPO, MAIN);
    let mut flags = POLICY.to_vec();
    flags.push("--provenance-per-platform");

    // A provenance of the index alone: each platform manifest is refused by name.
    let g = layout(&w.path("index-only"), 4);
    attach_to_index(
        &g,
        &w.provenance(&signer, &[&g.index_digest], SLSA_V1, v1(&RELEASE)),
    );
    let site = w.path("site");
    let run = w.publish(&g.dir, &site, &flags);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    for (arch, digest) in ["amd64", "arm64"].iter().zip(&g.manifests) {
        let wanted = format!(
            "{digest}: no provenance: provenance is required for every platform, and no verified \
             SLSA provenance ({SLSA_V1} or {SLSA_V02}) names the linux/{arch} manifest {digest}"
        );
        assert!(run.stderr.contains(&wanted), "{wanted}\n{}", run.stderr);
    }
    assert!(!site.exists(), "a refused publish wrote the site");
    // Without per-platform, the same layout publishes.
    w.publish(&g.dir, &site, &POLICY).ok();

    // One provenance per platform manifest, each attached to it.
    let each = layout(&w.path("each"), 5);
    for m in &each.manifests {
        attach_to_manifest(
            &each,
            m,
            &w.provenance(&signer, &[m], SLSA_V1, v1(&RELEASE)),
        );
    }
    w.publish(&each.dir, &w.path("site-each"), &flags).ok();

    // One provenance naming the index and every platform (slsa-github-generator's shape).
    let all = layout(&w.path("all"), 6);
    let mut subjects = vec![all.index_digest.as_str()];
    subjects.extend(all.manifests.iter().map(String::as_str));
    attach_to_index(
        &all,
        &w.provenance(&signer, &subjects, SLSA_V1, v1(&RELEASE)),
    );
    let report_path = w.path("all.json");
    let mut with_report = flags.clone();
    let r = s(&report_path);
    with_report.extend(["--report", r.as_str()]);
    w.publish(&all.dir, &w.path("site-all"), &with_report).ok();
    let named = &report(&report_path)["images"][0]["provenance"][0]["subjects"];
    assert_eq!(named.as_array().unwrap().len(), 3, "{named}");
}

/// How a case makes its layout's provenance.
type Make<'a> = Box<dyn Fn(&Generated) + 'a>;

/// A v1 provenance of `build` about the index, signed by `signer`, attached to the index.
fn v1_on_index<'a>(w: &'a World, signer: &'a Signer, build: &'a Build<'a>) -> Make<'a> {
    Box::new(move |g: &Generated| {
        attach_to_index(
            g,
            &w.provenance(signer, &[&g.index_digest], SLSA_V1, v1(build)),
        );
    })
}

#[test]
fn every_provenance_that_does_not_match_is_refused_naming_the_field_and_nothing_is_written() {
    let w = World::new();
    let site = w.path("site");
    // A good publish first, so that the target exists and can be seen to stay as it was.
    let good = layout(&w.path("good"), 10);
    let signer = w.github(IDENTITY, REPO, MAIN);
    attach_to_index(
        &good,
        &w.provenance(&signer, &[&good.index_digest], SLSA_V1, v1(&RELEASE)),
    );
    w.publish(&good.dir, &site, &POLICY).ok();
    let before = snapshot(&site);
    assert!(!before.is_empty());

    let evil_workflow =
        "https://github.com/evil/images/.github/workflows/release.yml@refs/heads/main";
    let signed_by = format!("(signed by identity {IDENTITY} (issuer {ISSUER}))");
    let other = synth::digest_of(b"another image");
    let v1_on_index = |signer, build| v1_on_index(&w, signer, build);
    let acme_dev = w.github(IDENTITY, REPO, "refs/heads/dev");
    let evil_repo = w.github(IDENTITY, "https://github.com/evil/images", MAIN);
    let evil_identity = w.github(evil_workflow, REPO, MAIN);
    let key = Signer::key();
    let key_file = w.path("cosign.pub");
    key.write_public(&key_file);
    let key_arg = s(&key_file);
    let dev = Build {
        git_ref: "refs/heads/dev",
        ..RELEASE
    };
    let evil_source = Build {
        repo: "https://github.com/evil/images",
        ..RELEASE
    };
    let self_hosted = "https://github.com/actions/runner/self-hosted";
    let evil_builder = Build {
        builder: self_hosted,
        ..RELEASE
    };
    let other_workflow = Build {
        workflow: ".github/workflows/debug.yml",
        ..RELEASE
    };
    let cases: Vec<(&str, Make, Vec<&str>, Vec<String>)> = vec![
        (
            "wrong builder",
            v1_on_index(&signer, &evil_builder),
            vec![],
            vec![
                format!(
                    "provenance of {{index}}: builder_id: the provenance says \"{self_hosted}\", \
                     the policy wants \"{GITHUB_HOSTED}\""
                ),
                signed_by.clone(),
            ],
        ),
        (
            "wrong source",
            v1_on_index(&evil_repo, &evil_source),
            vec![],
            vec![
                "source_repository: the provenance says \"git+https://github.com/evil/images\", \
                 the policy wants \"git+https://github.com/acme/images\""
                    .to_string(),
                signed_by.clone(),
            ],
        ),
        (
            "wrong ref",
            v1_on_index(&acme_dev, &dev),
            vec![],
            vec![
                "source_ref: the provenance says \"refs/heads/dev\", the policy wants \
                 \"refs/heads/main\""
                    .to_string(),
            ],
        ),
        (
            "wrong subject",
            Box::new(|g: &Generated| {
                attach_to_index(g, &w.provenance(&signer, &[&other], SLSA_V1, v1(&RELEASE)));
            }),
            vec![],
            vec![format!(
                "referrer of {{index}}: subject: the provenance names {other}, the policy \
                 wants {{index}} (the published digest it is attached to)"
            )],
        ),
        (
            "unsigned: no provenance at all",
            Box::new(|_: &Generated| {}),
            vec![],
            vec![
                "{index}: no provenance: provenance is required, and no verified SLSA provenance"
                    .to_string(),
                "names the image index {index}".to_string(),
            ],
        ),
        (
            "signed by an identity the trust policy does not accept",
            v1_on_index(&evil_identity, &RELEASE),
            vec![],
            vec![
                "referrer of {index}: ".to_string(),
                format!("identity {IDENTITY} (issuer {ISSUER}): "),
                "mismatch".to_string(),
            ],
        ),
        (
            "a source the signer's workflow never ran in (certificate: evil/images)",
            v1_on_index(&evil_repo, &RELEASE),
            vec![],
            vec![
                "source_repository: the provenance says \"git+https://github.com/acme/images\", \
                 but its signer's certificate says \"https://github.com/evil/images\" (Fulcio \
                 extension 1.3.6.1.4.1.57264.1.12)"
                    .to_string(),
            ],
        ),
        (
            "a ref the signer's workflow never ran on (certificate: refs/heads/dev)",
            v1_on_index(&acme_dev, &RELEASE),
            vec![],
            vec![
                "source_ref: the provenance says \"refs/heads/main\", but its signer's \
                 certificate says \"refs/heads/dev\" (Fulcio extension 1.3.6.1.4.1.57264.1.14)"
                    .to_string(),
            ],
        ),
        (
            "v0.2 from another builder",
            Box::new(|g: &Generated| {
                let generator = Build {
                    builder: GENERATOR,
                    ..RELEASE
                };
                attach_to_index(
                    g,
                    &w.provenance(&signer, &[&g.index_digest], SLSA_V02, v02(&generator)),
                );
            }),
            vec![],
            vec![format!(
                "builder_id: the provenance says \"{GENERATOR}\", the policy wants \
                 \"{GITHUB_HOSTED}\""
            )],
        ),
        (
            "another workflow file",
            v1_on_index(&signer, &other_workflow),
            vec![
                "--external-parameter",
                "workflow.path=.github/workflows/release.yml",
            ],
            vec![
                "external_parameters.workflow.path: the provenance says \
                 \".github/workflows/debug.yml\", the policy wants \
                 \".github/workflows/release.yml\""
                    .to_string(),
            ],
        ),
        (
            "legacy .att image from another ref",
            Box::new(|g: &Generated| {
                let statement = statement(&[&g.index_digest], SLSA_V1, v1(&dev));
                let (envelope, annotations) = w.sigstore.legacy_attestation(&key, &statement);
                attach_legacy_attestation(&g.dir, &envelope, &annotations);
            }),
            vec!["--key", key_arg.as_str()],
            vec![
                "provenance of {index}: source_ref: the provenance says \"refs/heads/dev\", the policy wants \
                 \"refs/heads/main\" (signed by key "
                    .to_string(),
            ],
        ),
        (
            "sidecar bundle from another builder",
            Box::new(|g: &Generated| {
                let bundle = w.provenance(&signer, &[&g.index_digest], SLSA_V1, v1(&evil_builder));
                std::fs::write(
                    g.dir.join("index.json.intoto.sigstore.json"),
                    bundle.to_string(),
                )
                .unwrap();
            }),
            vec!["--bundle", "SIDECAR"],
            vec![format!(
                "builder_id: the provenance says \"{self_hosted}\", the policy wants \
                 \"{GITHUB_HOSTED}\""
            )],
        ),
    ];

    let mut wrong = Vec::new();
    for (i, (name, make, extra, expected)) in cases.iter().enumerate() {
        let g = layout(&w.path(&format!("case-{i}")), 20 + i as u64);
        make(&g);
        let sidecar = s(&g.dir.join("index.json.intoto.sigstore.json"));
        let mut flags = POLICY.to_vec();
        flags.extend(
            extra
                .iter()
                .map(|f| if *f == "SIDECAR" { sidecar.as_str() } else { f }),
        );
        let run = w.publish(&g.dir, &site, &flags);
        assert_eq!(run.code, 3, "{name}: {}{}", run.stdout, run.stderr);
        let missing: Vec<String> = expected
            .iter()
            .map(|e| e.replace("{index}", &g.index_digest))
            .chain(["image built:v1".to_string()])
            .filter(|e| !run.stderr.contains(e.as_str()))
            .collect();
        if !missing.is_empty() {
            wrong.push(format!("{name}: missing {missing:?} in:\n{}", run.stderr));
        }
        assert!(snapshot(&site) == before, "{name}: the target changed");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn a_provenance_policy_without_signers_is_a_usage_error() {
    let w = World::new();
    let g = layout(&w.path("layout"), 7);
    let site = w.path("site");
    let run = w.publish(&g.dir, &site, &["--require-provenance"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("a provenance policy is set, but no signer is accepted"),
        "{}",
        run.stderr
    );
    assert!(!site.exists());
}
