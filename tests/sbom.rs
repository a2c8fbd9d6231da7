//! SBOMs end to end through the binary: the real apko golden layout verifies and publishes with
//! its SBOMs; images without SBOMs, and every broken SBOM variant (generated here from the
//! golden SBOMs), are refused under the policy that forbids them, naming the file and the
//! reason, and a refused publish writes nothing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use common::signing::{self, Signer, TestSigstore};
use common::synth::{blob_path, digest_of, sha256_hex};
use common::{Run, Server, copy_dir, fixture, platforms_of, regpress, report, s, snapshot};

const INDEX: &str = "sha256:b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";
const AMD64: &str = "sha256:69f0237c7f8cf0b8a329d1bf1d6870c870c4ec323e39d3a6da59596632d0f2f4";
const ARM64: &str = "sha256:124c885f834cfaf1329987457a9651a68c4fb9733d4462ae6288b98011277858";
/// The strictest SBOM policy: required, per platform, every NTIA element.
const STRICT: [&str; 5] = [
    "--sbom",
    "required",
    "--sbom-per-platform",
    "--ntia",
    "require",
];

/// A copy of the golden layout (with its `sboms/`) under `dir`.
fn golden_copy(dir: &Path) -> PathBuf {
    let to = dir.join("golden");
    copy_dir(&fixture("apko/golden"), &to);
    to
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut doc = read_json(path);
    edit(&mut doc);
    fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

fn verify(layout: &Path, extra: &[&str]) -> Run {
    let layout = s(layout);
    let mut args = vec!["verify", layout.as_str()];
    args.extend_from_slice(extra);
    regpress(&args)
}

fn publish(layout: &Path, site: &Path, extra: &[&str]) -> Run {
    common::publish_as_golden(layout, site, extra)
}

#[track_caller]
fn refused(run: &Run, reasons: &[&str]) {
    assert_eq!(
        run.code, 3,
        "expected a verification failure:\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    for reason in reasons {
        assert!(
            run.stderr.contains(reason),
            "missing {reason:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn the_golden_layout_verifies_and_publishes_with_its_sboms() {
    let tmp = tempfile::tempdir().unwrap();
    let golden = fixture("apko/golden");
    let rep = tmp.path().join("verify.json");
    let mut args = STRICT.to_vec();
    let rep_arg = s(&rep);
    args.extend(["--report", &rep_arg]);
    let out = verify(&golden, &args);
    out.ok();
    assert!(out.stdout.contains("3 SBOMs"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "sbom linux/amd64 {AMD64}: {}",
            golden.join("sboms/sbom-x86_64.spdx.json").display()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(SPDX-2.3, 7 packages, NTIA complete)"));

    let r = report(&rep);
    assert_eq!(r["sbom_policy"]["policy"], "required");
    let image = &r["images"][0];
    assert_eq!(image["digest"], INDEX);
    let sboms = image["sboms"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64)> = sboms
        .iter()
        .map(|b| {
            (
                b["subject"].as_str().unwrap(),
                b["platform"].as_str().unwrap_or("-"),
                b["packages"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (INDEX, "-", 3),
            (AMD64, "linux/amd64", 7),
            (ARM64, "linux/arm64", 7)
        ]
    );
    for b in sboms {
        let bytes = fs::read(b["path"].as_str().unwrap()).unwrap();
        assert_eq!(b["digest"], digest_of(&bytes));
        assert_eq!(b["size"], bytes.len());
        assert_eq!(b["media_type"], "application/spdx+json");
        assert_eq!(b["format"], "spdx");
        assert_eq!(b["ntia"], "pass");
        assert_eq!(b["ntia_missing"], json!([]));
    }

    // publish applies the same policy and lists the SBOMs in its report.
    let site = tmp.path().join("site");
    let pub_rep = tmp.path().join("publish.json");
    let mut args = STRICT.to_vec();
    let pub_arg = s(&pub_rep);
    args.extend(["--report", &pub_arg]);
    publish(&golden, &site, &args).ok();
    let r = report(&pub_rep);
    assert_eq!(r["sboms"].as_array().unwrap().len(), 3);
    assert_eq!(r["sboms"][0]["image"], "apko/golden:latest");
    assert_eq!(r["tags"][0]["digest"], INDEX);
}

#[test]
fn a_config_names_the_sbom_directory_and_the_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = golden_copy(tmp.path());
    fs::rename(layout.join("sboms"), tmp.path().join("built-sboms")).unwrap();
    let config = tmp.path().join("regpress.toml");
    let write = |sboms: &str| {
        fs::write(
            &config,
            format!(
                "[target]\nto = \"site\"\n[sbom]\npolicy = \"required\"\nper_platform = true\nntia = \"require\"\n\
                 [[image]]\nlayout = \"golden\"\nrepository = \"apko/golden\"\ntags = [\"latest\"]\n{sboms}"
            ),
        )
        .unwrap();
    };
    // Moved away from the layout, the SBOMs are not found and the policy refuses the image.
    write("");
    let out = regpress(&["verify", "--config", &s(&config)]);
    refused(&out, &["no SBOM found (SBOM policy: required)", INDEX]);
    // Named in the config (relative to it), they are; the CLI can still relax the policy.
    write("sboms = \"built-sboms\"\n");
    let out = regpress(&["verify", "--config", &s(&config)]);
    out.ok();
    assert!(out.stdout.contains("3 SBOMs"), "{}", out.stdout);
    regpress(&["publish", "--config", &s(&config), "-q"]).ok();
    assert!(tmp.path().join("site/v2/_catalog").exists());
}

#[test]
fn an_image_without_sboms_fails_only_when_required() {
    let tmp = tempfile::tempdir().unwrap();
    let top = fixture("apko/top_image");
    let out = verify(&top, &["--sbom", "required"]);
    refused(
        &out,
        &[
            "top_image",
            "no SBOM found (SBOM policy: required)",
            "top_image/sboms",
        ],
    );
    let site = tmp.path().join("site");
    refused(
        &publish(&top, &site, &["--sbom", "required"]),
        &["no SBOM found"],
    );
    assert!(snapshot(&site).is_empty(), "a refused publish wrote files");

    let out = verify(&top, &[]);
    out.ok();
    assert!(out.stdout.contains("0 SBOMs"), "{}", out.stdout);
    publish(&top, &site, &["--sbom", "optional", "-q"]).ok();
}

/// A way to break the golden layout's SBOMs, the flags that make it fatal, and what the
/// refusal must say.
struct Variant {
    name: &'static str,
    breaks: fn(&Path),
    flags: &'static [&'static str],
    reasons: &'static [&'static str],
}

fn sboms(layout: &Path) -> PathBuf {
    layout.join("sboms")
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "another digest",
        breaks: |l| {
            fs::copy(
                sboms(l).join("sbom-aarch64.spdx.json"),
                sboms(l).join("sbom-x86_64.spdx.json"),
            )
            .unwrap();
        },
        flags: &[],
        reasons: &[
            "sbom-x86_64.spdx.json: describes sha256:124c885f",
            "but the linux/amd64 manifest sha256:69f0237c",
        ],
    },
    Variant {
        name: "truncated",
        breaks: |l| {
            let p = sboms(l).join("sbom-index.spdx.json");
            let bytes = fs::read(&p).unwrap();
            fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        },
        flags: &[],
        reasons: &["sbom-index.spdx.json: not valid JSON (truncated?)"],
    },
    Variant {
        name: "garbage",
        breaks: |l| {
            fs::write(
                sboms(l).join("sbom-aarch64.spdx.json"),
                b"\x00\x01PK garbage",
            )
            .unwrap()
        },
        flags: &[],
        reasons: &["sbom-aarch64.spdx.json: not valid JSON"],
    },
    Variant {
        name: "missing required fields",
        breaks: |l| {
            edit_json(&sboms(l).join("sbom-x86_64.spdx.json"), |d| {
                d.as_object_mut().unwrap().remove("creationInfo");
                d["packages"][3].as_object_mut().unwrap().remove("name");
            })
        },
        flags: &[],
        reasons: &[
            "sbom-x86_64.spdx.json: does not match the SPDX 2.3 schema",
            "at /: \"creationInfo\" is a required property",
            "at /packages/3: \"name\" is a required property",
        ],
    },
    Variant {
        name: "dangling relationship",
        breaks: |l| {
            edit_json(&sboms(l).join("sbom-index.spdx.json"), |d| {
                d["relationships"][1]["relatedSpdxElement"] = json!("SPDXRef-Package-sha256-gone");
            })
        },
        flags: &[],
        reasons: &["\"SPDXRef-Package-sha256-gone\" is not an element of this document"],
    },
    Variant {
        name: "NTIA elements missing under require",
        breaks: |l| {
            edit_json(&sboms(l).join("sbom-x86_64.spdx.json"), |d| {
                d["packages"][5].as_object_mut().unwrap().remove("supplier");
            })
        },
        flags: &["--ntia", "require"],
        reasons: &[
            AMD64,
            "sbom-x86_64.spdx.json: NTIA minimum elements missing: supplier (package \"replayout\" (SPDXRef-Package-apk-replayout-1.0.0-r0))",
        ],
    },
    Variant {
        name: "a platform without its SBOM",
        breaks: |l| fs::remove_file(sboms(l).join("sbom-aarch64.spdx.json")).unwrap(),
        flags: &["--sbom-per-platform"],
        reasons: &[
            ARM64,
            "the linux/arm64 manifest sha256:124c885f834cfaf1329987457a9651a68c4fb9733d4462ae6288b98011277858 has no SBOM of its own",
        ],
    },
    Variant {
        name: "an SPDX 2.2 document of something else",
        breaks: |l| {
            fs::copy(
                fixture("sbom/bom-go-mod.spdx.json"),
                sboms(l).join("go-mod.spdx.json"),
            )
            .unwrap();
        },
        flags: &[],
        reasons: &[
            "go-mod.spdx.json: describes no digest",
            "none of the image's digests",
        ],
    },
    Variant {
        name: "a CycloneDX BOM of something else",
        breaks: |l| {
            fs::copy(
                fixture("sbom/bom-go-mod.cyclonedx.json"),
                sboms(l).join("go-mod.cdx.json"),
            )
            .unwrap();
        },
        flags: &[],
        reasons: &["go-mod.cdx.json: describes no digest"],
    },
    Variant {
        name: "an unsupported CycloneDX version",
        breaks: |l| {
            let p = sboms(l).join("old.cdx.json");
            fs::copy(fixture("sbom/bom-go-mod.cyclonedx.json"), &p).unwrap();
            edit_json(&p, |d| d["specVersion"] = json!("1.2"));
        },
        flags: &[],
        reasons: &["old.cdx.json: CycloneDX specVersion \"1.2\" is not supported"],
    },
];

#[test]
fn every_bad_sbom_is_refused_with_its_reason_and_nothing_is_written() {
    for v in VARIANTS {
        let tmp = tempfile::tempdir().unwrap();
        let layout = golden_copy(tmp.path());
        (v.breaks)(&layout);
        let out = verify(&layout, v.flags);
        assert_eq!(out.code, 3, "{}: {}", v.name, out.stderr);
        refused(&out, v.reasons);
        assert!(out.stderr.contains("image index.json"), "{}", out.stderr);

        let site = tmp.path().join("site");
        let out = publish(&layout, &site, v.flags);
        refused(&out, v.reasons);
        assert!(out.stderr.contains("apko/golden:latest"), "{}", out.stderr);
        assert!(
            snapshot(&site).is_empty(),
            "{}: a refused publish wrote files",
            v.name
        );
    }
}

#[test]
fn ntia_gaps_warn_by_default_and_are_reported_where_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = golden_copy(tmp.path());
    edit_json(&sboms(&layout).join("sbom-x86_64.spdx.json"), |d| {
        d["packages"][3].as_object_mut().unwrap().remove("supplier");
        d["packages"][5]["versionInfo"] = json!("NOASSERTION");
    });
    let rep = tmp.path().join("r.json");
    let out = verify(&layout, &["--report", &s(&rep)]);
    out.ok();
    assert!(
        out.stderr.contains(
            "warning: image index.json: SBOM ") && out.stderr.contains(
            "sbom-x86_64.spdx.json: NTIA minimum elements missing: supplier (package \"pretend-baselayout\""
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("NTIA incomplete: supplier"),
        "{}",
        out.stdout
    );
    let r = report(&rep);
    let amd64 = &r["images"][0]["sboms"][1];
    assert_eq!(amd64["ntia"], "warn");
    assert_eq!(
        amd64["ntia_missing"],
        json!([
            {"element": "supplier", "at": "package \"pretend-baselayout\" (SPDXRef-Package-apk-pretend-baselayout-1.0.0-r0)"},
            {"element": "version", "at": "package \"replayout\" (SPDXRef-Package-apk-replayout-1.0.0-r0)"}
        ])
    );
    assert_eq!(r["images"][0]["sboms"][0]["ntia"], "pass");

    // A publish under `warn` goes ahead; `off` neither warns nor fails.
    let site = tmp.path().join("site");
    let out = publish(&layout, &site, &[]);
    out.ok();
    assert!(out.stderr.contains("warning:"), "{}", out.stderr);
    let out = verify(&layout, &["--ntia", "off", "--report", &s(&rep)]);
    out.ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(report(&rep)["images"][0]["sboms"][1]["ntia"], "off");
}

/// A CycloneDX BOM of the golden amd64 manifest, built on the cosign sample BOM with the
/// packages of apko's SPDX SBOM.
fn cyclonedx_of_amd64(spec_version: &str) -> Value {
    let spdx = read_json(&fixture("apko/golden/sboms/sbom-x86_64.spdx.json"));
    let mut bom = read_json(&fixture("sbom/bom-go-mod.cyclonedx.json"));
    let packages = spdx["packages"].as_array().unwrap();
    let components: Vec<Value> = packages[1..]
        .iter()
        .map(|p| {
            json!({
                "type": "library",
                "bom-ref": p["SPDXID"],
                "name": p["name"],
                "version": p["versionInfo"],
                "supplier": {"name": p["supplier"]},
                "purl": p["externalRefs"][0]["referenceLocator"].as_str().map_or_else(
                    || format!("pkg:generic/{}@{}", p["name"].as_str().unwrap(), p["versionInfo"].as_str().unwrap()),
                    String::from,
                ),
            })
        })
        .collect();
    bom["specVersion"] = json!(spec_version);
    bom["metadata"] = json!({
        "timestamp": "2024-05-01T10:00:00Z",
        "authors": [{"name": "Release team", "email": "release@example.com"}],
        "component": {
            "type": "container", "bom-ref": "image", "name": "golden", "version": AMD64,
            "supplier": {"name": "Chainguard"},
            "purl": format!("pkg:oci/golden@sha256%3A{}?arch=amd64", &AMD64[7..]),
            "hashes": [{"alg": "SHA-256", "content": &AMD64[7..]}]
        }
    });
    bom["dependencies"] = json!([{
        "ref": "image",
        "dependsOn": components.iter().map(|c| c["bom-ref"].clone()).collect::<Vec<_>>()
    }]);
    bom["components"] = Value::Array(components);
    bom
}

#[test]
fn cyclonedx_sboms_bind_by_content_in_every_supported_version() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = golden_copy(tmp.path());
    fs::remove_dir_all(sboms(&layout)).unwrap();
    for version in ["1.4", "1.5", "1.6"] {
        let dir = tmp.path().join(format!("cdx-{version}"));
        fs::create_dir_all(&dir).unwrap();
        let bom = serde_json::to_vec(&cyclonedx_of_amd64(version)).unwrap();
        fs::write(dir.join("image.cyclonedx.json"), &bom).unwrap();
        let rep = tmp.path().join("r.json");
        verify(
            &layout,
            &[
                "--sboms",
                &s(&dir),
                "--ntia",
                "require",
                "--report",
                &s(&rep),
            ],
        )
        .ok();
        let b = &report(&rep)["images"][0]["sboms"][0];
        assert_eq!(b["subject"], AMD64, "{version}");
        assert_eq!(b["platform"], "linux/amd64");
        assert_eq!(b["media_type"], "application/vnd.cyclonedx+json");
        assert_eq!(b["format"], "cyclonedx");
        assert_eq!(b["version"], format!("CycloneDX-{version}"));
        assert_eq!(b["packages"], 6);
        assert_eq!(b["ntia"], "pass");
        assert_eq!(b["digest"], format!("sha256:{}", sha256_hex(&bom)));
    }
    // Per platform, the arm64 manifest has none.
    let out = verify(
        &layout,
        &[
            "--sboms",
            &s(&tmp.path().join("cdx-1.6")),
            "--sbom-per-platform",
        ],
    );
    refused(
        &out,
        &["the linux/arm64 manifest", "has no SBOM of its own"],
    );
}

#[test]
fn sbom_flags_are_checked_as_usage() {
    let golden = fixture("apko/golden");
    let top = fixture("apko/top_image");
    let dir = s(&golden.join("sboms"));
    let out = regpress(&["verify", &s(&golden), &s(&top), "--sboms", &dir]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--sboms names the SBOMs of one LAYOUT"),
        "{}",
        out.stderr
    );
    for bad in [["--sbom", "always"], ["--ntia", "maybe"]] {
        let out = regpress(&["verify", &s(&golden), bad[0], bad[1]]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("possible values"), "{}", out.stderr);
    }
    let out = regpress(&["verify", &s(&golden), "--sboms", &s(&top)]);
    refused(
        &out,
        &["no *.spdx.json, *.cdx.json or *.cyclonedx.json files in it"],
    );
}

/// A signing world for SBOM attestations: a test Sigstore, its trusted root, a key.
struct Attesting {
    sigstore: TestSigstore,
    signer: Signer,
    flags: Vec<String>,
}

impl Attesting {
    fn new(dir: &Path) -> Attesting {
        let sigstore = TestSigstore::new();
        let root = dir.join("trusted_root.json");
        sigstore.write_trusted_root(&root);
        let signer = Signer::key();
        let key = dir.join("cosign.pub");
        signer.write_public(&key);
        Attesting {
            sigstore,
            signer,
            flags: vec!["--key".into(), s(&key), "--trusted-root".into(), s(&root)],
        }
    }

    /// Attest `predicate` (SPDX) about `subject`, attached as a referrer in `layout`.
    fn attest(&self, layout: &Path, subject: &str, predicate: Value) -> String {
        let bundle = self.sigstore.attestation(
            &self.signer,
            subject,
            "https://spdx.dev/Document",
            predicate,
        );
        let (media_type, size) = descriptor_of(layout, subject);
        signing::attach_bundle(layout, subject, media_type, size, &bundle)
    }

    /// `extra` and the signature flags.
    fn with<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = extra.to_vec();
        args.extend(self.flags.iter().map(String::as_str));
        args
    }
}

/// The media type and size of the golden layout's index (index.json) or a platform manifest.
fn descriptor_of(layout: &Path, digest: &str) -> (&'static str, usize) {
    if digest == INDEX {
        let size = fs::metadata(layout.join("index.json")).unwrap().len();
        ("application/vnd.oci.image.index.v1+json", size as usize)
    } else {
        let size = fs::metadata(blob_path(layout, digest)).unwrap().len();
        ("application/vnd.oci.image.manifest.v1+json", size as usize)
    }
}

fn golden_sbom(name: &str) -> Value {
    read_json(&fixture(&format!("apko/golden/sboms/{name}")))
}

/// The referrers the site served from `site` lists for `digest` of apko/golden.
fn served_referrers(site: &Path, digest: &str) -> Vec<String> {
    let server = Server::start(site);
    let url = server.url(&format!("/v2/apko/golden/referrers/{digest}"));
    platforms_of(&reqwest::blocking::get(url).unwrap().bytes().unwrap())
}

/// A copy of the golden layout under `dir` without its SBOM files.
fn golden_without_sboms(dir: &Path) -> PathBuf {
    let layout = golden_copy(dir);
    fs::remove_dir_all(sboms(&layout)).unwrap();
    layout
}

#[test]
fn signed_sbom_attestations_are_an_images_sboms() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = golden_without_sboms(tmp.path());
    let a = Attesting::new(tmp.path());
    // Without SBOM files the policy refuses the image...
    refused(
        &verify(&layout, &a.with(&["--sbom", "required"])),
        &["no SBOM found (SBOM policy: required)"],
    );
    // ...and its only SBOM, a signed attestation over the index, satisfies it.
    let index_att = a.attest(&layout, INDEX, golden_sbom("sbom-index.spdx.json"));
    let rep = tmp.path().join("r.json");
    let rep_arg = s(&rep);
    let out = verify(
        &layout,
        &a.with(&[
            "--sbom", "required", "--ntia", "require", "--report", &rep_arg,
        ]),
    );
    out.ok();
    assert!(out.stdout.contains("1 SBOMs"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "sbom image {INDEX}: attestation {index_att} (SPDX-2.3, 3 packages, NTIA complete)"
        )),
        "{}",
        out.stdout
    );
    let b = &report(&rep)["images"][0]["sboms"][0];
    assert_eq!(b["origin"], format!("attestation {index_att}"));
    assert_eq!(b["path"], Value::Null);
    assert_eq!(b["subject"], INDEX);
    assert_eq!(b["ntia"], "pass");
    assert_eq!(b["packages"], 3);

    // Per platform, the platforms need theirs: attested too, they count and are placed.
    refused(
        &verify(&layout, &a.with(&["--sbom-per-platform"])),
        &["the linux/amd64 manifest", "has no SBOM of its own"],
    );
    a.attest(&layout, AMD64, golden_sbom("sbom-x86_64.spdx.json"));
    a.attest(&layout, ARM64, golden_sbom("sbom-aarch64.spdx.json"));
    let mut strict = STRICT.to_vec();
    strict.extend(["--report", &rep_arg]);
    verify(&layout, &a.with(&strict)).ok();
    let platforms: Vec<Value> = report(&rep)["images"][0]["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["platform"].clone())
        .collect();
    assert_eq!(
        platforms,
        [Value::Null, json!("linux/amd64"), json!("linux/arm64")]
    );

    // Published once, as the attestations they came as: no SBOM referrer is added.
    let site = tmp.path().join("site");
    publish(&layout, &site, &a.with(&strict)).ok();
    assert_eq!(report(&rep)["sboms"].as_array().unwrap().len(), 3);
    assert_eq!(served_referrers(&site, INDEX), [index_att]);

    // A sidecar bundle holding the attestation counts the same.
    let bare = golden_without_sboms(&tmp.path().join("bare"));
    let sidecar = tmp.path().join("index.sbom.sigstore.json");
    let bundle = a.sigstore.attestation(
        &a.signer,
        INDEX,
        "https://spdx.dev/Document",
        golden_sbom("sbom-index.spdx.json"),
    );
    fs::write(&sidecar, bundle.to_string()).unwrap();
    let sidecar_arg = s(&sidecar);
    verify(
        &bare,
        &a.with(&[
            "--sbom",
            "required",
            "--bundle",
            &sidecar_arg,
            "--report",
            &rep_arg,
        ]),
    )
    .ok();
    let b = &report(&rep)["images"][0]["sboms"][0];
    assert!(
        b["origin"]
            .as_str()
            .unwrap()
            .starts_with("attestation sha256:"),
        "{b}"
    );
}

#[test]
fn an_attestation_missing_ntia_elements_fails_under_require() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = golden_without_sboms(tmp.path());
    let a = Attesting::new(tmp.path());
    let mut predicate = golden_sbom("sbom-x86_64.spdx.json");
    predicate["packages"][5]
        .as_object_mut()
        .unwrap()
        .remove("supplier");
    let att = a.attest(&layout, AMD64, predicate);
    let missing = format!(
        "SBOM attestation {att}: NTIA minimum elements missing: supplier (package \"replayout\""
    );
    let out = verify(&layout, &a.with(&["--ntia", "require"]));
    refused(&out, &[AMD64, &missing]);
    let site = tmp.path().join("site");
    refused(
        &publish(&layout, &site, &a.with(&["--ntia", "require"])),
        &[&missing],
    );
    assert!(snapshot(&site).is_empty(), "a refused publish wrote files");
    // Under `warn` it passes with the warning; the report says where.
    let rep = tmp.path().join("r.json");
    let rep_arg = s(&rep);
    let out = verify(
        &layout,
        &a.with(&["--sbom", "required", "--report", &rep_arg]),
    );
    out.ok();
    assert!(
        out.stderr
            .contains(&format!("warning: image index.json: {missing}")),
        "{}",
        out.stderr
    );
    let b = &report(&rep)["images"][0]["sboms"][0];
    assert_eq!(b["ntia"], "warn");
    assert_eq!(b["platform"], "linux/amd64");
}

/// Attach `sbom` to `subject` of the golden copy in `layout` as an SPDX artifact (ORAS-style).
fn attach_spdx(layout: &Path, subject: &str, sbom: &[u8]) -> String {
    let (media_type, size) = descriptor_of(layout, subject);
    let artifact = signing::Artifact {
        media_type: "application/spdx+json",
        bytes: sbom.to_vec(),
        annotations: json!({}),
    };
    let subject = json!({"mediaType": media_type, "digest": subject, "size": size});
    signing::attach_artifact(layout, &subject, &artifact)
}

#[test]
fn sbom_referrers_in_the_layout_count_and_must_be_intact_and_describe_their_subject() {
    let tmp = tempfile::tempdir().unwrap();
    let index_sbom = fs::read(fixture("apko/golden/sboms/sbom-index.spdx.json")).unwrap();
    let arm_sbom = fs::read(fixture("apko/golden/sboms/sbom-aarch64.spdx.json")).unwrap();
    let fresh = |name: &str| golden_without_sboms(&tmp.path().join(name));

    // An SPDX referrer of the index, already in the layout, is the image's SBOM.
    let layout = fresh("good");
    let referrer = attach_spdx(&layout, INDEX, &index_sbom);
    let rep = tmp.path().join("r.json");
    let rep_arg = s(&rep);
    verify(&layout, &["--sbom", "required", "--report", &rep_arg]).ok();
    let b = &report(&rep)["images"][0]["sboms"][0];
    assert_eq!(b["origin"], format!("referrer {referrer}"));
    assert_eq!(b["digest"], digest_of(&index_sbom));
    assert_eq!(b["subject"], INDEX);
    let site = tmp.path().join("site");
    publish(&layout, &site, &["--sbom", "required", "-q"]).ok();
    assert_eq!(served_referrers(&site, INDEX), [referrer]);

    // One describing another manifest than its subject is refused.
    let layout = fresh("mismatch");
    attach_spdx(&layout, AMD64, &arm_sbom);
    let sbom = digest_of(&arm_sbom);
    refused(
        &verify(&layout, &[]),
        &[&format!(
            "referrer of {AMD64}: SBOM {sbom} describes {ARM64}, not its subject {AMD64}"
        )],
    );

    // One whose layer changed on disk is refused.
    let layout = fresh("tampered");
    attach_spdx(&layout, INDEX, &index_sbom);
    let path = blob_path(&layout, &digest_of(&index_sbom));
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    fs::write(&path, bytes).unwrap();
    let site = tmp.path().join("site-tampered");
    let out = publish(&layout, &site, &["--sbom", "required"]);
    refused(
        &out,
        &[
            &format!("referrer of {INDEX}: SBOM {}", digest_of(&index_sbom)),
            "digest mismatch or size mismatch with its descriptor",
        ],
    );
    assert!(snapshot(&site).is_empty(), "a refused publish wrote files");
}
