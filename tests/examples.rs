//! Every example in `examples/` is read by what reads it for real: each regpress config through
//! `Config::load`, `auth.toml` through the auth handler's loader, Garage's config as TOML, each
//! workflow as YAML with its regpress steps checked against `action.yml`'s inputs and outputs.
//! The configs whose images are in this repository are published: to a temporary directory,
//! or, for the Garage example, to the local Garage.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::garage::Garage;
use common::{regpress, regpress_with_env, s};
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
        let path = examples().join(name);
        let config = Config::load(&path).unwrap_or_else(|e| panic!("examples/{name}: {e}"));
        let target = config
            .target
            .clone()
            .expect("every example names its target");
        if !config
            .images
            .iter()
            .all(|i| i.layout.join("index.json").exists())
        {
            continue;
        }
        local.insert(name.clone());
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let mut args = vec![
            "publish".to_string(),
            "--config".into(),
            s(&path),
            "--report".into(),
            s(&report),
        ];
        let mut env = Vec::new();
        if target.to.starts_with("s3://") {
            // Self-hosted Garage: the local one, in a fresh bucket.
            let g = garage.get_or_insert_with(Garage::start);
            let bucket = g.bucket("example");
            args.extend(["--to".into(), format!("s3://{bucket}")]);
            args.extend(["--endpoint".into(), g.endpoint.clone()]);
            env = g.env();
        } else {
            args.extend(["--to".into(), s(&dir.path().join("site"))]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        regpress_with_env(&argv, &env).ok();
        let r = common::report(&report);
        assert!(r["objects_written"].as_u64().unwrap() > 0, "{name}: {r}");
        let tags: usize = config.images.iter().map(|i| i.tags.len()).sum();
        assert_eq!(r["tags"].as_array().unwrap().len(), tags, "{name}");
    }
    assert_eq!(
        local,
        BTreeSet::from([
            "garage/regpress.toml".to_string(),
            "regpress.toml".to_string(),
            "sbom-policy.toml".to_string()
        ])
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
    assert_eq!(ours.target.unwrap().region.as_deref(), Some("garage"));
}

#[test]
fn every_workflow_uses_the_action_as_it_is_declared() {
    let action = common::action::load();
    let workflows = files("yml");
    assert_eq!(
        workflows,
        ["workflows/nightly.yml", "workflows/publish.yml"],
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
        assert_eq!(uses_action, 1, "{name}: one regpress step");
    }
    // The extra arguments are real flags of `regpress publish` (but --prune, coming with
    // garbage collection).
    let help = regpress(&["publish", "--help"]);
    for args in args_seen {
        for flag in args.split_whitespace().filter(|a| a.starts_with("--")) {
            if flag == "--prune" {
                continue;
            }
            assert!(help.stdout.contains(flag), "{flag} is not a publish flag");
        }
    }
}
