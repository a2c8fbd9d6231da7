//! Helpers shared by the end-to-end tests: run the built binary, serve a site, call skopeo,
//! snapshot a directory to prove it was left untouched.

#![allow(dead_code)]

pub mod action;
pub mod auth;
pub mod consistency;
pub mod credential;
pub mod edge;
pub mod garage;
pub mod oidc;
pub mod proxy;
pub mod receiver;
pub mod signing;
pub mod synth;
pub mod tuf;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The result of running a command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Run `regpress` with `args`.
pub fn regpress(args: &[&str]) -> Run {
    regpress_with_env(args, &[])
}

/// Run `regpress` with `args` and extra environment variables.
pub fn regpress_with_env(args: &[&str], env: &[(String, String)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_regpress"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run regpress");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run skopeo; panics with a hint when it is not installed.
pub fn skopeo(args: &[&str]) -> Run {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run skopeo ({e}); ./tests/run.sh installs it (apt-get install skopeo)")
        });
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `regpress serve`, stopped on drop.
pub struct Server {
    child: Child,
    /// `host:port`.
    pub addr: String,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::spawn(&["serve", &dir.to_string_lossy(), "--listen", "127.0.0.1:0"])
    }

    /// Run `regpress ARGS` and wait for the line ending in `http://host:port/` it prints once
    /// listening.
    pub fn spawn(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_regpress"));
        command.args(args);
        Server::spawn_command(command, args)
    }

    /// Run `command` (which runs `regpress ARGS`, perhaps under a shell that sets limits first)
    /// and wait for its banner as [`Server::spawn`] does; stdout is taken over, the rest is the
    /// caller's.
    pub fn spawn_command(mut command: Command, args: &[&str]) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("start regpress");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read banner");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .filter(|_| line.contains("http://"))
            .unwrap_or_else(|| panic!("regpress {args:?} printed no URL (exited?): {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Server { child, addr }
    }

    /// The server's process id (for `/proc/<pid>/…`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `docker://host:port/<reference>`.
    pub fn image(&self, reference: &str) -> String {
        format!("docker://{}/{reference}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copy the directory tree `from` to `to` (a layout with its `sboms/`, say), creating `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let dest = to.join(entry.path().strip_prefix(from).expect("under from"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Every file under `dir` with its bytes and modification time.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let meta = entry.metadata().expect("stat");
            out.insert(
                entry.path().to_path_buf(),
                (
                    std::fs::read(entry.path()).expect("read"),
                    meta.modified().expect("mtime"),
                ),
            );
        }
    }
    out
}

/// The repository's fixtures directory.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// The golden apko image's digest: sha256 of its `index.json`.
pub fn golden_digest() -> String {
    let bytes = std::fs::read(fixture("apko/golden/index.json")).expect("read golden index.json");
    regpress::digest::Digest::of_bytes(&bytes)
        .as_str()
        .to_string()
}

/// Publish `layout` to `site` as apko/golden:latest, with `extra` flags.
pub fn publish_as_golden(layout: &Path, site: &Path, extra: &[&str]) -> Run {
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

/// Parse a `--report` file.
pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read report")).expect("report is JSON")
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Pull `image` (`docker://host/repo:tag`) with `skopeo copy --all` into an OCI layout, check
/// every digest in it with `regpress verify`, and return the layout's `index.json`.
pub fn pull_all(image: &str, dest: &Path) -> serde_json::Value {
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        image,
        &format!("oci:{}:pulled", dest.display()),
    ])
    .ok();
    regpress(&["verify", &s(dest)]).ok();
    serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap()
}

/// The platform manifest digests of the image index pulled into `dest`. skopeo 1.9 rewrites an
/// index it copies when it holds fields its library predates (apko's `artifactType`), so the
/// index digest can differ while every platform manifest and blob stays byte-identical.
pub fn pulled_platforms(dest: &Path) -> Vec<String> {
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    let digest = top["manifests"][0]["digest"].as_str().unwrap();
    platforms_of(&std::fs::read(synth::blob_path(dest, digest)).unwrap())
}

/// The platform manifest digests listed by an image index.
pub fn platforms_of(index_bytes: &[u8]) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(index_bytes).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Pull one platform of `image` with `skopeo copy --override-arch`, verify it, and return its
/// manifest digest.
pub fn platform_digest(image: &str, arch: &str, dest: &Path) -> String {
    skopeo(&[
        "copy",
        "--override-arch",
        arch,
        "--src-tls-verify=false",
        image,
        &format!("oci:{}:{arch}", dest.display()),
    ])
    .ok();
    regpress(&["verify", &s(dest), "--ref", arch]).ok();
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == arch)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The tags of a tag list, without the `sha256-<hex>` referrers tags.
pub fn user_tags(list: &serde_json::Value) -> Vec<&str> {
    list["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| !t.starts_with("sha256-"))
        .collect()
}
