//! Passwordless pulls end to end with real clients: docker (a dockerd of the test's own) and
//! podman pull a private image through nginx (`examples/nginx.conf`, `auth_request` to
//! `regpress auth serve` with `examples/auth.toml`) with nothing configured but `credHelpers`
//! pointing at `docker-credential-regpress`, in a GitHub-Actions-shaped environment whose
//! `ACTIONS_ID_TOKEN_REQUEST_URL` is the tests' own issuer. Nothing secret is stored.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::auth::{Nginx, free_port, publish_golden, start_auth};
use common::edge::{Daemon, Docker};
use common::oidc::TestIssuer;
use common::{Run, Server, s};
use serde_json::{Value, json};

/// The helper as cargo built it.
const HELPER: &str = env!("CARGO_BIN_EXE_docker-credential-regpress");

/// A private (`acme/app`) and a public (`public/base`) image behind nginx and the handler.
struct Registry {
    issuer: TestIssuer,
    nginx: Nginx,
    _serve: Server,
    _auth: Server,
    tmp: tempfile::TempDir,
}

fn registry() -> Registry {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    publish_golden(&site, &["acme/app", "public/base"]);
    let serve = Server::start(&site);
    let port = free_port();
    let issuer = TestIssuer::start();
    let realm = format!("http://127.0.0.1:{port}/token");
    let (auth_dir, nginx_dir) = (tmp.path().join("auth"), tmp.path().join("nginx"));
    std::fs::create_dir_all(&auth_dir).unwrap();
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let auth = start_auth(&auth_dir, &issuer.url, &realm);
    let nginx = Nginx::start(&nginx_dir, port, &serve.addr, &auth.addr);
    Registry {
        issuer,
        nginx,
        _serve: serve,
        _auth: auth,
        tmp,
    }
}

/// PATH with the helper's directory first, as `cargo install` would put it on PATH.
fn path_with_helper() -> String {
    let dir = Path::new(HELPER).parent().expect("helper directory");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `command` with the helper on PATH, no ID token source but `env`, and the helper's config
/// file at `config` (absent unless a test writes it).
fn with_helper_env(command: &mut Command, env: &[(String, String)], config: &Path) {
    command
        .env("PATH", path_with_helper())
        .env("REGPRESS_CREDENTIAL_HELPER_CONFIG", config)
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("REGPRESS_ID_TOKEN_FILE")
        .env_remove("REGPRESS_ID_TOKEN")
        .envs(env.iter().map(|(k, v)| (k, v)));
}

fn helper(args: &[&str]) -> Run {
    Command::new(HELPER)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run docker-credential-regpress")
        .into()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn podman(root: &Path, authfile: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args([
        "--root",
        &s(&root.join("root")),
        "--runroot",
        &s(&root.join("run")),
    ])
    .args(["--storage-driver", "vfs"])
    .args(args)
    .arg(format!("--authfile={}", authfile.display()));
    cmd
}

#[test]
fn docker_and_podman_pull_a_private_image_with_only_the_credential_helper() {
    let r = registry();
    let host = r.nginx.addr.clone();
    let dockerd = Daemon::dockerd(&r.tmp.path().join("docker"));
    let docker = Docker::new(&dockerd, r.tmp.path());
    let docker_config: PathBuf = docker.config.join("config.json");
    let authfile = r.tmp.path().join("containers").join("auth.json");
    let helper_config = r.tmp.path().join("credential-helper.toml");
    helper(&[
        "install",
        &host,
        "--docker-config",
        &s(&docker_config),
        "--authfile",
        &s(&authfile),
    ])
    .ok();
    let only_helpers = json!({"credHelpers": {host.clone(): "regpress"}});
    assert_eq!(read_json(&docker_config), only_helpers);
    assert_eq!(read_json(&authfile), only_helpers);
    let reference = format!("{host}/acme/app:latest");

    // No ID token anywhere: the helper fails (docker then pulls anonymously, and is refused;
    // the helper's reason is checked in the protocol test, docker does not show it).
    let mut pull = docker.command(&["pull", &reference]);
    with_helper_env(&mut pull, &[], &helper_config);
    let refused: Run = pull.output().unwrap().into();
    assert_ne!(refused.code, 0, "pulled without an ID token");
    assert!(refused.stderr.contains("denied"), "{}", refused.stderr);

    // A GitHub Actions job of acme/app: docker pulls, the helper having asked the job's token
    // service for the audience the registry's challenge names.
    let actions = r.issuer.actions_env("acme/app");
    let mut pull = docker.command(&["pull", &reference]);
    with_helper_env(&mut pull, &actions, &helper_config);
    let pulled: Run = pull.output().unwrap().into();
    pulled.ok();
    assert!(r.issuer.actions_hits() >= 1, "no ID token was asked for");
    let id = docker.run(&["image", "inspect", "--format", "{{.Id}}", &reference]);
    assert!(id.ok().stdout.starts_with("sha256:"), "{}", id.stdout);
    // Nothing was stored by the pull.
    assert_eq!(read_json(&docker_config), only_helpers);

    // A job of another repository gets an ID token, but the policy gives it nothing.
    let mut other = docker.command(&["pull", &format!("{host}/acme/app:latest")]);
    docker.run(&["rmi", &reference]).ok();
    with_helper_env(
        &mut other,
        &r.issuer.actions_env("acme/other"),
        &helper_config,
    );
    let refused: Run = other.output().unwrap().into();
    assert_ne!(refused.code, 0, "acme/other's job pulled acme/app");

    // podman, with the same helper through containers' auth.json, in acme/app's job again.
    let actions = r.issuer.actions_env("acme/app");
    let root = r.tmp.path().join("podman");
    let mut pull = podman(
        &root,
        &authfile,
        &["pull", "--tls-verify=false", &reference],
    );
    with_helper_env(&mut pull, &actions, &helper_config);
    let pulled: Run = pull.output().unwrap().into();
    pulled.ok();
    assert_eq!(read_json(&authfile), only_helpers);
}

#[test]
fn the_helper_speaks_the_protocol_and_its_config_overrides_the_audience() {
    let r = registry();
    let host = r.nginx.addr.clone();
    let config = r.tmp.path().join("credential-helper.toml");
    let get = |env: &[(String, String)]| -> Run {
        let mut cmd = Command::new(HELPER);
        cmd.arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        with_helper_env(&mut cmd, env, &config);
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{host}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().into()
    };
    let claims = |out: &Run| -> Value {
        let answer: Value = serde_json::from_str(&out.stdout).expect("get prints JSON");
        assert_eq!(answer["ServerURL"], host.as_str());
        assert_eq!(answer["Username"], "oidc");
        let token = answer["Secret"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    // The audience from the /v2/ challenge's service.
    let out = get(&r.issuer.actions_env("acme/app"));
    out.ok();
    assert_eq!(claims(&out)["aud"], "cr.example.com");
    assert!(out.stderr.contains("from GitHub Actions"), "{}", out.stderr);
    // The config's audience wins.
    std::fs::write(
        &config,
        format!("[host.\"{host}\"]\naudience = \"sts.example.com\"\n"),
    )
    .unwrap();
    let out = get(&r.issuer.actions_env("acme/app"));
    assert_eq!(claims(out.ok())["aud"], "sts.example.com");
    std::fs::remove_file(&config).unwrap();
    // A token file (a Kubernetes projected token), then the variable.
    let file = r.tmp.path().join("token");
    let token = r.issuer.id_token("acme/app", "cr.example.com");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let out = get(&[("REGPRESS_ID_TOKEN_FILE".to_string(), s(&file))]);
    assert!(
        out.ok().stderr.contains("REGPRESS_ID_TOKEN_FILE"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains(&token));
    let out = get(&[("REGPRESS_ID_TOKEN".to_string(), token.clone())]);
    assert!(out.ok().stdout.contains(&token));
    // A wrong request token: the token service's refusal, on stdout as the protocol has it.
    let mut bad = r.issuer.actions_env("acme/app");
    bad[1].1 = "not-the-job".to_string();
    let out = get(&bad);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("401"), "{}", out.stdout);
    // Nothing to give: the reason names every source.
    let out = get(&[]);
    assert_eq!(out.code, 1);
    for name in [
        "no OIDC ID token for cr.example.com",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "REGPRESS_ID_TOKEN_FILE",
    ] {
        assert!(out.stdout.contains(name), "{name} not in {}", out.stdout);
    }
    // store is refused, erase and list have nothing to do.
    let store = helper(&["store"]);
    assert_eq!(store.code, 1);
    assert!(
        store.stdout.contains("stores no credentials"),
        "{}",
        store.stdout
    );
    helper(&["erase"]).ok();
    assert_eq!(helper(&["list"]).ok().stdout.trim(), "{}");
}
