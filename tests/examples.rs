//! Every example in `examples/` is read by what reads it for real: each regpress config through
//! `Config::load`, `auth.toml` through the auth handler's loader, Garage's config as TOML, each
//! workflow as YAML with its regpress steps checked against `action.yml`'s inputs and outputs,
//! and the release workflow's packaging run and checked against what `action/install.sh`
//! downloads. Every regpress config is published: those whose images are in this repository as
//! they are, the others from a temporary copy with the bundled fixtures as their `out/…`
//! layouts ([`stage`]); to a temporary directory, or, for the Garage example, to the local
//! Garage.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::garage::Garage;
use common::signing::{Signer, TestSigstore};
use common::{copy_dir, fixture, regpress, regpress_with_env, s};
use regpress::config::Config;
use serde_norway::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every file under `examples/` ending in `ext`, as paths relative to it.
fn files(ext: &str) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(examples())
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == ext))
        .map(|e| {
            e.path()
                .strip_prefix(examples())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// Configs that are not regpress.toml files, and what reads them.
const OTHER_CONFIGS: [&str; 2] = ["auth.toml", "garage/garage.toml"];

/// For an example whose layouts a user's build makes (`out/…`), a copy of it in `dir` with
/// those layouts made from the fixtures (and, for the signed example, what it signs with);
/// `None` for an example this does not know.
fn stage(name: &str, dir: &Path) -> Option<PathBuf> {
    let golden = fixture("apko/golden");
    let top = fixture("apko/top_image");
    let out = dir.join("out");
    let mut text = std::fs::read_to_string(examples().join(name)).unwrap();
    match name {
        "single-image.toml" => {
            copy_dir(&golden, &out.join("base"));
            copy_dir(&golden.join("sboms"), &out.join("sboms"));
        }
        "catalog.toml" => {
            copy_dir(&golden, &out.join("base")); // SBOMs in out/base/sboms, as apko writes
            copy_dir(&top, &out.join("python-3.12"));
            copy_dir(&golden, &out.join("python-3.11"));
            copy_dir(&top, &out.join("nginx"));
            let base = [common::synth::Layer::new(1, 2048)];
            common::synth::named_layout(
                &out.join("mirror"),
                &[("1.36", 2), ("1.37", 3)],
                &base,
                512,
            );
        }
        "signed.toml" => {
            // Not in the repository: the key, the bundle over out/base/index.json, and a
            // Sigstore to make them with. This test's offline Sigstore stands in for the
            // production one: the copy names its trusted root (the example's commented line).
            copy_dir(&golden, &out.join("base"));
            let sigstore = TestSigstore::new();
            sigstore.write_trusted_root(&dir.join("trusted_root.json"));
            let signer = Signer::key();
            std::fs::create_dir_all(dir.join("keys")).unwrap();
            signer.write_public(&dir.join("keys/cosign.pub"));
            let index = std::fs::read(out.join("base/index.json")).unwrap();
            let bundle = sigstore.blob_bundle(&signer, &index);
            std::fs::write(out.join("base.sigstore.json"), bundle.to_string()).unwrap();
            let commented = "# trusted_root = \"trusted_root.json\"";
            assert!(text.contains(commented), "examples/{name}: {commented}");
            text = text.replace(commented, "trusted_root = \"trusted_root.json\"");
        }
        _ => return None,
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    Some(path)
}

#[test]
fn every_regpress_config_parses_and_the_local_ones_publish() {
    let mut local = BTreeSet::new();
    let mut garage: Option<Garage> = None;
    let regpress_configs: Vec<String> = files("toml")
        .into_iter()
        .filter(|f| !OTHER_CONFIGS.contains(&f.as_str()))
        .collect();
    assert!(regpress_configs.len() >= 6, "{regpress_configs:?}");
    for name in &regpress_configs {
        let mut path = examples().join(name);
        let mut config = Config::load(&path).unwrap_or_else(|e| panic!("examples/{name}: {e}"));
        let to = config.targets[0]
            .to
            .clone()
            .expect("every example names its target");
        let dir = tempfile::tempdir().unwrap();
        let in_repo = config
            .images
            .iter()
            .all(|i| i.layout.join("index.json").exists());
        if !in_repo {
            path = stage(name, dir.path())
                .unwrap_or_else(|| panic!("examples/{name}: its layouts are not here; stage them"));
            config = Config::load(&path).unwrap_or_else(|e| panic!("staged {name}: {e}"));
        }
        local.insert(name.clone());
        let report = dir.path().join("report.json");
        let mut args = vec![
            "publish".to_string(),
            "--config".into(),
            s(&path),
            "--report".into(),
            s(&report),
        ];
        let mut env = Vec::new();
        if name.starts_with("garage/") {
            // Self-hosted Garage: the local one, in a fresh bucket.
            assert!(to.starts_with("s3://"), "{name}");
            let g = garage.get_or_insert_with(Garage::start);
            let bucket = g.bucket("example");
            args.extend(["--to".into(), format!("s3://{bucket}")]);
            args.extend(["--endpoint".into(), g.endpoint.clone()]);
            env = g.env();
        } else {
            // R2 in the examples: a directory here (`--to` wins over `[target] to`).
            args.extend(["--to".into(), s(&dir.path().join("site"))]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        regpress_with_env(&argv, &env).ok();
        let r = common::report(&report);
        assert!(r["objects_written"].as_u64().unwrap() > 0, "{name}: {r}");
        let tags: usize = config.images.iter().map(|i| i.tags.len()).sum();
        assert_eq!(r["tags"].as_array().unwrap().len(), tags, "{name}");
        if name == "signed.toml" {
            let signers = r["images"][0]["signers"].as_array().unwrap();
            assert_eq!(signers.len(), 1, "{name}: {r}");
        }
    }
    assert_eq!(
        local,
        [
            "catalog.toml",
            "garage/regpress.toml",
            "regpress.toml",
            "sbom-policy.toml",
            "signed.toml",
            "single-image.toml",
        ]
        .map(String::from)
        .into_iter()
        .collect::<BTreeSet<_>>()
    );
}

#[test]
fn the_auth_and_garage_configs_parse() {
    let dir = tempfile::tempdir().unwrap();
    let key = regpress(&["auth", "keygen"]);
    key.ok();
    std::fs::write(dir.path().join("auth-key.pem"), &key.stdout).unwrap();
    std::fs::copy(examples().join("auth.toml"), dir.path().join("auth.toml")).unwrap();
    regpress::auth::config::AuthConfig::load(&dir.path().join("auth.toml"))
        .expect("examples/auth.toml loads");
    let garage: toml::Table = std::fs::read_to_string(examples().join("garage/garage.toml"))
        .unwrap()
        .parse()
        .expect("garage.toml is TOML");
    assert_eq!(garage["s3_api"]["s3_region"].as_str(), Some("garage"));
    let ours = Config::load(&examples().join("garage/regpress.toml")).unwrap();
    assert_eq!(ours.targets[0].region.as_deref(), Some("garage"));
}

#[test]
fn every_workflow_uses_the_action_as_it_is_declared() {
    let action = common::action::load();
    let workflows = files("yml");
    assert_eq!(
        workflows,
        [
            "workflows/nightly.yml",
            "workflows/publish.yml",
            "workflows/release.yml",
            "workflows/sharded.yml"
        ],
        "a new workflow example? add it here"
    );
    let mut args_seen = Vec::new();
    let re = regex::Regex::new(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)").unwrap();
    for name in &workflows {
        let text = std::fs::read_to_string(examples().join(name)).unwrap();
        let workflow: Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("examples/{name}: {e}"));
        assert!(workflow["on"].is_mapping(), "{name}: no triggers");
        let jobs = workflow["jobs"].as_mapping().expect("jobs");
        let mut uses_action = 0;
        for (_, job) in jobs {
            let steps = job["steps"].as_sequence().expect("steps");
            let mut regpress_ids = Vec::new();
            for step in steps {
                if let Some(run) = step["run"].as_str() {
                    assert!(
                        !run.contains("${{"),
                        "{name}: pass expressions to `run` through env, not inline"
                    );
                }
                let Some(uses) = step["uses"].as_str() else {
                    continue;
                };
                if !uses.contains("/regpress@") {
                    continue;
                }
                uses_action += 1;
                let with = step["with"].as_mapping().expect("the action needs inputs");
                for (key, value) in with {
                    let key = key.as_str().unwrap();
                    assert!(
                        action.inputs.contains_key(key),
                        "{name}: input {key} is not in action.yml"
                    );
                    if key == "args" {
                        args_seen.push(value.as_str().unwrap().to_string());
                    }
                }
                let env = step["env"].as_mapping().expect("credentials via env");
                assert!(env.contains_key("AWS_ACCESS_KEY_ID"), "{name}");
                if let Some(id) = step["id"].as_str() {
                    regpress_ids.push(id.to_string());
                }
            }
            // Every `steps.<regpress>.outputs.X` names an output the action declares.
            for c in re.captures_iter(&text) {
                if regpress_ids.contains(&c[1].to_string()) {
                    assert!(
                        action.outputs.contains_key(&c[2]),
                        "{name}: output {}",
                        &c[2]
                    );
                }
            }
        }
        // The release workflow builds regpress; the others use it.
        let expected = usize::from(name != "workflows/release.yml");
        assert_eq!(uses_action, expected, "{name}: regpress steps");
    }
    // The extra arguments are real flags of `regpress publish`, whole (`--sbom` is not
    // `--sbom-per-platform`).
    let help = regpress(&["publish", "--help"]);
    let flags: BTreeSet<&str> = regex::Regex::new(r"--[a-z0-9][a-z0-9-]*")
        .unwrap()
        .find_iter(&help.stdout)
        .map(|m| m.as_str())
        .collect();
    assert!(flags.contains("--sbom-per-platform") && flags.contains("--prune"));
    assert!(!args_seen.is_empty());
    for args in args_seen {
        for word in args.split_whitespace().filter(|a| a.starts_with("--")) {
            let flag = word.split('=').next().unwrap_or(word);
            assert!(flags.contains(flag), "{flag} is not a publish flag");
        }
    }
}

/// The install step's release triples: the `target=...` of its `uname` case.
fn install_targets() -> BTreeSet<String> {
    let script =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action/install.sh"))
            .unwrap();
    regex::Regex::new(r"\) target=([a-z0-9_-]+) ;;")
        .unwrap()
        .captures_iter(&script)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn the_release_workflow_builds_the_assets_the_install_step_downloads() {
    let text = std::fs::read_to_string(examples().join("workflows/release.yml")).unwrap();
    let workflow: Value = serde_norway::from_str(&text).unwrap();
    let tags = &workflow["on"]["push"]["tags"];
    assert_eq!(
        tags[0].as_str(),
        Some("v*"),
        "install.sh downloads .../v<version>/"
    );
    let build = &workflow["jobs"]["build"];
    let matrix: BTreeSet<String> = build["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("a matrix of targets")
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_string())
        .collect();
    let wanted = install_targets();
    assert_eq!(wanted.len(), 4, "{wanted:?}");
    assert_eq!(
        matrix, wanted,
        "one release asset per target install.sh knows"
    );

    // Run the Package step as the runner would, over a stand-in build, and unpack what it made
    // as install.sh does: the binary at the top level, the .sha256's first word its digest.
    let package = build["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("Package"))
        .expect("a Package step");
    let triple = common::action::release_triple();
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("target").join(&triple).join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(
        release.join("regpress"),
        b"#!/bin/sh\necho regpress 0.0.0\n",
    )
    .unwrap();
    let out: common::Run = std::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(package["run"].as_str().unwrap())
        .current_dir(dir.path())
        .env("TARGET", &triple)
        .output()
        .unwrap()
        .into();
    out.ok();
    let name = format!("regpress-{triple}.tar.gz");
    let tarball = std::fs::read(dir.path().join(&name)).expect("the tarball install.sh fetches");
    let sha = std::fs::read_to_string(dir.path().join(format!("{name}.sha256"))).unwrap();
    let first = sha.split(' ').next().unwrap();
    assert_eq!(first, common::synth::sha256_hex(&tarball), "{sha}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tarball[..]));
    let entries: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| s(&e.unwrap().path().unwrap()))
        .collect();
    assert_eq!(entries, ["regpress"]);
    // The upload names the same files.
    let upload = build["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("an upload step");
    assert_eq!(
        upload["with"]["path"].as_str(),
        Some("regpress-${{ matrix.target }}.tar.gz*")
    );
}
