//! The GitHub Action (`action.yml`) run step by step as a runner would run it
//! (`tests/common/action.rs`), against the local Garage: install (a release download, an
//! installed binary, the cargo fallback), publish, and the job summary and outputs it leaves.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::action::{Runner, make_release, only_tools, release_triple, serve_files};
use common::garage::Garage;
use common::{fixture, s};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The directory holding the built binary, as a setup step would put it on PATH.
fn built_bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regpress"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn publishes_a_layout_to_garage_with_a_summary_and_outputs() {
    let garage = Garage::start();
    let bucket = garage.bucket("action");
    let releases = tempfile::tempdir().unwrap();
    make_release(releases.path(), VERSION);
    let mut runner = Runner::new();
    runner.env = garage.env();
    runner
        .env
        .push(("REGPRESS_RELEASES_URL".into(), serve_files(releases.path())));
    let golden = s(&fixture("apko/golden"));
    let target = format!("s3://{bucket}");
    let inputs = [
        ("layout", golden.as_str()),
        ("repository", "apko/golden"),
        ("tags", "latest, 1.0"),
        ("target", target.as_str()),
        ("endpoint", garage.endpoint.as_str()),
        ("region", "garage"),
        ("version", VERSION),
    ];
    let first = runner.run(&inputs);
    assert_eq!(first.code, 0, "{}", first.log);
    assert!(
        first.log.contains(&format!(
            "installed regpress {VERSION} at {}",
            s(&runner.runner_temp())
        )),
        "the release was not downloaded:\n{}",
        first.log
    );

    // Outputs: every tag's digest, and the report's path.
    let digest = common::golden_digest();
    let digests: BTreeMap<String, String> =
        serde_json::from_str(&first.outputs["digests"]).expect("digests is JSON");
    assert_eq!(
        digests,
        BTreeMap::from([
            ("apko/golden:1.0".to_string(), digest.clone()),
            ("apko/golden:latest".to_string(), digest.clone())
        ])
    );
    let report = common::report(PathBuf::from(&first.outputs["report"]).as_path());
    let written = report["objects_written"].as_u64().unwrap();
    assert!(written > 0, "{report}");
    assert_eq!(report["images"][0]["digest"], digest.as_str());

    // The summary: one row with the digest, platforms, size, signature, SBOMs, provenance and
    // counts.
    let summary = &first.summary;
    assert!(
        summary.starts_with(&format!("### regpress published → `{target}`")),
        "{summary}"
    );
    let image_objects = report["images"][0]["objects_to_write"].as_u64().unwrap();
    let row = format!(
        "| `apko/golden` | `latest`, `1.0` | `{digest}` | linux/amd64, linux/arm64 | 9.13 KiB \
         | none | ✅ 3× SPDX-2.3 | none | {image_objects} / 0 |"
    );
    assert!(summary.contains(&row), "no row {row} in\n{summary}");
    assert!(
        summary.contains(&format!("**Total:** {written} objects written")),
        "{summary}"
    );
    let listing = garage.listing(&bucket);
    assert!(listing.contains_key("v2/apko/golden/manifests/latest"));
    assert!(listing.contains_key(&format!("v2/apko/golden/manifests/{digest}")));

    // The same run again writes nothing, and says so.
    let again = runner.run(&inputs);
    assert_eq!(again.code, 0, "{}", again.log);
    assert!(
        again.summary.contains(&format!("| 0 / {image_objects} |")),
        "{}",
        again.summary
    );
    assert!(again.summary.contains("**Total:** 0 objects written"));
    assert_eq!(again.outputs["digests"], first.outputs["digests"]);
}

#[test]
fn a_dry_run_from_a_config_plans_and_writes_nothing() {
    let garage = Garage::start();
    let bucket = garage.bucket("action-plan");
    let mut runner = Runner::new();
    runner.env = garage.env();
    runner.path = vec![built_bin_dir()];
    std::fs::write(
        runner.workspace().join("regpress.toml"),
        format!(
            "[target]\nto = \"s3://{bucket}\"\nendpoint = \"{}\"\nregion = \"garage\"\n\n\
             [[image]]\nlayout = \"{}\"\nrepository = \"apko/golden\"\ntags = [\"latest\"]\n\n\
             [[image]]\nlayout = \"{}\"\nrepository = \"apko/top\"\ntags = [\"latest\"]\n",
            garage.endpoint,
            s(&fixture("apko/golden")),
            s(&fixture("apko/top_image")),
        ),
    )
    .unwrap();
    let run = runner.run(&[
        ("config", "regpress.toml"),
        ("dry-run", "true"),
        ("args", "--ntia 'require' --sbom optional"),
        ("version", VERSION),
    ]);
    assert_eq!(run.code, 0, "{}", run.log);
    assert!(
        run.log
            .contains(&format!("regpress {VERSION} is already installed")),
        "{}",
        run.log
    );
    assert!(
        run.log.contains("--ntia require --sbom optional"),
        "{}",
        run.log
    );
    assert!(
        run.summary.starts_with(&format!(
            "### regpress plan (dry run, nothing written) → `s3://{bucket}`"
        )),
        "{}",
        run.summary
    );
    assert!(run.summary.contains("objects to write / unchanged"));
    assert!(
        run.summary.contains("| `apko/top` | `latest` |"),
        "{}",
        run.summary
    );
    assert!(run.summary.contains("**Plan:**"), "{}", run.summary);
    let digests: BTreeMap<String, String> = serde_json::from_str(&run.outputs["digests"]).unwrap();
    assert_eq!(digests.len(), 2);
    assert_eq!(digests["apko/golden:latest"], common::golden_digest());
    assert!(
        garage.listing(&bucket).is_empty(),
        "a dry run wrote to the bucket"
    );
}

#[test]
fn bad_inputs_fail_before_anything_runs_and_say_what_to_give() {
    let mut runner = Runner::new();
    runner.path = vec![built_bin_dir()];
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "nothing to publish: give config"),
        (&[("layout", "out")], "layout needs repository"),
        (
            &[("config", "r.toml"), ("layout", "out")],
            "give either config, or layout",
        ),
        (
            &[
                ("layout", "out"),
                ("repository", "a"),
                ("tags", "t"),
                ("dry-run", "yes"),
            ],
            "dry-run must be true or false",
        ),
    ];
    for (inputs, message) in cases {
        let mut with = inputs.to_vec();
        with.push(("version", VERSION));
        let run = runner.run(&with);
        assert_eq!(run.code, 2, "{inputs:?}: {}", run.log);
        assert_eq!(run.failed_step.as_deref(), Some("Publish"));
        assert!(
            run.log.contains(&format!("::error::{message}")),
            "{}",
            run.log
        );
        assert!(
            run.summary
                .starts_with("### ❌ regpress publish failed (exit 2: usage error"),
            "{}",
            run.summary
        );
    }
}

#[test]
fn a_failed_publish_still_gets_a_summary_and_the_action_fails() {
    let mut runner = Runner::new();
    runner.path = vec![built_bin_dir()];
    let golden = s(&fixture("apko/golden"));
    // The fixture is unsigned: a policy requiring a signature by some key refuses it.
    let key = runner.workspace().join("cosign.pub");
    common::signing::Signer::key().write_public(&key);
    let args = format!("--require-signature --key {}", s(&key));
    let run = runner.run(&[
        ("layout", golden.as_str()),
        ("repository", "apko/golden"),
        ("tags", "latest"),
        ("target", "site"),
        ("args", args.as_str()),
        ("version", VERSION),
    ]);
    assert_eq!(run.code, 3, "{}", run.log);
    assert_eq!(run.failed_step.as_deref(), Some("Publish"));
    assert!(run.log.contains("--- step Summarize"), "{}", run.log);
    assert_eq!(
        run.summary,
        "### ❌ regpress publish failed (exit 3: verification failed or refused by policy: nothing was written)\n\n\
         See the log of the publish step for what failed and what to do next.\n"
    );
    assert_eq!(run.outputs["digests"], "{}");
    assert_eq!(run.outputs["report"], "");
    assert_eq!(run.outputs["exit-code"], "3");
    assert!(!runner.workspace().join("site").exists());
}

/// The cargo fallback: a stand-in `cargo` records how it was called and installs the built
/// binary where `cargo install --root` would, so the step's choices are checked without a
/// ten-minute release build.
fn fake_cargo(dir: &std::path::Path) -> PathBuf {
    let log = dir.join("cargo.log");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> {log}\nwhile [ \"$1\" != --root ]; do shift; done\n\
         mkdir -p \"$2/bin\" && cp {bin} \"$2/bin/regpress\"\n",
        log = s(&log),
        bin = env!("CARGO_BIN_EXE_regpress"),
    );
    let cargo = dir.join("cargo");
    std::fs::write(&cargo, script).unwrap();
    let mut perms = std::fs::metadata(&cargo).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&cargo, perms).unwrap();
    log
}

#[test]
fn install_checks_release_checksums_and_falls_back_to_cargo_install() {
    let releases = tempfile::tempdir().unwrap();
    let tarball = make_release(releases.path(), VERSION);
    let url = serve_files(releases.path());
    let golden = s(&fixture("apko/golden"));
    let local = |version: &'static str| {
        [
            ("layout", golden.clone()),
            ("repository", "apko/golden".to_string()),
            ("tags", "latest".to_string()),
            ("target", "site".to_string()),
            ("version", version.to_string()),
        ]
    };
    let run_with = |runner: &Runner, inputs: &[(&'static str, String)]| {
        let pairs: Vec<(&str, &str)> = inputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        runner.run(&pairs)
    };

    // No version: build the action's checkout.
    let mut runner = Runner::new();
    let shims = tempfile::tempdir().unwrap();
    let log = fake_cargo(shims.path());
    runner.path = vec![shims.path().to_path_buf()];
    let run = run_with(&runner, &local(""));
    assert_eq!(run.code, 0, "{}", run.log);
    let root = runner.runner_temp().join("regpress");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim(),
        format!(
            "install --locked --path {} --root {}",
            s(&common::action::action_dir()),
            s(&root)
        )
    );
    assert!(
        runner
            .workspace()
            .join("site/v2/apko/golden/tags/list")
            .exists()
    );

    // A version with no release: a warning, then the same build.
    let mut runner = Runner::new();
    runner.path = vec![shims.path().to_path_buf()];
    runner.env = vec![("REGPRESS_RELEASES_URL".into(), url.clone())];
    let run = run_with(&runner, &local("9.9.9"));
    assert_eq!(run.code, 0, "{}", run.log);
    assert!(
        run.log.contains(&format!(
            "::warning::no regpress 9.9.9 release at {url}/v9.9.9/regpress-{}.tar.gz",
            release_triple()
        )),
        "{}",
        run.log
    );
    assert!(
        run.log
            .contains("::warning::asked for regpress 9.9.9, built regpress")
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);

    // No cargo at all (a PATH of only the tools the steps use): say what to add.
    let mut runner = Runner::new();
    let tools = tempfile::tempdir().unwrap();
    only_tools(
        tools.path(),
        &["bash", "uname", "curl", "mktemp", "cut", "sha256sum", "rm"],
    );
    runner.system_path = vec![tools.path().to_path_buf()];
    runner.env = vec![("REGPRESS_RELEASES_URL".into(), url.clone())];
    let run = run_with(&runner, &local(""));
    assert_eq!(run.code, 1, "{}", run.log);
    assert_eq!(run.failed_step.as_deref(), Some("Install regpress"));
    assert!(
        run.log.contains("::error::cargo is not installed"),
        "{}",
        run.log
    );
    assert!(
        run.summary.starts_with("### ❌ regpress did not publish"),
        "{}",
        run.summary
    );

    // A tarball that does not match its checksum is never installed.
    let mut bytes = std::fs::read(&tarball).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tarball, bytes).unwrap();
    let run = run_with(&runner, &local(VERSION));
    assert_eq!(run.code, 1, "{}", run.log);
    assert!(run.log.contains("but its .sha256 says"), "{}", run.log);
    assert!(!runner.runner_temp().join("regpress/bin/regpress").exists());
}

#[test]
fn args_of_only_blanks_add_no_argument() {
    let mut runner = Runner::new();
    runner.path = vec![built_bin_dir()];
    let golden = s(&fixture("apko/golden"));
    for blank in ["   ", " \n\t "] {
        let run = runner.run(&[
            ("layout", golden.as_str()),
            ("repository", "apko/golden"),
            ("tags", "latest"),
            ("target", "site"),
            ("args", blank),
            ("version", VERSION),
        ]);
        assert_eq!(run.code, 0, "{blank:?}: {}", run.log);
        assert!(
            run.summary.starts_with("### regpress published → `site`"),
            "{}",
            run.summary
        );
    }
}
