//! The trusted root through TUF, end to end with the real binary: a TUF repository the tests
//! build (tests/common/tuf.rs) is served on loopback by a static file server; publish's and
//! verify's signature checks fetch the test Sigstore's `trusted_root.json` from it, follow a
//! root key rotation, refuse expired, tampered and rolled-back metadata naming the role, and
//! fall back to the cache (then the built-in root) with a note of its age when the repository
//! cannot be reached. `--offline` never connects.

mod common;

use std::path::Path;

use common::signing::{COSIGN_SIGN, Signer, TestSigstore, World, attach_to_index};
use common::synth::{self, Flavor, Generated, Layer};
use common::tuf::{Role, StaticServer, TufRepo};
use common::{Run, regpress_with_env, s};

/// A small signed-by-key layout of the world's Sigstore, and the key's file.
fn signed_layout(w: &World) -> (Generated, String) {
    let base = vec![Layer::new(7, 2_000)];
    let g = synth::apko_layout(
        &w.path("layout"),
        &synth::Image {
            name: "tuf",
            seed: 7,
            base: &base,
            app_size: 1_000,
            platforms: &["amd64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        },
    );
    let signer = Signer::key();
    attach_to_index(
        &g,
        &w.sigstore
            .dsse_bundle(&signer, &g.index_digest, COSIGN_SIGN),
    );
    let key = w.path("cosign.pub");
    signer.write_public(&key);
    (g, s(&key))
}

/// A repository and a cache directory in `dir`, and what runs the binary against them.
struct Mirror {
    repo: TufRepo,
    server: Option<StaticServer>,
    url: String,
    cache: String,
}

impl Mirror {
    fn new(dir: &Path, trusted_root: &[u8]) -> Mirror {
        let repo = TufRepo::new(&dir.join("repo"), trusted_root);
        let server = StaticServer::start(&repo.dir);
        Mirror {
            url: server.url.clone(),
            repo,
            server: Some(server),
            cache: s(&dir.join("cache")),
        }
    }

    /// `regpress ARGS --tuf-mirror URL [--tuf-root ROOT] ...` with the cache in this dir.
    fn run(&self, args: &[&str], private: bool) -> Run {
        let root = s(&self.repo.initial_root());
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--tuf-mirror", &self.url]);
        if private {
            all.extend(["--tuf-root", &root]);
        }
        regpress_with_env(&all, &[("REGPRESS_TUF_CACHE".into(), self.cache.clone())])
    }

    fn show(&self, extra: &[&str]) -> Run {
        let mut args = vec!["trust-root", "show"];
        args.extend(extra);
        self.run(&args, true)
    }
}

fn root_of(sigstore: &TestSigstore) -> Vec<u8> {
    sigstore.trusted_root().to_string().into_bytes()
}

#[test]
fn the_current_root_is_fetched_and_a_root_rotation_is_followed() {
    let w = World::new();
    let (g, key) = signed_layout(&w);
    // First the repository holds another instance's root: the signature cannot verify.
    let stale = root_of(&TestSigstore::new());
    let mut mirror = Mirror::new(w.tmp.path(), &stale);
    let verify = ["verify", &s(&g.dir), "--require-signature", "--key", &key];
    let refused = mirror.run(&verify, true);
    assert_eq!(refused.code, 3, "{}\n{}", refused.stdout, refused.stderr);

    // Every key rotates (root v2 signed by the old and the new root key), and the new
    // release holds this Sigstore's root: the client walks to v2 and verifies with it.
    mirror.repo.rotate(&root_of(&w.sigstore));
    let verified = mirror.run(&verify, true);
    verified.ok();
    assert!(
        verified.stdout.contains("signed by key"),
        "{}",
        verified.stdout
    );
    assert!(
        !verified.stderr.contains("note:"),
        "fresh: no note\n{}",
        verified.stderr
    );
    let shown = mirror.show(&[]);
    shown.ok();
    assert!(
        shown.stdout.contains("fetched now through TUF") && shown.stdout.contains("(root v2)"),
        "{}",
        shown.stdout
    );

    // publish verifies the same way, and a key the policy names that did not sign is refused.
    let site = s(&w.path("site"));
    let publish = [
        "publish",
        &s(&g.dir),
        "--repo",
        "tuf",
        "--tag",
        "v1",
        "--to",
        &site,
        "--require-signature",
        "--key",
        &key,
    ];
    mirror.run(&publish, true).ok();
}

#[test]
fn expired_metadata_is_refused_naming_the_role() {
    for role in [Role::Timestamp, Role::Snapshot, Role::Targets] {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&TestSigstore::new());
        let mut mirror = Mirror::new(tmp.path(), &root);
        mirror.repo.release(&root, Some(role));
        let run = mirror.show(&[]);
        assert_eq!(run.code, 3, "{role:?}: {}\n{}", run.stdout, run.stderr);
        let expected = format!("{} metadata expired at 2001-01-01", role.name());
        assert!(
            run.stderr.contains("refused") && run.stderr.contains(&expected),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn tampered_metadata_is_refused_naming_the_role() {
    for (role, reason) in [
        (
            Role::Timestamp,
            "signature threshold not met for role timestamp",
        ),
        (Role::Snapshot, "snapshot.json: sha256 mismatch"),
        (Role::Targets, "targets.json: sha256 mismatch"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = Mirror::new(tmp.path(), &root_of(&TestSigstore::new()));
        mirror.repo.tamper(role);
        let run = mirror.show(&[]);
        assert_eq!(run.code, 3, "{role:?}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(reason), "{role:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing of it was trusted"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn an_older_timestamp_after_a_newer_one_is_a_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root_of(&TestSigstore::new());
    let mut mirror = Mirror::new(tmp.path(), &root);
    let first = std::fs::read(mirror.repo.file(Role::Timestamp)).unwrap();
    mirror.repo.release(&root, None);
    mirror.show(&[]).ok(); // the cache now trusts timestamp v2
    std::fs::write(mirror.repo.file(Role::Timestamp), first).unwrap();
    let run = mirror.show(&[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("rollback detected for timestamp: trusted version 2 > new version 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn offline_and_unreachable_use_the_cache_with_its_age_and_offline_never_connects() {
    let w = World::new();
    let (g, key) = signed_layout(&w);
    let mut mirror = Mirror::new(w.tmp.path(), &root_of(&w.sigstore));
    let verify = ["verify", &s(&g.dir), "--require-signature", "--key", &key];
    mirror.run(&verify, true).ok(); // fetched and cached

    // Offline: verified from the cache, the repository not even connected to.
    let before = mirror.server.as_ref().map(StaticServer::connections);
    let mut offline = verify.to_vec();
    offline.push("--offline");
    let run = mirror.run(&offline, true);
    run.ok();
    assert!(run.stdout.contains("signed by key"), "{}", run.stdout);
    let note = format!(
        "note: trusted root: the TUF cache of {}, refreshed",
        mirror.url
    );
    assert!(
        run.stderr.contains(&note) && run.stderr.contains("; offline"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("note:"))
            .count(),
        1,
        "one line: {}",
        run.stderr
    );
    let after = mirror.server.as_ref().map(StaticServer::connections);
    assert_eq!(before, after, "--offline connected to the repository");

    // The repository goes away (its port refuses connections): the cache, saying why.
    drop(mirror.server.take());
    let run = mirror.run(&verify, true);
    run.ok();
    assert!(
        run.stderr.contains(&note) && run.stderr.contains("could not be reached"),
        "{}",
        run.stderr
    );

    // A private repository with no cache has nothing to fall back to: refused, with both
    // reasons.
    let empty = Mirror {
        cache: s(&w.path("empty-cache")),
        server: None,
        url: mirror.url.clone(),
        repo: TufRepo::new(&w.path("other-repo"), b"{}"),
    };
    let run = empty.show(&[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no trusted root for TUF repository")
            && run.stderr.contains("holds no TUF metadata"),
        "{}",
        run.stderr
    );

    // A mirror of the public-good repository (Sigstore's built-in initial root) falls back to
    // the root built into regpress, dated by its newest key.
    let run = empty.run(&["trust-root", "show"], false);
    run.ok();
    assert!(
        run.stderr
            .contains("note: trusted root: the one built into regpress (its newest key from"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("https://rekor.sigstore.dev"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_trusted_root_file_and_a_tuf_mirror_together_are_a_usage_error() {
    let w = World::new();
    let (g, key) = signed_layout(&w);
    let run = regpress_with_env(
        &[
            "verify",
            &s(&g.dir),
            "--key",
            &key,
            "--trusted-root",
            &s(&w.root),
            "--tuf-mirror",
            "http://127.0.0.1:9/",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot be given with it"),
        "{}",
        run.stderr
    );
}
