//! Passwordless pulls end to end with real clients: docker (a dockerd of the test's own) and
//! podman pull a private image through nginx (`examples/nginx.conf`, `auth_request` to
//! `regpress auth serve` with `examples/auth.toml`) with nothing configured but `credHelpers`
//! pointing at `docker-credential-regpress`, in a GitHub-Actions-shaped environment whose
//! `ACTIONS_ID_TOKEN_REQUEST_URL` is the tests' own issuer. Nothing secret is stored.
//!
//! Pull tokens (`regpress auth pull-token create|revoke`) pull with docker and skopeo, stop
//! within the revocation delay, and are refused when expired, for another repository or for one
//! the config forbids; a key rotation keeps tokens minted before it working; and the audit log
//! holds every decision `/check` made about a private repository.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::auth::SERVICE;
use common::auth::{
    Nginx, assert_refused, free_port, publish_golden, rotate_key, serve_config_at, write_config,
};
use common::credential::{HELPER, helper, install, with_helper_env};
use common::edge::{Daemon, Docker};
use common::oidc::TestIssuer;
use common::receiver::Receiver;
use common::{Run, Server, regpress, s, skopeo};
use serde_json::{Value, json};

/// Private images (`acme/app`, `acme/other`, `acme/secrets/db`) and a public one
/// (`public/base`) behind nginx and the handler (the example config, revocations read every
/// [`REVOCATION_CHECK`] second).
struct Registry {
    issuer: TestIssuer,
    /// Where the audit's events are POSTed.
    events: Receiver,
    nginx: Nginx,
    _serve: Server,
    auth: Server,
    auth_addr: String,
    config: PathBuf,
    tmp: tempfile::TempDir,
}

/// Seconds between reads of the revocation list in these tests.
const REVOCATION_CHECK: u64 = 1;

fn registry() -> Registry {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    publish_golden(
        &site,
        &["acme/app", "acme/other", "acme/secrets/db", "public/base"],
    );
    let serve = Server::start(&site);
    let port = free_port();
    let issuer = TestIssuer::start();
    let realm = format!("http://127.0.0.1:{port}/token");
    let (auth_dir, nginx_dir) = (tmp.path().join("auth"), tmp.path().join("nginx"));
    std::fs::create_dir_all(&auth_dir).unwrap();
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let config = write_config(&auth_dir, &issuer.url, &realm);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("revocation_check = 10"),
        "examples/auth.toml changed"
    );
    let events = Receiver::start();
    let text = text
        .replace(
            "revocation_check = 10",
            &format!("revocation_check = {REVOCATION_CHECK}"),
        )
        .replace(
            "# events_url = \"https://hooks.example.com/regpress\"",
            &format!("events_url = \"http://{}/audit\"", events.addr),
        );
    assert!(
        text.contains("events_url = \"http://"),
        "examples/auth.toml changed"
    );
    std::fs::write(&config, text).unwrap();
    let auth_addr = format!("127.0.0.1:{}", free_port());
    let auth = serve_config_at(&config, &auth_addr);
    let nginx = Nginx::start(&nginx_dir, port, &serve.addr, &auth_addr);
    Registry {
        issuer,
        events,
        nginx,
        _serve: serve,
        auth,
        auth_addr,
        config,
        tmp,
    }
}

impl Registry {
    /// The handler's directory (config, keys, revocation list, audit log).
    fn auth_dir(&self) -> &Path {
        self.config.parent().unwrap()
    }

    /// Have the handler reload its keys (SIGHUP), and wait until its JWKS has `keys` keys.
    fn reload_keys(&self, keys: usize) {
        common::auth::reload_keys(&self.auth, &self.auth_addr, keys);
    }

    /// `regpress auth pull-token create` for `repos`, valid for `ttl`, named `name`.
    fn pull_token(&self, name: &str, repos: &[&str], ttl: &str) -> String {
        let mut args = vec!["auth", "pull-token", "create", "--config"];
        let config = s(&self.config);
        args.push(&config);
        for repo in repos {
            args.extend(["--repo", repo]);
        }
        args.extend(["--ttl", ttl, "--name", name]);
        let out = regpress(&args);
        out.ok();
        assert!(out.stderr.contains("jti "), "{}", out.stderr);
        out.stdout.trim().to_string()
    }

    /// `skopeo inspect --raw` of `reference` with `user:password`.
    fn inspect(&self, user: &str, password: &str, reference: &str) -> Run {
        skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{user}:{password}"),
            &self.nginx.image(reference),
        ])
    }

    /// A registry token from `/token` through nginx for `user:password`, pulling `repo`.
    fn registry_token(
        &self,
        user: &str,
        password: &str,
        repo: &str,
    ) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .get(format!("http://{}/token", self.nginx.addr))
            .query(&[
                ("service", SERVICE),
                ("scope", &format!("repository:{repo}:pull")),
            ])
            .basic_auth(user, Some(password))
            .send()
            .expect("/token")
    }

    /// The status of `GET /v2/<repo>/manifests/latest` through nginx with `token`.
    fn manifest_status(&self, repo: &str, token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .get(format!(
                "http://{}/v2/{repo}/manifests/latest",
                self.nginx.addr
            ))
            .header("Accept", "application/vnd.oci.image.index.v1+json")
            .bearer_auth(token)
            .send()
            .expect("GET manifest")
            .status()
            .as_u16()
    }

    /// Every complete line of the audit log, parsed, once one satisfies `until` (the handler
    /// writes the log on a thread of its own, after answering), or after 10 s.
    fn audit_until(&self, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text =
                std::fs::read_to_string(self.auth_dir().join("audit.jsonl")).unwrap_or_default();
            let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
            let lines: Vec<Value> = complete
                .lines()
                .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
                .collect();
            if lines.iter().any(&until) || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

fn token_of(response: reqwest::blocking::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    body["token"].as_str().unwrap().to_string()
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
    install(&host, &docker_config, &authfile);
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

#[test]
fn pull_tokens_pull_with_docker_and_skopeo_and_stop_once_revoked() {
    let r = registry();
    let token = r.pull_token("ci", &["acme/**"], "1d");
    // skopeo: acme/app and acme/other pull; acme/secrets/db is forbidden to pull tokens; the
    // token's name is its username.
    r.inspect("ci", &token, "acme/app:latest").ok();
    r.inspect("ci", &token, "acme/other:latest").ok();
    assert_refused(
        &r.inspect("ci", &token, "acme/secrets/db:latest"),
        "forbidden",
    );
    assert_refused(
        &r.inspect("someone", &token, "acme/app:latest"),
        "wrong name",
    );
    // One for acme/other only pulls nothing else.
    let other = r.pull_token("other", &["acme/other"], "1h");
    r.inspect("other", &other, "acme/other:latest").ok();
    assert_refused(
        &r.inspect("other", &other, "acme/app:latest"),
        "other repository",
    );
    // Longer than max_ttl: never made.
    let long = regpress(&[
        "auth",
        "pull-token",
        "create",
        "--config",
        &s(&r.config),
        "--repo",
        "acme/app",
        "--ttl",
        "91d",
        "--name",
        "x",
    ]);
    assert_eq!(long.code, 2);
    assert!(long.stderr.contains("max_ttl"), "{}", long.stderr);
    // Expired (signed by the handler's key, an hour ago): refused.
    let expired = forge_pull_token(&r, -3600);
    assert_refused(&r.inspect("ci", &expired, "acme/app:latest"), "expired");
    // An ID token is no pull token, and a pull token is no registry token.
    assert_eq!(r.manifest_status("acme/app", &token), 401);

    // docker logs in with the pull token and pulls.
    let dockerd = Daemon::dockerd(&r.tmp.path().join("docker"));
    let docker = Docker::new(&dockerd, r.tmp.path());
    let host = r.nginx.addr.clone();
    docker.login(&host, "ci", &token).ok();
    docker
        .run(&["pull", &format!("{host}/acme/app:latest")])
        .ok();

    // Revoked: /token refuses it, and /check the registry token minted for it, within the delay.
    let registry_token = token_of(r.registry_token("ci", &token, "acme/app"));
    assert_eq!(r.manifest_status("acme/app", &registry_token), 200);
    let revoked_at = std::time::Instant::now();
    regpress(&[
        "auth",
        "pull-token",
        "revoke",
        "--config",
        &s(&r.config),
        &token,
    ])
    .ok();
    let deadline = revoked_at + std::time::Duration::from_secs(REVOCATION_CHECK + 2);
    while r.manifest_status("acme/app", &registry_token) != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "still pulling after revocation"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("revocation honoured after {:?}", revoked_at.elapsed());
    assert_eq!(r.registry_token("ci", &token, "acme/app").status(), 401);
    assert_refused(&r.inspect("ci", &token, "acme/app:latest"), "revoked");
    docker
        .run(&["rmi", &format!("{host}/acme/app:latest")])
        .ok();
    let refused = docker.run(&["pull", &format!("{host}/acme/app:latest")]);
    assert_ne!(refused.code, 0, "docker pulled with a revoked pull token");
    // The other token is untouched.
    r.inspect("other", &other, "acme/other:latest").ok();

    // Every decision about a private repository is in the audit log: the pull token's pulls,
    // docker's, the refusals; with who, from where, with what.
    // The revoked pull token's refusal is the last decision made.
    let audit = r.audit_until(|e| {
        e["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("revoked"))
    });
    let by = |identity: &str, status: u64| {
        audit
            .iter()
            .filter(|e| e["data"]["identity"] == identity && e["data"]["status"] == status)
            .count()
    };
    assert!(by("pull-token:ci", 200) >= 4, "{audit:#?}");
    assert!(by("pull-token:ci", 401) >= 1, "{audit:#?}");
    assert!(by("anonymous", 401) >= 1, "{audit:#?}");
    assert!(audit.iter().all(|e| {
        e["type"] == "dev.regpress.pull"
            && e["data"]["repository"]
                .as_str()
                .is_some_and(|r| r.starts_with("acme/"))
            && e["data"]["remote_address"] == "127.0.0.1"
    }));
    let docker_pull = audit
        .iter()
        .find(|e| {
            e["data"]["identity"] == "pull-token:ci"
                && e["data"]["user_agent"]
                    .as_str()
                    .is_some_and(|u| u.contains("docker"))
                && e["data"]["type"] == "manifest"
        })
        .unwrap_or_else(|| panic!("no docker pull in {audit:#?}"));
    assert_eq!(docker_pull["subject"], "acme/app:latest");
    assert!(
        docker_pull["data"]["pull_token"]
            .as_str()
            .is_some_and(|j| j.len() == 32)
    );
    assert!(docker_pull["data"]["jti"].as_str().is_some());
    let revoked = audit
        .iter()
        .find(|e| {
            e["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("revoked"))
        })
        .unwrap_or_else(|| panic!("no revoked refusal in {audit:#?}"));
    assert_eq!(revoked["data"]["status"], 401);
    // The same events, POSTed in batches to the events receiver.
    let posted = r.events.events(audit.len());
    let ids = |events: Vec<&Value>| {
        let mut ids: Vec<String> = events.iter().map(|e| e["id"].to_string()).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        ids(posted.iter().map(|(_, e)| e).collect()),
        ids(audit.iter().collect()),
        "the POSTed events are not the logged ones"
    );
    assert!(
        posted
            .iter()
            .all(|(head, _)| head.contains("content-type: application/cloudevents-batch+json")),
        "{posted:?}"
    );
}

/// A pull token for `acme/**` named `ci`, signed with the handler's key, issued an hour
/// before now + `exp_offset` and expiring at it.
fn forge_pull_token(r: &Registry, exp_offset: i64) -> String {
    let pem = std::fs::read_to_string(r.auth_dir().join("auth-key.pem")).unwrap();
    let signer =
        regpress::auth::token::Signer::new(&pem, "x", "x", std::time::Duration::from_secs(60))
            .unwrap();
    let kid = signer.jwks()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let exp = now + exp_offset;
    let realm = format!("http://{}/token", r.nginx.addr);
    let claims = json!({
        "iss": realm, "sub": "pull-token:ci", "aud": format!("{SERVICE}/pull-token"),
        "exp": exp, "iat": exp - 3600, "nbf": exp - 3600, "jti": "0".repeat(32),
        "name": "ci", "repositories": ["acme/**"],
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid);
    header.typ = Some(regpress::auth::token::PULL_TOKEN_TYPE.to_string());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[test]
fn a_key_rotation_loses_no_pull() {
    let r = registry();
    let host = r.nginx.addr.clone();
    let id_token = r.issuer.id_token("acme/app", SERVICE);
    let before = token_of(r.registry_token("x", &id_token, "acme/app"));
    let pull_token = r.pull_token("ci", &["acme/app"], "1d");
    assert_eq!(r.manifest_status("acme/app", &before), 200);
    let jwks = |r: &Registry| -> Vec<String> {
        let doc: Value = reqwest::blocking::get(format!("http://{host}/.well-known/jwks.json"))
            .unwrap()
            .json()
            .unwrap();
        let _ = r;
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let old_kids = jwks(&r);
    assert_eq!(old_kids.len(), 1);

    // The procedure of docs/pulling-private-images.md: a new key signs, the old one is kept
    // as a previous key, the handler reloads its keys on SIGHUP.
    let text = rotate_key(&r.config);
    // Pulls keep coming while the handler reloads its keys: every one of them must pass.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pulling = {
        let (stop, url, token) = (
            stop.clone(),
            format!("http://{host}/v2/acme/app/manifests/latest"),
            before.clone(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let status = client
                    .get(&url)
                    .header("Accept", "application/vnd.oci.image.index.v1+json")
                    .bearer_auth(&token)
                    .send()
                    .map_or(0, |r| r.status().as_u16());
                statuses.push(status);
            }
            statuses
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    r.reload_keys(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let statuses = pulling.join().unwrap();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    eprintln!(
        "{} pulls during the reload, {failed} failed",
        statuses.len()
    );
    assert_eq!(failed, 0, "pulls lost during the rotation: {statuses:?}");

    let kids = jwks(&r);
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(
        kids[1], old_kids[0],
        "the old key is published after the new one"
    );
    // Minted before: still pulls. Minted after: signed by the new key, pulls.
    assert_eq!(r.manifest_status("acme/app", &before), 200);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-registry-token",
        &before,
        &r.nginx.image("acme/app:latest"),
        &format!("oci:{}:before", r.tmp.path().join("before").display()),
    ])
    .ok();
    let after = token_of(r.registry_token("x", &id_token, "acme/app"));
    let kid_of = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_eq!(kid_of(&after), kids[0]);
    assert_eq!(r.manifest_status("acme/app", &after), 200);
    // A pull token made before the rotation still pulls.
    r.inspect("ci", &pull_token, "acme/app:latest").ok();
    // Once the old key is dropped (after the longest pull token it signed has expired), its
    // tokens stop.
    std::fs::write(
        &r.config,
        text.replace("\nprevious_keys = [\"auth-key-old.pem\"]", "\n"),
    )
    .unwrap();
    r.reload_keys(1);
    assert_eq!(jwks(&r).len(), 1);
    assert_eq!(r.manifest_status("acme/app", &before), 401);
    assert_eq!(r.manifest_status("acme/app", &after), 200);
}
