//! The command line as a newcomer and a script meet it: every subcommand's `--help`, shell
//! completions that bash accepts, man pages, `--json` output for publish (dry run too), verify
//! and check, `-v` and `-q`, and usage errors that say what to do next.

mod common;

use std::process::Command;

use common::{Server, fixture, regpress, s};
use serde_json::Value;

/// Every subcommand path, from `regpress --help` and each group's own help.
fn subcommands() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let commands = |args: &[&str]| -> Vec<String> {
        let mut help_args = args.to_vec();
        help_args.push("--help");
        let help = regpress(&help_args);
        help.ok();
        help_section(&help.stdout, "Commands")
            .into_iter()
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|c| c != "help")
            .collect()
    };
    for top in commands(&[]) {
        let nested = commands(&[&top]);
        if nested.is_empty() {
            out.push(vec![top]);
        } else {
            out.extend(nested.into_iter().map(|n| vec![top.clone(), n]));
        }
    }
    out
}

/// Every argument of `command` and its subcommands has help text, and every command an about.
fn check_documented(command: &clap::Command, path: &str) {
    assert!(command.get_about().is_some(), "{path}: no description");
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        assert!(
            arg.get_help().is_some() || arg.get_long_help().is_some(),
            "{path}: {} has no help",
            arg.get_id()
        );
    }
    for sub in command.get_subcommands() {
        check_documented(sub, &format!("{path} {}", sub.get_name()));
    }
}

#[test]
fn every_subcommand_explains_itself() {
    check_documented(
        &<regpress::cli::Cli as clap::CommandFactory>::command(),
        "regpress",
    );
    let all = subcommands();
    assert!(all.len() >= 10, "{all:?}");
    for path in &all {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = regpress(&args);
        help.ok();
        let first = help.stdout.lines().next().unwrap_or_default();
        assert!(
            first.len() > 20 && !first.starts_with("Usage"),
            "{path:?}: no description: {first:?}"
        );
        assert!(help.stdout.contains("-q, --quiet"), "{path:?}");
    }
    for (command, wanted) in [
        (
            "publish",
            ["Examples:", "Exit codes:", "Target:", "Publish events"],
        ),
        (
            "verify",
            ["Examples:", "Exit codes:", "SBOMs:", "Signatures"],
        ),
        ("check", ["Examples:", "Exit codes:", "--json", "--report"]),
    ] {
        let help = regpress(&[command, "--help"]);
        for w in wanted {
            assert!(help.stdout.contains(w), "{command} --help lacks {w}");
        }
    }
    let top = regpress(&["--help"]);
    for secret in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "REGPRESS_EVENTS_URL",
        "REGPRESS_EVENTS_TOKEN",
    ] {
        assert!(top.stdout.contains(secret), "--help does not name {secret}");
    }
}

#[test]
fn completions_load_in_bash_and_man_pages_render() {
    let bash = regpress(&["completions", "bash"]);
    bash.ok();
    assert!(bash.stdout.contains("--events-url") && bash.stdout.contains("summarize"));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("regpress.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // Source it and ask for completions of `regpress pu`, as bash does on TAB.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(regpress pu); COMP_CWORD=1; COMP_LINE='regpress pu'; \
             COMP_POINT=${{#COMP_LINE}}; _regpress regpress pu regpress; echo \"${{COMPREPLY[@]}}\"",
            s(&script)
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "publish");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let c = regpress(&["completions", shell]);
        c.ok();
        assert!(c.stdout.contains("publish"), "{shell}");
    }
    assert_eq!(regpress(&["completions", "tcsh"]).code, 2);

    let man = regpress(&["man"]);
    man.ok();
    assert!(
        man.stdout.contains(".TH regpress 1"),
        "{}",
        &man.stdout[..200]
    );
    let pages = dir.path().join("man");
    regpress(&["man", "--dir", &s(&pages)]).ok();
    for page in [
        "regpress.1",
        "regpress-publish.1",
        "regpress-auth-serve.1",
        "regpress-summarize.1",
    ] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap_or_else(|_| panic!("{page}"));
        assert!(text.contains(".SH NAME"), "{page}");
    }
    let publish = std::fs::read_to_string(pages.join("regpress-publish.1")).unwrap();
    assert!(
        publish.contains("events\\-url"),
        "the page documents every flag"
    );
}

#[test]
fn json_output_for_publish_verify_and_check_and_verbose_details() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let golden = s(&fixture("apko/golden"));
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "publish",
            &golden,
            "--repo",
            "apko/golden",
            "--tag",
            "latest",
        ];
        let to = s(&site);
        args.extend(["--to", to.as_str()]);
        args.extend(extra);
        regpress(&args)
    };

    let plan = publish(&["--dry-run", "--json"]);
    plan.ok();
    let plan: Value = serde_json::from_str(&plan.stdout).expect("publish --dry-run --json");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["objects_written"], 0);
    assert_eq!(
        plan["images"][0]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(
        plan["images"][0]["tags_changed"],
        serde_json::json!(["latest"])
    );
    assert!(!site.exists(), "a dry run wrote");

    let done = publish(&["--json", "-q"]);
    done.ok();
    let done: Value = serde_json::from_str(&done.stdout).expect("publish --json");
    assert_eq!(done["objects_written"], plan["objects_to_write"]);

    let verbose = publish(&["-v"]);
    verbose.ok();
    assert!(
        verbose
            .stdout
            .contains("  platforms: linux/amd64, linux/arm64"),
        "{}",
        verbose.stdout
    );
    assert!(
        verbose.stdout.contains("tags created or moved: none"),
        "{}",
        verbose.stdout
    );
    let quiet = publish(&["-q"]);
    quiet.ok();
    assert_eq!(quiet.stdout, "");
    let both = publish(&["-q", "-v"]);
    assert_eq!(both.code, 2, "{}", both.stderr);

    let verify = regpress(&["verify", &golden, "--json"]);
    verify.ok();
    let verify: Value = serde_json::from_str(&verify.stdout).expect("verify --json");
    assert_eq!(verify["images"][0]["digest"], done["images"][0]["digest"]);
    assert_eq!(verify["images"][0]["sboms"].as_array().unwrap().len(), 3);

    let server = Server::start(&site);
    let report = dir.path().join("check.json");
    let check = regpress(&["check", &server.url(""), "--json", "--report", &s(&report)]);
    check.ok();
    let check: Value = serde_json::from_str(&check.stdout).expect("check --json");
    assert_eq!(check, common::report(&report));
    assert_eq!(check["problems"], serde_json::json!([]));
    assert_eq!(check["checked"][0]["repository"], "apko/golden");
    assert_eq!(check["checked"][0]["digest"], done["images"][0]["digest"]);
    let verbose = regpress(&["check", &server.url(""), "-v"]);
    verbose.ok();
    assert!(
        verbose.stdout.contains("ok apko/golden:latest sha256:"),
        "{}",
        verbose.stdout
    );
}

#[test]
fn usage_errors_say_what_to_do_next() {
    let golden = s(&fixture("apko/golden"));
    let cases: [(&[&str], &str); 4] = [
        (
            &["publish", &golden, "--tag", "x", "--to", "/tmp/x"],
            "--repo NAME is required",
        ),
        (
            &["publish", &golden, "--repo", "a", "--tag", "x"],
            "no target: give --to",
        ),
        (
            &["summarize", "--report", "/nonexistent.json"],
            "write one with `regpress publish --report FILE`",
        ),
        (
            &[
                "publish", &golden, "--repo", "a", "--tag", "x", "--to", "s3://b",
            ],
            "no credentials: set AWS_ACCESS_KEY_ID",
        ),
    ];
    for (args, hint) in cases {
        let out = common::regpress_with_env(
            args,
            &[
                ("AWS_ACCESS_KEY_ID".into(), String::new()),
                ("AWS_SECRET_ACCESS_KEY".into(), String::new()),
            ],
        );
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(hint), "{args:?}: {}", out.stderr);
    }
}

/// The lines of a help section (`Output:` …) up to the next blank line.
fn help_section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.split(&format!("\n{heading}:\n"))
        .nth(1)
        .map(|rest| {
            rest.split("\n\n")
                .next()
                .unwrap_or_default()
                .lines()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn flags_are_consistent_across_subcommands() {
    // --report and --json sit under "Output" wherever they are.
    for command in ["publish", "verify", "check", "gc"] {
        let help = regpress(&[command, "--help"]);
        help.ok();
        let output = help_section(&help.stdout, "Output");
        for flag in ["--report <FILE>", "--json"] {
            assert!(
                output.iter().any(|l| l.trim_start().starts_with(flag)),
                "{command} --help: {flag} not under Output:\n{}",
                help.stdout
            );
        }
    }
    // Help for a command that publishes nothing says nothing of publishing.
    let verify = regpress(&["verify", "--help"]);
    assert!(!verify.stdout.contains("to publish"), "{}", verify.stdout);
    // Every command with a non-obvious invocation shows examples.
    for command in ["publish", "verify", "check", "summarize", "gc", "serve"] {
        let help = regpress(&[command, "--help"]);
        assert!(
            help.stdout.contains("\nExample"),
            "{command} --help has no examples"
        );
    }
    // -v says what it adds, command by command.
    let top = regpress(&["--help"]);
    let verbose = top
        .stdout
        .split("--verbose")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default();
    for command in ["publish:", "verify:", "check:", "gc:"] {
        assert!(verbose.contains(command), "{verbose}");
    }

    // check's target flags belong to --repair.
    for flag in [
        &["--to", "./site"][..],
        &["--endpoint", "http://127.0.0.1:1"],
        &["--region", "auto"],
        &["--url-style", "path"],
        &["--config", "regpress.toml"],
    ] {
        let mut args = vec!["check", "http://127.0.0.1:1"];
        args.extend(flag);
        let out = regpress(&args);
        assert_eq!(out.code, 2, "{flag:?}: {}", out.stderr);
        assert!(out.stderr.contains("--repair"), "{flag:?}: {}", out.stderr);
    }
}

#[test]
fn verbose_output_matches_its_help_and_gc_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let site = s(&dir.path().join("site"));
    let golden = s(&fixture("apko/golden"));
    let verify = regpress(&["verify", &golden]);
    verify.ok();
    assert!(!verify.stdout.contains("platforms:"), "{}", verify.stdout);
    let verbose = regpress(&["verify", &golden, "-v"]);
    assert!(
        verbose
            .stdout
            .contains("  platforms: linux/amd64, linux/arm64"),
        "{}",
        verbose.stdout
    );
    let publish = |layout: &str| {
        regpress(&[
            "publish", layout, "--repo", "acme/app", "--tag", "latest", "--to", &site, "-q",
        ])
        .ok();
    };
    publish(&golden);
    publish(&s(&fixture("apko/top_image"))); // golden's manifests and blobs now unreachable

    let plan = regpress(&["gc", "--to", &site, "--grace", "0s", "--dry-run", "--json"]);
    plan.ok();
    let plan: Value = serde_json::from_str(&plan.stdout).expect("gc --json");
    assert_eq!(plan["dry_run"], true);
    let garbage = plan["garbage"].as_array().unwrap();
    assert!(!garbage.is_empty(), "{plan}");
    let done = regpress(&["gc", "--to", &site, "--grace", "0s", "-v"]);
    done.ok();
    for key in garbage {
        let key = key.as_str().unwrap();
        assert!(
            done.stdout.contains(&format!("deleted {key}\n")),
            "{key}: {}",
            done.stdout
        );
    }
}

#[test]
fn verify_bundle_takes_a_digest_only_as_sha256_and_64_hex_digits() {
    let case = fixture("sigstore-conformance/bundle-verify/managed-key-happy-path");
    let artifact = std::fs::read(fixture("sigstore-conformance/bundle-verify/a.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = s(&case.join("bundle.sigstore.json"));
    let key = s(&case.join("key.pub"));
    let run = |artifact: &str| -> common::Run {
        Command::new(env!("CARGO_BIN_EXE_regpress"))
            .args([
                "sigstore",
                "verify-bundle",
                "--bundle",
                &bundle,
                "--key",
                &key,
            ])
            .arg(artifact)
            .current_dir(dir.path())
            .output()
            .unwrap()
            .into()
    };
    // A file whose name starts with sha256: is a file.
    std::fs::write(dir.path().join("sha256:abc"), &artifact).unwrap();
    let file = run("sha256:abc");
    file.ok();
    assert!(
        file.stdout.contains("verified sha256:abc"),
        "{}",
        file.stdout
    );
    let missing = run("sha256:0123");
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("cannot read the artifact sha256:0123"),
        "{}",
        missing.stderr
    );
    // The real digest verifies; another digest is refused in the bundle's own words.
    let digest = format!("sha256:{}", common::synth::sha256_hex(&artifact));
    run(&digest).ok();
    let other = format!("sha256:{}", "0".repeat(64));
    let refused = run(&other);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with(&format!(
            "error: verification failed: bundle {bundle} over {other}: "
        )),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("layout"), "{}", refused.stderr);
}

#[test]
fn flags_override_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("regpress.toml");
    let write = |head: &str| {
        let image = format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"acme/app\"\ntags = [\"latest\"]\n",
            s(&fixture("apko/top_image"))
        );
        std::fs::write(&config, format!("{head}{image}")).unwrap();
    };
    let published = |site: &std::path::Path| site.join("v2/acme/app/manifests/latest").exists();

    // A `[target]` without `to` (one config, a bucket per environment given with --to): the
    // flag completes it, for publish and gc alike. top_image has no SBOM: `--sbom optional`
    // relaxes the config's `required`.
    write("[target]\nregion = \"auto\"\n[sbom]\npolicy = \"required\"\n");
    let site = dir.path().join("site");
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", "--config", config.to_str().unwrap()];
        args.extend(extra);
        regpress(&args)
    };
    let required = publish(&["--to", &s(&site)]);
    assert_eq!(required.code, 3, "{}", required.stderr);
    assert!(
        required.stderr.contains("no SBOM found"),
        "{}",
        required.stderr
    );
    publish(&["--to", &s(&site), "--sbom", "optional", "-q"]).ok();
    assert!(published(&site));
    let gc = regpress(&[
        "gc",
        "--config",
        &s(&config),
        "--to",
        &s(&site),
        "--dry-run",
    ]);
    gc.ok();
    // Without --to there is no target: a usage error naming the config.
    let path = s(&config);
    for args in [
        &["publish", "--config", &path][..],
        &["gc", "--config", &path],
    ] {
        let out = regpress(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("no target: give --to") && out.stderr.contains(&path),
            "{args:?}: {}",
            out.stderr
        );
    }

    // `--to` wins over `[target] to`.
    write("[target]\nto = \"elsewhere\"\n");
    let other = dir.path().join("other");
    publish(&["--to", &s(&other), "-q"]).ok();
    assert!(published(&other));
    assert!(!dir.path().join("elsewhere").exists());

    // `--events-timeout` wins over `[events] timeout` (0s alone is refused).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write(&format!(
        "[target]\nto = \"events-site\"\n[events]\nurl = \"http://127.0.0.1:{port}/\"\ntimeout = \"0s\"\n"
    ));
    let zero = publish(&[]);
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(
        zero.stderr.contains("would never deliver"),
        "{}",
        zero.stderr
    );
    let out = publish(&["--events-timeout", "300ms", "--events-budget", "1s"]);
    out.ok();
    assert!(out.stderr.contains("not delivered"), "{}", out.stderr);
    assert!(published(&dir.path().join("events-site")));
}

/// `--part-size` and `--multipart-threshold` (and their `[target]` keys) take sizes the way
/// their help prints the defaults ("8 MiB"), as well as plain bytes.
#[test]
fn sizes_take_units_as_their_help_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let golden = s(&fixture("apko/golden"));
    let site = s(&dir.path().join("site"));
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "publish", &golden, "--repo", "a", "--tag", "x", "--to", &site, "-q",
        ];
        args.extend(extra);
        regpress(&args)
    };
    for sizes in [
        ["--part-size", "8 MiB", "--multipart-threshold", "64MiB"],
        ["--part-size", "5242880", "--multipart-threshold", "100MB"],
    ] {
        publish(&sizes).ok();
    }
    for (flag, value, reason) in [
        ("--part-size", "8XB", "\"8XB\" is not a size"),
        ("--multipart-threshold", "lots", "\"lots\" is not a size"),
        ("--part-size", "4MiB", "5 MiB"),
    ] {
        let out = publish(&[flag, value]);
        assert_eq!(out.code, 2, "{flag} {value}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag) || out.stderr.contains("part size"),
            "{flag} {value}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(reason),
            "{flag} {value}: {}",
            out.stderr
        );
    }
    let config = dir.path().join("regpress.toml");
    let image = format!("[[image]]\nlayout = \"{golden}\"\nrepository = \"a\"\ntags = [\"x\"]\n");
    std::fs::write(&config, format!("[target]\npart_size = \"8 MiB\"\n{image}")).unwrap();
    let path = s(&config);
    regpress(&["publish", "--config", &path, "--to", &site, "-q"]).ok();
    std::fs::write(
        &config,
        format!("[target]\npart_size = \"8 parsecs\"\n{image}"),
    )
    .unwrap();
    let out = regpress(&["publish", "--config", &path, "--to", &site, "-q"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("\"8 parsecs\" is not a size") && out.stderr.contains(&path),
        "{}",
        out.stderr
    );
}
