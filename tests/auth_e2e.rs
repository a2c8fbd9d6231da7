//! Private repositories end to end with real parts: `regpress serve` behind a real nginx
//! configured from `examples/nginx.conf`, `auth_request` to `regpress auth serve` configured from
//! `examples/auth.toml`, a test OIDC issuer on loopback, and skopeo pulling with nothing but an
//! OIDC ID token as password.

mod common;

use std::fs;

use common::auth::{Nginx, SERVICE, free_port, start_auth};
use common::oidc::TestIssuer;
use common::{Server, fixture, regpress, s, skopeo};
use serde_json::json;

/// One served site with a private and a public image, the handler and nginx in front.
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
    let golden = fixture("apko/golden");
    for repo in ["acme/app", "public/base"] {
        regpress(&[
            "publish",
            &s(&golden),
            "--repo",
            repo,
            "--tag",
            "latest",
            "--to",
            &s(&site),
            "-q",
        ])
        .ok();
    }
    let serve = Server::start(&site);
    let issuer = TestIssuer::start();
    let port = free_port();
    let realm = format!("http://127.0.0.1:{port}/token");
    let (auth_dir, nginx_dir) = (tmp.path().join("auth"), tmp.path().join("nginx"));
    fs::create_dir_all(&auth_dir).unwrap();
    fs::create_dir_all(&nginx_dir).unwrap();
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

fn inspect_with(registry: &Registry, id_token: &str, image: &str) -> common::Run {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("x:{id_token}"),
        &registry.nginx.image(image),
    ])
}

#[track_caller]
fn assert_refused(out: &common::Run, what: &str) {
    assert_ne!(out.code, 0, "{what}: pulled anyway:\n{}", out.stdout);
    assert!(
        out.stderr.contains("unauthorized") || out.stderr.contains("401"),
        "{what}: not refused as unauthorized:\n{}",
        out.stderr
    );
}

#[test]
fn skopeo_pulls_a_private_image_through_nginx_with_only_an_oidc_id_token() {
    let r = registry();
    let id_token = r.issuer.id_token("acme/app", SERVICE);
    let golden_index = fs::read(fixture("apko/golden").join("index.json")).unwrap();

    let raw = inspect_with(&r, &id_token, "acme/app:latest");
    raw.ok();
    assert_eq!(
        raw.stdout.as_bytes(),
        golden_index.as_slice(),
        "{}",
        r.nginx.error_log()
    );
    let dest = r.tmp.path().join("pulled");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("x:{id_token}"),
        &r.nginx.image("acme/app:latest"),
        &format!("oci:{}:pulled", dest.display()),
    ])
    .ok();
    regpress(&["verify", &s(&dest)]).ok();

    // Anonymous: the public image pulls, the private one does not.
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &r.nginx.image("public/base:latest"),
    ])
    .ok();
    let anonymous = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &r.nginx.image("acme/app:latest"),
    ]);
    assert_refused(&anonymous, "anonymous pull of a private image");

    // /v2/ answers anonymous clients with the challenge, through nginx.
    let (status, response) = r.nginx.raw_get("/v2/");
    assert_eq!(status, 401);
    let realm = format!(
        "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\"",
        r.nginx.addr
    );
    assert!(response.contains(&realm), "{response}");
}

#[test]
fn tokens_the_policy_does_not_trust_pull_nothing_through_nginx() {
    let r = registry();
    let other_issuer = TestIssuer::start();
    let now = jsonwebtoken::get_current_timestamp();
    let mut expired = r.issuer.github_claims("acme/app", SERVICE);
    expired["exp"] = json!(now - 3600);
    expired["iat"] = json!(now - 4000);
    expired["nbf"] = json!(now - 4000);
    for (what, token) in [
        (
            "a repository claim the policy does not allow",
            r.issuer.id_token("acme/other", SERVICE),
        ),
        ("an expired token", r.issuer.key.sign(&expired)),
        (
            "a wrong audience",
            r.issuer.id_token("acme/app", "someone-else"),
        ),
        (
            "an unknown issuer",
            other_issuer.id_token("acme/app", SERVICE),
        ),
    ] {
        assert_refused(&inspect_with(&r, &token, "acme/app:latest"), what);
    }
    assert_eq!(other_issuer.jwks_hits(), 0);

    // Paths that nginx would normalise into the private repository: refused before the bucket.
    for trick in [
        "/v2/public/base/../../acme/app/manifests/latest",
        "/v2/public/base/..%2f..%2facme/app/manifests/latest",
        "/v2/public/%2e%2e/acme/app/manifests/latest",
        "/v2/acme%2fapp/manifests/latest",
        "/v2//acme/app/manifests/latest",
    ] {
        let (status, response) = r.nginx.raw_get(trick);
        assert_eq!(status, 403, "{trick}:\n{response}");
    }
    // The same request without tricks is challenged, not served.
    assert_eq!(r.nginx.raw_get("/v2/acme/app/manifests/latest").0, 401);
    assert_eq!(r.nginx.raw_get("/v2/public/base/manifests/latest").0, 200);
}
