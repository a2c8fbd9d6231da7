//! The private-repository parts of the end-to-end tests: `regpress auth serve` configured from
//! `examples/auth.toml`, and a real nginx configured from `examples/nginx.conf`, each with the
//! test's addresses swapped in (every swap must find its text, so the examples cannot drift
//! away from what is tested).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Server, s};

/// The example's service name, kept by the tests: the `aud` of ID tokens and registry tokens.
pub const SERVICE: &str = "cr.example.com";
const EXAMPLE_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// `text` with each `(from, to)` replaced, insisting that `from` occurs.
fn swap(name: &str, mut text: String, swaps: &[(&str, &str)]) -> String {
    for (from, to) in swaps {
        assert!(
            text.contains(from),
            "examples/{name} no longer contains {from:?}: update tests/common/auth.rs"
        );
        text = text.replace(from, to);
    }
    text
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Publish the golden fixture as `repo:latest` for each of `repos` into the directory `site`.
pub fn publish_golden(site: &Path, repos: &[&str]) {
    let golden = s(&super::fixture("apko/golden"));
    for repo in repos {
        super::regpress(&[
            "publish",
            &golden,
            "-q",
            "--repo",
            repo,
            "--tag",
            "latest",
            "--to",
            &s(site),
        ])
        .ok();
    }
}

/// A free loopback port (bound and released: good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The JWKS cooldown of test configs: the shortest the handler accepts, so tests can watch it.
pub const JWKS_COOLDOWN: Duration = Duration::from_secs(regpress::auth::config::MIN_JWKS_COOLDOWN);

/// Write `examples/auth.toml` with a fresh signing key into `dir`, trusting `issuer` in place of
/// GitHub's and announcing `realm`; the JWKS cooldown is [`JWKS_COOLDOWN`].
pub fn write_config(dir: &Path, issuer: &str, realm: &str) -> PathBuf {
    let key = regpress::auth::token::generate_key().expect("generate key");
    std::fs::write(dir.join("auth-key.pem"), key).expect("write key");
    let config = swap(
        "auth.toml",
        example("auth.toml"),
        &[
            (EXAMPLE_ISSUER, issuer),
            ("https://cr.example.com/token", realm),
            (
                "jwks_cooldown = 30",
                &format!("jwks_cooldown = {}", JWKS_COOLDOWN.as_secs()),
            ),
        ],
    );
    let path = dir.join("auth.toml");
    std::fs::write(&path, config).expect("write auth.toml");
    path
}

/// `regpress auth serve` with the example config, on a free port.
pub fn start_auth(dir: &Path, issuer: &str, realm: &str) -> Server {
    serve_config(&write_config(dir, issuer, realm))
}

/// `regpress auth serve --config <config>` on a free port.
pub fn serve_config(config: &Path) -> Server {
    Server::spawn(&[
        "auth",
        "serve",
        "--config",
        &s(config),
        "--listen",
        "127.0.0.1:0",
    ])
}

/// `regpress auth serve --config <config> --listen <addr>` (a restart keeps its address).
pub fn serve_config_at(config: &Path, addr: &str) -> Server {
    Server::spawn(&["auth", "serve", "--config", &s(config), "--listen", addr])
}

/// Send the handler `auth` SIGHUP (it reloads its keys) and wait until the JWKS at `addr`
/// lists `keys` keys.
pub fn reload_keys(auth: &Server, addr: &str, keys: usize) {
    let sent = Command::new("kill")
        .args(["-HUP", &auth.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(sent.success(), "kill -HUP failed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jwks: serde_json::Value =
            reqwest::blocking::get(format!("http://{addr}/.well-known/jwks.json"))
                .and_then(|r| r.json())
                .expect("JWKS");
        if jwks["keys"].as_array().map(Vec::len) == Some(keys) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the handler did not reload: {jwks}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rotate the signing key of the handler configured by `config` (from `examples/auth.toml`)
/// as docs/pulling-private-images.md says: the key becomes `auth-key-old.pem`, a new
/// `auth-key.pem` is made, and `previous_keys` names the old one. Returns the config text.
/// The handler uses it once it reloads its keys ([`reload_keys`]).
pub fn rotate_key(config: &Path) -> String {
    let dir = config.parent().expect("config directory");
    std::fs::rename(dir.join("auth-key.pem"), dir.join("auth-key-old.pem")).expect("keep old key");
    let key = super::regpress(&["auth", "keygen"]);
    std::fs::write(dir.join("auth-key.pem"), &key.ok().stdout).expect("write new key");
    let text = swap(
        "auth.toml",
        std::fs::read_to_string(config).expect("read config"),
        &[(
            "# previous_keys = [\"auth-key-old.pem\"]",
            "previous_keys = [\"auth-key-old.pem\"]",
        )],
    );
    std::fs::write(config, &text).expect("write config");
    text
}

/// A running nginx (`master_process off`, a child of the test), stopped on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Nginx {
    /// Run nginx with `examples/nginx.conf` listening on `port`, proxying to `bucket` and
    /// `auth` (`host:port`); everything nginx writes stays in `dir`.
    pub fn start(dir: &Path, port: u16, bucket: &str, auth: &str) -> Nginx {
        let addr = format!("127.0.0.1:{port}");
        let site = swap(
            "nginx.conf",
            example("nginx.conf"),
            &[
                ("server 127.0.0.1:5000;", &format!("server {bucket};")),
                ("server 127.0.0.1:5001;", &format!("server {auth};")),
                ("listen 80;", &format!("listen {addr};")),
            ],
        );
        std::fs::write(dir.join("regpress.conf"), site).expect("write site");
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/regpress.conf;\n}}\n"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, main).expect("write nginx.conf");
        let child = Command::new(nginx_binary())
            .args([
                "-p",
                &s(dir),
                "-e",
                &format!("{d}/error.log"),
                "-c",
                &s(&conf),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run nginx ({e}); ./tests/run.sh installs it (apt-get install nginx)")
            });
        let mut nginx = Nginx {
            child,
            dir: dir.to_path_buf(),
            addr,
        };
        nginx.wait_listening();
        nginx
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", self.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx not listening:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// `docker://127.0.0.1:PORT/<reference>`.
    pub fn image(&self, reference: &str) -> String {
        format!("docker://{}/{reference}", self.addr)
    }

    /// Send `GET <raw_path>` exactly as written (no client normalises it); return the status
    /// and the whole response.
    pub fn raw_get(&self, raw_path: &str) -> (u16, String) {
        self.raw_request(raw_path, &[])
    }

    /// `GET <raw_path>` exactly as written, with `headers` (name, value) added after `Host`,
    /// each sent as given (several with one name are sent as several headers).
    pub fn raw_request(&self, raw_path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut request = format!("GET {raw_path} HTTP/1.0\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = TcpStream::connect(&self.addr).expect("connect nginx");
        stream.write_all(request.as_bytes()).expect("send");
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let response = String::from_utf8_lossy(&bytes).into_owned();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {response:?}"));
        (status, response)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx from PATH, or Debian's /usr/sbin (not on every user's PATH).
fn nginx_binary() -> String {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = Path::new(dir).join("nginx");
        if candidate.is_file() {
            return s(&candidate);
        }
    }
    "/usr/sbin/nginx".to_string()
}

/// `out` (a client's pull) failed as unauthorized (401).
#[track_caller]
pub fn assert_refused(out: &super::Run, what: &str) {
    assert_ne!(out.code, 0, "{what}: pulled anyway:\n{}", out.stdout);
    assert!(
        out.stderr.contains("unauthorized") || out.stderr.contains("401"),
        "{what}: not refused as unauthorized:\n{}",
        out.stderr
    );
}
