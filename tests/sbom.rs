//! SBOMs end to end through the binary: the real apko golden layout verifies and publishes with
//! its SBOMs; images without SBOMs, and every broken SBOM variant (generated here from the
//! golden SBOMs), are refused under the policy that forbids them, naming the file and the
//! reason, and a refused publish writes nothing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use common::synth::{digest_of, sha256_hex};
use common::{Run, fixture, regpress, report, s, snapshot};

const INDEX: &str = "sha256:b5f05e6fc882c97d61c1daee566954ae6fc09924f8e152293e2b97a06092069f";
const AMD64: &str = "sha256:69f0237c7f8cf0b8a329d1bf1d6870c870c4ec323e39d3a6da59596632d0f2f4";
const ARM64: &str = "sha256:124c885f834cfaf1329987457a9651a68c4fb9733d4462ae6288b98011277858";

/// A copy of the golden layout (with its `sboms/`) under `dir`.
fn golden_copy(dir: &Path) -> PathBuf {
    let from = fixture("apko/golden");
    let to = dir.join("golden");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(&from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
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
    let (layout, site) = (s(layout), s(site));
    let mut args = vec![
        "publish",
        &layout,
        "--repo",
        "apko/golden",
        "--tag",
        "latest",
        "--to",
        &site,
    ];
    args.extend_from_slice(extra);
    regpress(&args)
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
    let strict = [
        "--sbom",
        "required",
        "--sbom-per-platform",
        "--ntia",
        "require",
    ];
    let mut args = strict.to_vec();
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
    let mut args = strict.to_vec();
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
