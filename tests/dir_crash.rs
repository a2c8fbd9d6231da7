//! The directory target after a kill at any point of a publish: what it serves is never wrong,
//! and a re-run converges. The kill is real: `strace` delivers SIGKILL to regpress on entry to
//! its n-th rename (every object is placed by two renames, record then body), for every n.
//!
//! The dangerous case is a tag moving to another image index of the same length (digests are
//! fixed length, so this is common): killed between the record's rename and the body's, the
//! new record stands beside the old bytes.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::synth::{self, Flavor, Generated};
use common::{copy_dir, regpress, report, s};
use regpress::store::Store;
use regpress::store::dir::DirStore;

/// One generated image called `app`: every seed gives an index of the same length.
fn image(dir: &Path, seed: u64) -> Generated {
    synth::apko_layout(
        dir,
        &synth::Image {
            name: "app",
            seed,
            base: &[],
            app_size: 5_000,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    )
}

fn config(path: &Path, layout: &Path) {
    let text = format!(
        "[[image]]\nlayout = \"{}\"\nrepository = \"app\"\ntags = [\"stable\"]\n",
        layout.display()
    );
    fs::write(path, text).unwrap();
}

/// `regpress publish` of `config` into `site`, one write at a time (so renames come in one
/// order, from one thread, and `strace` counts them in that order).
fn publish_args<'a>(config: &'a str, site: &'a str, report: &'a str) -> Vec<&'a str> {
    vec![
        "publish", "--config", config, "--to", site, "--jobs", "1", "--report", report,
    ]
}

/// What a reader of `site` would see, checked: every object listed has bytes that hash to the
/// digest its record gives, and is served with that record.
fn served_correctly(site: &Path, when: &str) -> Vec<String> {
    let store = DirStore::new("site", site.to_path_buf());
    let listed = store.list("v2/").unwrap();
    for info in &listed {
        let Some(recorded) = &info.sha256 else {
            // Its record describes other bytes (a kill between the two renames): not served.
            assert!(
                store.lookup(&info.key).is_none(),
                "{when}: {} served without a record that describes it",
                info.key
            );
            continue;
        };
        let bytes = store
            .get(&info.key)
            .unwrap()
            .unwrap_or_else(|| panic!("{when}: {} listed but not readable", info.key));
        let digest = regpress::digest::Digest::of_bytes(&bytes.bytes);
        assert_eq!(
            &digest, recorded,
            "{when}: {} holds other bytes than its record says",
            info.key
        );
        let (_, meta) = store
            .lookup(&info.key)
            .unwrap_or_else(|| panic!("{when}: {} listed but not served", info.key));
        assert_eq!(meta.sha256, digest.as_str(), "{when}: {}", info.key);
    }
    listed
        .into_iter()
        .filter(|i| i.sha256.is_some())
        .map(|i| i.key)
        .collect()
}

fn strace() -> &'static str {
    let found = Command::new("strace").arg("-V").output().is_ok();
    assert!(found, "strace is needed (tests/run.sh installs it)");
    "strace"
}

#[test]
fn a_kill_at_any_rename_serves_nothing_wrong_and_converges() {
    let strace = strace();
    let tmp = tempfile::tempdir().unwrap();
    let a = image(&tmp.path().join("a"), 1);
    let b = image(&tmp.path().join("b"), 2);
    assert_eq!(
        a.index_bytes.len(),
        b.index_bytes.len(),
        "same-length indexes"
    );
    assert_ne!(a.index_digest, b.index_digest);
    let (config_a, config_b) = (tmp.path().join("a.toml"), tmp.path().join("b.toml"));
    config(&config_a, &tmp.path().join("a"));
    config(&config_b, &tmp.path().join("b"));
    let rep = s(&tmp.path().join("report.json"));

    // The site before: `app:stable` is image a. Then a clean publish of b, for reference.
    let before = tmp.path().join("before");
    regpress(&publish_args(&s(&config_a), &s(&before), &rep)).ok();
    let reference = tmp.path().join("reference");
    copy_dir(&before, &reference);
    regpress(&publish_args(&s(&config_b), &s(&reference), &rep)).ok();
    let want = served_correctly(&reference, "reference");
    let want_tag = fs::read(reference.join("v2/app/manifests/stable")).unwrap();
    assert_eq!(want_tag, b.index_bytes);

    // How many renames a publish of b makes.
    let counted = tmp.path().join("counted");
    copy_dir(&before, &counted);
    let log = tmp.path().join("renames.log");
    let traced = Command::new(strace)
        .args([
            "-f",
            "-qq",
            "-o",
            &s(&log),
            "-e",
            "trace=rename,renameat,renameat2",
        ])
        .arg(env!("CARGO_BIN_EXE_regpress"))
        .args(publish_args(&s(&config_b), &s(&counted), &rep))
        .output()
        .unwrap();
    assert!(traced.status.success(), "{traced:?}");
    let renames = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("rename") && l.contains("= 0"))
        .count();
    assert!(renames >= 20, "{renames} renames");

    for n in 1..=renames {
        let when = format!("killed at rename {n} of {renames}");
        let site = tmp.path().join(format!("site-{n}"));
        copy_dir(&before, &site);
        let killed = Command::new(strace)
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=rename,renameat,renameat2",
            ])
            .arg("-e")
            .arg(format!(
                "inject=rename,renameat,renameat2:signal=KILL:when={n}"
            ))
            .arg(env!("CARGO_BIN_EXE_regpress"))
            .args(publish_args(&s(&config_b), &s(&site), &rep))
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{when}: it was not killed");
        served_correctly(&site, &when);
        // A tag is image a, image b, or (mid-move) absent; never a's bytes under b's record.
        let tag = DirStore::new("site", site.clone())
            .get("v2/app/manifests/stable")
            .unwrap()
            .map(|f| f.bytes);
        assert!(
            tag.is_none()
                || tag == Some(a.index_bytes.clone())
                || tag == Some(b.index_bytes.clone()),
            "{when}"
        );

        regpress(&publish_args(&s(&config_b), &s(&site), &rep)).ok();
        assert_eq!(
            served_correctly(&site, &when),
            want,
            "{when}: after a re-run"
        );
        assert_eq!(
            fs::read(site.join("v2/app/manifests/stable")).unwrap(),
            want_tag,
            "{when}"
        );
        regpress(&publish_args(&s(&config_b), &s(&site), &rep)).ok();
        assert_eq!(
            report(Path::new(&rep))["objects_written"],
            0,
            "{when}: converged"
        );
        fs::remove_dir_all(&site).unwrap();
    }
}
