//! The `regpress-auth` binary as an operator runs it: `keygen` prints a key `serve` accepts,
//! `serve` starts from the shipped `examples/auth.toml` and answers, and a bad config or flag
//! stops it with exit code 2 naming what is wrong (the codes `regpress auth` has).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use regpress_auth::token::Signer;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regpress-auth"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run regpress-auth")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/auth.toml")
}

/// `examples/auth.toml` and a fresh key from `keygen`, in `dir`.
fn config_in(dir: &Path) -> PathBuf {
    let key = run(&["keygen"]);
    assert_eq!(key.status.code(), Some(0), "{}", text(&key.stderr));
    std::fs::write(dir.join("auth-key.pem"), &key.stdout).expect("write key");
    let config = dir.join("auth.toml");
    std::fs::copy(example_config(), &config).expect("copy examples/auth.toml");
    config
}

/// Kills the handler when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn keygen_prints_a_fresh_p256_key_the_signer_accepts() {
    let first = run(&["keygen"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let pem = text(&first.stdout);
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    assert!(pem.ends_with("-----END PRIVATE KEY-----\n"), "{pem}");
    assert!(
        !pem.contains('\r'),
        "LF line endings, as openssl writes them"
    );
    assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
    Signer::new(
        &pem,
        "https://cr.example.com/token",
        "cr.example.com",
        Duration::from_secs(300),
    )
    .expect("the key signs registry tokens");
    assert_ne!(run(&["keygen"]).stdout, first.stdout, "a new key each time");
}

#[test]
fn serve_starts_from_the_example_config_and_serves_its_jwks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path());
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start regpress-auth serve");
    let stdout = child.stdout.take().expect("stdout");
    let _running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the start line");
    assert!(
        line.starts_with("regpress auth for cr.example.com "),
        "{line}"
    );
    let addr = line
        .trim_end()
        .rsplit("http://")
        .next()
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    let mut conn = TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"crv\":\"P-256\""), "{response}");
    assert!(
        !response.contains("\"d\":"),
        "private key leaked: {response}"
    );
}

#[test]
fn a_missing_or_wrong_config_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let out = run(&["serve", "--config", &missing.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: cannot read config {}: ",
            missing.display()
        )),
        "{err}"
    );

    let config = config_in(dir.path());
    let wrong = std::fs::read_to_string(&config)
        .expect("read config")
        .replace("service = \"cr.example.com\"", "service = \"\"");
    std::fs::write(&config, wrong).expect("write config");
    let out = run(&["serve", "--config", &config.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: config {}: service must not be empty",
            config.display()
        )
    );
    assert!(
        out.stdout.is_empty(),
        "nothing served: {}",
        text(&out.stdout)
    );
}

#[test]
fn bad_flags_exit_2_and_help_says_what_each_command_does() {
    assert_eq!(
        run(&["serve"]).status.code(),
        Some(2),
        "--config is required"
    );
    assert_eq!(
        run(&["serve", "--config", "a.toml", "--listen", "nowhere"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["push"]).status.code(), Some(2));

    let help = text(&run(&["--help"]).stdout);
    assert!(
        help.contains("registry tokens from OIDC identity"),
        "{help}"
    );
    assert!(help.contains("2  usage error"), "{help}");
    let serve = text(&run(&["serve", "--help"]).stdout);
    for part in [
        "/token",
        "/check",
        "/.well-known/jwks.json",
        "--config <FILE>",
        "--listen <ADDR>",
    ] {
        assert!(serve.contains(part), "{part:?} not in {serve}");
    }
    let version = run(&["--version"]);
    assert_eq!(
        text(&version.stdout).trim_end(),
        format!("regpress-auth {}", env!("CARGO_PKG_VERSION"))
    );
}
