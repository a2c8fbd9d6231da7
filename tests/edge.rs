//! The edge Worker (`edge/`) in workerd, through `edge/dev.sh` on a published site, with real
//! clients: docker, podman, containerd's `ctr`, skopeo and oras-py pull both fixtures through
//! it; HEAD of every tag and digest carries the right `Docker-Content-Digest` and
//! Content-Length; private repositories need a registry token from `regpress auth` (OIDC ID
//! token from the tests' issuer) and refuse every bad token and path trick; pull events reach a
//! receiver on loopback, and a dead receiver slows no pull.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::auth::{SERVICE, publish_golden, reload_keys, rotate_key, start_auth};
use common::credential::{install, with_helper_env};
use common::edge::{Daemon, Docker, Edge};
use common::oidc::{TestIssuer, unsigned};
use common::receiver::{Receiver, read_message};
use common::{Run, Server, fixture, golden_digest, pull_all, regpress, s, skopeo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use regpress::digest::Digest;
use serde_json::{Value, json};

/// A site with both fixtures (`examples/regpress.toml`: apko/golden, apko/top) and the golden
/// image once more as the private `acme/app` and `acme/other`.
fn site(dir: &Path) -> PathBuf {
    let site = dir.join("site");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/regpress.toml");
    regpress(&["publish", "-q", "--config", &s(&config), "--to", &s(&site)]).ok();
    publish_golden(&site, &["acme/app", "acme/other"]);
    site
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// GET and HEAD `url` (with `token`): the body, after checking that both answer
/// `Docker-Content-Digest` = sha256 of the GET body (and `expected`, for a digest), that HEAD's
/// Content-Length is the body's length, and that the registry API version is sent.
fn check_digest(url: &str, token: Option<&str>, expected: Option<&str>) -> Vec<u8> {
    let client = http();
    let with = |r: reqwest::blocking::RequestBuilder| match token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let get = with(client.get(url)).send().expect("GET");
    assert_eq!(get.status(), 200, "GET {url}");
    let get_digest = header(&get, "docker-content-digest");
    assert_eq!(
        header(&get, "docker-distribution-api-version"),
        "registry/2.0"
    );
    let body = get.bytes().expect("body").to_vec();
    let digest = Digest::of_bytes(&body).as_str().to_string();
    assert_eq!(get_digest, digest, "GET {url}");
    if let Some(expected) = expected {
        assert_eq!(digest, expected, "{url} holds other content");
    }
    let head = with(client.head(url)).send().expect("HEAD");
    assert_eq!(head.status(), 200, "HEAD {url}");
    assert_eq!(header(&head, "docker-content-digest"), digest, "HEAD {url}");
    assert_eq!(
        header(&head, "content-length"),
        body.len().to_string(),
        "HEAD {url}"
    );
    body
}

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} on {}", response.url()))
        .to_string()
}

/// HEAD and GET every tag of `repo`, and every manifest and blob they reach by digest; the
/// number of objects checked.
fn check_every_digest(edge: &Edge, repo: &str, token: Option<&str>) -> usize {
    let mut request = http().get(edge.url(&format!("/v2/{repo}/tags/list")));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let list: Value = request.send().expect("tags").json().expect("tag list");
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for tag in list["tags"].as_array().expect("tags") {
        let tag = tag.as_str().expect("tag");
        let url = edge.url(&format!("/v2/{repo}/manifests/{tag}"));
        let body = check_digest(&url, token, None);
        count += 1 + walk(edge, repo, token, &body, &mut seen);
    }
    count
}

fn walk(
    edge: &Edge,
    repo: &str,
    token: Option<&str>,
    body: &[u8],
    seen: &mut BTreeSet<String>,
) -> usize {
    let doc: Value = serde_json::from_slice(body).expect("manifest JSON");
    let mut count = 0;
    let children = doc["manifests"].as_array().cloned().unwrap_or_default();
    for child in children {
        let digest = child["digest"].as_str().expect("digest").to_string();
        if seen.insert(digest.clone()) {
            let url = edge.url(&format!("/v2/{repo}/manifests/{digest}"));
            let body = check_digest(&url, token, Some(&digest));
            count += 1 + walk(edge, repo, token, &body, seen);
        }
    }
    let mut blobs: Vec<Value> = doc["layers"].as_array().cloned().unwrap_or_default();
    blobs.push(doc["config"].clone());
    for blob in blobs {
        if let Some(digest) = blob["digest"].as_str()
            && seen.insert(digest.to_string())
        {
            check_digest(
                &edge.url(&format!("/v2/{repo}/blobs/{digest}")),
                token,
                Some(digest),
            );
            count += 1;
        }
    }
    count
}

#[test]
fn every_head_of_every_tag_and_digest_carries_its_digest_and_length() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let edge = Edge::start(&site, &[], tmp.path());
    let golden = check_every_digest(&edge, "apko/golden", None);
    let top = check_every_digest(&edge, "apko/top", None);
    // Tags (latest, 1.0 and the referrers tags), the index, platform manifests, configs,
    // layers and SBOMs: dozens of objects, not a handful.
    assert!(golden > 10 && top > 3, "checked {golden} and {top} objects");
    // The bucket's own answers: tag lists and the catalog without a digest header, 404s.
    let client = http();
    let catalog = client.get(edge.url("/v2/_catalog")).send().unwrap();
    assert_eq!(catalog.status(), 200);
    assert!(catalog.headers().get("docker-content-digest").is_none());
    let names: Value = catalog.json().unwrap();
    assert_eq!(
        names["repositories"],
        json!(["acme/app", "acme/other", "apko/golden", "apko/top"])
    );
    let missing = client
        .head(edge.url("/v2/apko/golden/manifests/nope"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Accept never changes the bytes.
    let url = edge.url("/v2/apko/golden/manifests/latest");
    let plain = client.get(&url).send().unwrap().bytes().unwrap();
    let docker_v2 = client
        .get(&url)
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(plain, docker_v2);
    assert_eq!(Digest::of_bytes(&plain).as_str(), golden_digest());
    // Range, as a bucket answers it.
    let range = client
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(
        header(&range, "content-range"),
        format!("bytes 0-9/{}", plain.len())
    );
    assert_eq!(range.bytes().unwrap(), plain.slice(0..10));
    // Tag list pages.
    let page: Value = client
        .get(edge.url("/v2/apko/golden/tags/list?n=1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["tags"], json!(["1.0"]));
}

/// skopeo `copy --all` of both fixtures, every digest verified by `regpress verify`.
#[test]
fn skopeo_copies_both_fixtures_with_all_platforms() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let edge = Edge::start(&site, &[], tmp.path());
    for (i, image) in ["apko/golden:latest", "apko/top:latest"].iter().enumerate() {
        let index = pull_all(&edge.image(image), &tmp.path().join(format!("pulled{i}")));
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{image}");
    }
}

/// docker pulls both fixtures from a dockerd of the test's own (vfs, no networking).
#[test]
fn docker_pulls_both_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let edge = Edge::start(&site, &[], tmp.path());
    let dockerd = Daemon::dockerd(&tmp.path().join("docker"));
    let docker = Docker::new(&dockerd, tmp.path());
    for image in ["apko/golden:latest", "apko/top:latest"] {
        let reference = format!("{}/{image}", edge.addr);
        docker.run(&["pull", &reference]).ok();
        let id = docker.run(&["image", "inspect", "--format", "{{.Id}}", &reference]);
        assert!(id.ok().stdout.starts_with("sha256:"), "{}", id.stdout);
    }
}

/// podman pulls both fixtures.
#[test]
fn podman_pulls_both_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let edge = Edge::start(&site, &[], tmp.path());
    let root = tmp.path().join("podman");
    for image in ["apko/golden:latest", "apko/top:latest"] {
        let out: Run = Command::new("podman")
            .args([
                "--root",
                &s(&root.join("root")),
                "--runroot",
                &s(&root.join("run")),
            ])
            .args(["--storage-driver", "vfs", "pull", "--tls-verify=false"])
            .arg(format!("{}/{image}", edge.addr))
            .output()
            .unwrap_or_else(|e| panic!("cannot run podman ({e}); ./tests/run.sh installs it"))
            .into();
        out.ok();
    }
}

/// containerd's `ctr` pulls (and unpacks) both fixtures, every platform.
#[test]
fn containerd_pulls_both_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let edge = Edge::start(&site, &[], tmp.path());
    let containerd = Daemon::containerd(&tmp.path().join("containerd"));
    for image in ["apko/golden:latest", "apko/top:latest"] {
        let reference = format!("{}/{image}", edge.addr);
        let out: Run = Command::new("ctr")
            .args([
                "--address",
                &s(&containerd.socket),
                "images",
                "pull",
                "--plain-http",
                "--all-platforms",
            ])
            .arg(&reference)
            .output()
            .expect("run ctr")
            .into();
        out.ok();
        let list: Run = Command::new("ctr")
            .args(["--address", &s(&containerd.socket), "images", "check"])
            .output()
            .expect("run ctr")
            .into();
        assert!(
            list.ok()
                .stdout
                .lines()
                .any(|l| l.starts_with(&reference) && l.contains("complete")),
            "{}\n{}",
            list.stdout,
            containerd.log()
        );
    }
}

/// oras-py reads tags, the index, each platform manifest and every blob.
#[test]
fn oras_py_pulls_both_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let edge = Edge::start(&site, &[], tmp.path());
    let script = r#"
import hashlib, json, sys
import oras.client
host = sys.argv[1]
client = oras.client.OrasClient(hostname=host, insecure=True)
out = {}
for image in sys.argv[2:]:
    repo, tag = image.split(":")
    container = f"{host}/{repo}"
    tags = client.get_tags(container)
    index = client.get_manifest(f"{container}:{tag}")
    blobs = 0
    for m in index["manifests"]:
        manifest = client.get_manifest(f"{container}@{m['digest']}")
        for blob in [manifest["config"]] + manifest["layers"]:
            path = client.download_blob(f"{container}@{blob['digest']}", blob["digest"], f"/tmp/oras-{blob['digest'][7:]}")
            data = open(path, "rb").read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == blob["digest"], blob
            blobs += 1
    out[image] = {"tags": tags, "platforms": len(index["manifests"]), "blobs": blobs}
print(json.dumps(out))
"#;
    let out: Run = Command::new("python3")
        .args([
            "-c",
            script,
            &edge.addr,
            "apko/golden:latest",
            "apko/top:latest",
        ])
        .output()
        .expect("run python3")
        .into();
    let result: Value = serde_json::from_str(out.ok().stdout.trim()).expect("oras output");
    assert!(
        result["apko/golden:latest"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("1.0"))
    );
    for image in ["apko/golden:latest", "apko/top:latest"] {
        assert!(
            result[image]["platforms"].as_u64().unwrap() >= 1,
            "{result}"
        );
        assert!(result[image]["blobs"].as_u64().unwrap() >= 2, "{result}");
    }
}

/// The Worker with `acme/**` private, its realm at the Worker (which proxies `/token` to a
/// `regpress auth` trusting the test issuer), as in production.
struct Private {
    issuer: TestIssuer,
    auth: Server,
    auth_addr: String,
    auth_dir: PathBuf,
    edge: Edge,
    realm: String,
    tmp: tempfile::TempDir,
}

fn private(extra: &[&str], env: &[(&str, &str)]) -> Private {
    let tmp = tempfile::tempdir().unwrap();
    let site = site(tmp.path());
    let port = common::auth::free_port();
    let realm = format!("http://127.0.0.1:{port}/token");
    let issuer = TestIssuer::start();
    let auth_dir = tmp.path().join("auth");
    std::fs::create_dir_all(&auth_dir).unwrap();
    let auth = start_auth(&auth_dir, &issuer.url, &realm);
    let auth_url = format!("http://{}", auth.addr);
    let auth_addr = auth.addr.clone();
    let mut args = vec![
        "--private",
        "acme/**",
        "--service",
        SERVICE,
        "--realm",
        &realm,
        "--auth",
        &auth_url,
    ];
    args.extend_from_slice(extra);
    let edge = Edge::start_on(port, &site, &args, env, tmp.path());
    Private {
        issuer,
        auth,
        auth_addr,
        auth_dir,
        edge,
        realm,
        tmp,
    }
}

impl Private {
    /// A registry token for `scope` from `/token` through the Worker, for an ID token of
    /// `repository`'s release workflow.
    fn registry_token(&self, repository: &str, scope: &str) -> String {
        let id_token = self.issuer.id_token(repository, SERVICE);
        let response = http()
            .get(self.edge.url("/token"))
            .query(&[("service", SERVICE), ("scope", scope)])
            .basic_auth("x", Some(&id_token))
            .send()
            .expect("/token");
        assert_eq!(response.status(), 200, "{}", self.edge.log());
        let body: Value = response.json().expect("token JSON");
        body["token"].as_str().expect("token").to_string()
    }

    /// The handler's signing key and its `kid`, to forge tokens with.
    fn signing_key(&self) -> (EncodingKey, String) {
        let pem = std::fs::read(self.auth_dir.join("auth-key.pem")).unwrap();
        let jwks: Value = http()
            .get(format!("http://{}/.well-known/jwks.json", self.auth_addr))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
        (EncodingKey::from_ec_pem(&pem).unwrap(), kid)
    }

    /// Registry token claims as the handler mints them, for `acme/app`.
    fn claims(&self) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": self.realm, "sub": "repo:acme/app:ref:refs/heads/main", "aud": SERVICE,
            "exp": now + 300, "nbf": now, "iat": now, "jti": "forged",
            "access": [{"type": "repository", "name": "acme/app", "actions": ["pull"]}],
        })
    }

    /// skopeo `copy --all` of `acme/app:latest` with an ID token as password, verified.
    fn copy_private_image(&self) {
        let id_token = self.issuer.id_token("acme/app", SERVICE);
        let dest = self.tmp.path().join("pulled");
        skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--src-creds",
            &format!("x:{id_token}"),
            &self.edge.image("acme/app:latest"),
            &format!("oci:{}:pulled", dest.display()),
        ])
        .ok();
        regpress(&["verify", &s(&dest)]).ok();
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
        let mut request = http().get(self.edge.url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send().expect("GET")
    }
}

fn challenge(response: &reqwest::blocking::Response) -> String {
    header(response, "www-authenticate")
}

#[test]
fn a_private_image_pulls_only_with_a_token_from_regpress_auth() {
    let p = private(&[], &[]);
    p.copy_private_image();
    // Every object of the private repository, with the token: digests, lengths, and never
    // cacheable by a shared cache.
    let token = p.registry_token("acme/app", "repository:acme/app:pull");
    assert!(check_every_digest(&p.edge, "acme/app", Some(&token)) > 10);
    let response = p.get("/v2/acme/app/manifests/latest", Some(&token));
    assert!(
        header(&response, "cache-control").starts_with("private"),
        "{response:?}"
    );
    // Public repositories stay anonymous (and publicly cacheable).
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &p.edge.image("apko/golden:latest"),
    ])
    .ok();
    let public = p.get("/v2/apko/golden/manifests/latest", None);
    assert_eq!(public.status(), 200);
    assert!(header(&public, "cache-control").starts_with("public"));
    // Anonymous: challenged, by skopeo and by hand.
    let anonymous = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &p.edge.image("acme/app:latest"),
    ]);
    assert_ne!(
        anonymous.code, 0,
        "pulled anonymously: {}",
        anonymous.stdout
    );
    let response = p.get("/v2/acme/app/manifests/latest", None);
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer realm=\"{}\",service=\"{SERVICE}\",scope=\"repository:acme/app:pull\"",
            p.realm
        )
    );
    // /v2/ challenges anonymous clients (how podman and skopeo learn the realm), not a token's
    // holder; the catalog would list private names.
    let base = p.get("/v2/", None);
    assert_eq!(base.status(), 401);
    assert_eq!(
        challenge(&base),
        format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", p.realm)
    );
    assert_eq!(p.get("/v2/", Some(&token)).status(), 200);
    assert_eq!(p.get("/v2/_catalog", Some(&token)).status(), 403);
}

#[test]
fn docker_logs_in_with_an_id_token_and_pulls_the_private_image() {
    let p = private(&[], &[]);
    let dockerd = Daemon::dockerd(&p.tmp.path().join("docker"));
    let docker = Docker::new(&dockerd, p.tmp.path());
    let reference = format!("{}/acme/app:latest", p.edge.addr);
    let refused = docker.run(&["pull", &reference]);
    assert_ne!(
        refused.code, 0,
        "docker pulled a private image without logging in"
    );
    let id_token = p.issuer.id_token("acme/app", SERVICE);
    docker.login(&p.edge.addr, "x", &id_token).ok();
    docker.run(&["pull", &reference]).ok();
}

/// The credential helper through the Worker: docker and podman pull the private image with
/// only `credHelpers` and a GitHub-Actions-shaped environment; then the handler's key is rotated and
/// a token minted before still pulls at the edge, as does docker with a token of the new key.
#[test]
fn docker_pulls_through_the_edge_with_the_credential_helper_across_a_key_rotation() {
    let p = private(&[], &[]);
    let dockerd = Daemon::dockerd(&p.tmp.path().join("docker"));
    let docker = Docker::new(&dockerd, p.tmp.path());
    let authfile = p.tmp.path().join("auth.json");
    install(&p.edge.addr, &docker.config.join("config.json"), &authfile);
    let reference = format!("{}/acme/app:latest", p.edge.addr);
    let helper_config = p.tmp.path().join("credential-helper.toml");
    let pull = |p: &Private, docker: &Docker| -> Run {
        let mut cmd = docker.command(&["pull", &reference]);
        with_helper_env(&mut cmd, &p.issuer.actions_env("acme/app"), &helper_config);
        cmd.output().unwrap().into()
    };
    pull(&p, &docker).ok();
    // podman, through containers' auth.json.
    let root = p.tmp.path().join("podman");
    let mut podman = Command::new("podman");
    podman
        .args([
            "--root",
            &s(&root.join("root")),
            "--runroot",
            &s(&root.join("run")),
        ])
        .args(["--storage-driver", "vfs", "pull", "--tls-verify=false"])
        .arg(format!("--authfile={}", authfile.display()))
        .arg(&reference);
    with_helper_env(
        &mut podman,
        &p.issuer.actions_env("acme/app"),
        &helper_config,
    );
    let pulled: Run = podman.output().unwrap().into();
    pulled.ok();
    let before = p.registry_token("acme/app", "repository:acme/app:pull");
    assert_eq!(
        p.get("/v2/acme/app/manifests/latest", Some(&before))
            .status(),
        200
    );

    rotate_key(&p.auth_dir.join("auth.toml"));
    reload_keys(&p.auth, &p.auth_addr, 2);
    // The Worker still holds the old key, and the JWKS it fetches next still has it.
    assert_eq!(
        p.get("/v2/acme/app/manifests/latest", Some(&before))
            .status(),
        200
    );
    // A token of the new key names a kid the Worker has not seen: it fetches the JWKS again,
    // at most once per cooldown since its last fetch (edge/src/jwks.ts), so wait that out, as a
    // deployment does by publishing a key before signing with it
    // (docs/pulling-private-images.md).
    std::thread::sleep(Duration::from_secs(31));
    docker.run(&["rmi", &reference]).ok();
    pull(&p, &docker).ok();
    let after = p.registry_token("acme/app", "repository:acme/app:pull");
    assert_ne!(
        jsonwebtoken::decode_header(&after).unwrap().kid,
        jsonwebtoken::decode_header(&before).unwrap().kid
    );
    assert_eq!(
        p.get("/v2/acme/app/manifests/latest", Some(&after))
            .status(),
        200
    );
    assert_eq!(
        p.get("/v2/acme/app/manifests/latest", Some(&before))
            .status(),
        200
    );
}

#[test]
fn every_bad_token_is_refused_with_the_challenge() {
    let p = private(&[], &[]);
    let (key, kid) = p.signing_key();
    let sign = |claims: &Value, kid: &str, key: &EncodingKey| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    };
    let now = jsonwebtoken::get_current_timestamp();
    let mut expired = p.claims();
    expired["exp"] = json!(now - 3600);
    expired["nbf"] = json!(now - 4000);
    let mut wrong_aud = p.claims();
    wrong_aud["aud"] = json!("someone-else");
    let other_key =
        EncodingKey::from_ec_pem(regpress::auth::token::generate_key().unwrap().as_bytes())
            .unwrap();
    // The forged token with the real key passes: the cases below fail for their reason only.
    let genuine = sign(&p.claims(), &kid, &key);
    assert_eq!(
        p.get("/v2/acme/app/manifests/latest", Some(&genuine))
            .status(),
        200
    );
    let scope = "scope=\"repository:acme/app:pull\"";
    let invalid = format!(
        "Bearer realm=\"{}\",service=\"{SERVICE}\",{scope},error=\"invalid_token\"",
        p.realm
    );
    for (what, token) in [
        ("expired", sign(&expired, &kid, &key)),
        (
            "signed by another key, same kid",
            sign(&p.claims(), &kid, &other_key),
        ),
        (
            "signed by another key",
            sign(&p.claims(), "other", &other_key),
        ),
        ("alg none", unsigned(&kid, &p.claims())),
        ("wrong aud", sign(&wrong_aud, &kid, &key)),
        ("garbage", "not.a.token".to_string()),
    ] {
        let response = p.get("/v2/acme/app/manifests/latest", Some(&token));
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(challenge(&response), invalid, "{what}");
        assert!(!p.edge.logged().is_empty());
    }
    // A valid token for another repository: insufficient scope.
    let other = p.registry_token("acme/app", "repository:acme/app:pull");
    let response = p.get("/v2/acme/other/manifests/latest", Some(&other));
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer realm=\"{}\",service=\"{SERVICE}\",scope=\"repository:acme/other:pull\",error=\"insufficient_scope\"",
            p.realm
        )
    );
    // ID tokens the policy does not trust get a token for nothing, which pulls nothing.
    let nothing = p.registry_token("acme/other", "repository:acme/app:pull");
    assert_eq!(
        p.get("/v2/acme/app/manifests/latest", Some(&nothing))
            .status(),
        401
    );
    let wrong = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("x:{}", p.issuer.id_token("acme/app", "someone-else")),
        &p.edge.image("acme/app:latest"),
    ]);
    assert_ne!(wrong.code, 0, "an ID token for another audience pulled");
}

/// `GET <raw_path>` exactly as written; the status and the whole response (read up to its
/// Content-Length: workerd keeps the connection open after answering).
fn raw_get(addr: &str, raw_path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            format!("GET {raw_path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("send");
    let (head, body) = read_message(&mut stream);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body)),
    )
}

#[test]
fn path_tricks_are_refused_and_never_reach_a_private_image() {
    let p = private(&[], &[]);
    let golden = std::fs::read_to_string(fixture("apko/golden/index.json")).unwrap();
    // What the Worker sees still holding the trick: 403, as /check answers. What workerd's URL
    // parser has already resolved (dot segments, also percent-encoded, and backslashes, as
    // Cloudflare's edge does too) reaches the Worker as the plain private path, whose key is
    // the one checked: 401, challenged.
    for (trick, status) in [
        ("/v2/apko/golden/../../acme/app/manifests/latest", 401),
        ("/v2/apko/golden/..%2f..%2facme/app/manifests/latest", 403),
        ("/v2/apko/%2e%2e/acme/app/manifests/latest", 401),
        ("/v2/apko/%2E%2E/acme/app/manifests/latest", 401),
        ("/v2/acme%2fapp/manifests/latest", 403),
        ("/v2/acme%2Fapp/manifests/latest", 403),
        (
            "/v2/apko/golden%252f..%252f..%252facme/app/manifests/latest",
            403,
        ),
        ("/v2/acme%5Capp/manifests/latest", 403),
        ("/v2/apko/golden;/../../acme/app/manifests/latest", 401),
        ("/v2/acme/app;x/manifests/latest", 403),
        ("/v2/apko/golden\\..\\..\\acme/app/manifests/latest", 401),
        ("/v2//acme/app/manifests/latest", 403),
        ("/v2/acme//app/manifests/latest", 403),
        (
            "/v2/apko/golden/manifests/latest#/../../../../acme/app/manifests/latest",
            401,
        ),
        ("/v2/acme/app/manifests/latest?x=1", 401),
    ] {
        let (got, response) = raw_get(&p.edge.addr, trick);
        assert!(
            !response.contains(&golden),
            "{trick} served the private image"
        );
        assert_eq!(got, status, "{trick}:\n{response}");
    }
    // Without tricks: the private image is challenged, the public one served.
    assert_eq!(
        raw_get(&p.edge.addr, "/v2/acme/app/manifests/latest").0,
        401
    );
    assert_eq!(
        raw_get(&p.edge.addr, "/v2/apko/golden/manifests/latest").0,
        200
    );
}

#[test]
fn pull_events_name_what_was_pulled_and_by_whom() {
    let receiver = Receiver::start();
    let hook = format!("http://{}/hook", receiver.addr);
    let p = private(
        &["--events", &hook],
        &[("REGPRESS_EVENTS_TOKEN", "hook-secret")],
    );
    let token = p.registry_token("acme/app", "repository:acme/app:pull");
    let ua = ("user-agent", "edge-test/1.0");
    let private = http()
        .get(p.edge.url("/v2/acme/app/manifests/latest"))
        .bearer_auth(&token)
        .header(ua.0, ua.1)
        .send()
        .unwrap();
    assert_eq!(private.status(), 200);
    let public = http()
        .head(
            p.edge
                .url(&format!("/v2/apko/golden/manifests/{}", golden_digest())),
        )
        .header(ua.0, ua.1)
        .send()
        .unwrap();
    assert_eq!(public.status(), 200);
    // Blobs send nothing unless asked.
    let index: Value = p
        .get("/v2/apko/golden/manifests/latest", None)
        .json()
        .unwrap();
    let platform = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = p
        .get(&format!("/v2/apko/golden/manifests/{platform}"), None)
        .json()
        .unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(
        p.get(&format!("/v2/apko/golden/blobs/{config}"), None)
            .status(),
        200
    );

    let events = receiver.events(4);
    assert_eq!(events.len(), 4, "{events:#?}\n{}", p.edge.log());
    for (head, event) in &events {
        assert!(head.contains("authorization: bearer hook-secret"), "{head}");
        assert!(
            head.contains("content-type: application/cloudevents-batch+json"),
            "{head}"
        );
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "dev.regpress.pull");
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(event["data"]["type"], "manifest", "{event}");
    }
    let find = |subject: &str| {
        events
            .iter()
            .map(|(_, e)| e)
            .find(|e| e["subject"] == subject)
            .unwrap_or_else(|| panic!("no event for {subject}: {events:#?}"))
    };
    let e = find("acme/app:latest");
    assert_eq!(e["source"], format!("http://{}", p.edge.addr));
    assert_eq!(e["data"]["repository"], "acme/app");
    assert_eq!(e["data"]["reference"], "latest");
    assert_eq!(e["data"]["digest"], golden_digest());
    assert_eq!(e["data"]["method"], "GET");
    assert_eq!(e["data"]["status"], 200);
    assert_eq!(e["data"]["identity"], "repo:acme/app:ref:refs/heads/main");
    assert_eq!(e["data"]["user_agent"], "edge-test/1.0");
    let e = find(&format!("apko/golden@{}", golden_digest()));
    assert_eq!(e["data"]["method"], "HEAD");
    assert_eq!(e["data"]["identity"], "anonymous");
    assert_eq!(e["data"]["digest"], golden_digest());
}

#[test]
fn a_dead_event_receiver_slows_no_pull() {
    // Accepts connections (the kernel does, into the backlog) and never answers.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", dead.local_addr().unwrap());
    let p = private(&["--events", &hook, "--events-blobs"], &[]);
    let token = p.registry_token("acme/app", "repository:acme/app:pull");
    let url = format!("/v2/acme/app/manifests/{}", golden_digest());
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let response = p.get(&url, Some(&token));
        assert_eq!(response.status(), 200);
        let _ = response.bytes();
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "a pull took {slowest:?}");
    let started = Instant::now();
    p.copy_private_image();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "skopeo took {:?}",
        started.elapsed()
    );
    // The deliveries time out after the responses, and say so.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.edge.log().contains("not delivered") {
        assert!(
            Instant::now() < deadline,
            "no delivery failure logged:\n{}",
            p.edge.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(dead);
}
