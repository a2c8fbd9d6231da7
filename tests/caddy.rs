//! `examples/Caddyfile` run by Debian's caddy in front of `regpress serve`, with
//! `forward_auth` to `regpress auth serve`: skopeo pulls the private image with an ID token and
//! the public one anonymously, anonymous clients are challenged, path tricks are refused, and
//! manifests carry `Docker-Content-Digest` from the stored `x-amz-meta-digest`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::auth::{SERVICE, free_port, publish_golden, start_auth};
use common::oidc::TestIssuer;
use common::{Server, golden_digest, regpress, s, skopeo};

/// caddy running the example, stopped on drop.
struct Caddy {
    child: Child,
    addr: String,
}

impl Caddy {
    fn start(dir: &Path, port: u16, bucket: &str, auth: &str) -> Caddy {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/Caddyfile"),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut text = example.clone();
        for (from, to) in [
            ("cr.example.com {", format!("http://{addr} {{")),
            ("127.0.0.1:5001", auth.to_string()),
            ("127.0.0.1:5000", bucket.to_string()),
        ] {
            assert!(
                text.contains(from),
                "examples/Caddyfile no longer contains {from:?}"
            );
            text = text.replace(from, &to);
        }
        // No admin endpoint (tests run side by side), nothing written outside `dir`.
        let config = dir.join("Caddyfile");
        std::fs::write(&config, format!("{{\n\tadmin off\n}}\n\n{text}")).unwrap();
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config", &s(&config)])
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("caddy.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run caddy ({e}); ./tests/run.sh installs it"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "caddy not listening:\n{}",
                std::fs::read_to_string(dir.join("caddy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Caddy { child, addr }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn caddy_forward_auth_pulls_private_images_with_an_id_token_only() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    publish_golden(&site, &["acme/app", "public/base"]);
    let serve = Server::start(&site);
    let port = free_port();
    let issuer = TestIssuer::start();
    let auth_dir = tmp.path().join("auth");
    std::fs::create_dir_all(&auth_dir).unwrap();
    let auth = start_auth(
        &auth_dir,
        &issuer.url,
        &format!("http://127.0.0.1:{port}/token"),
    );
    let caddy = Caddy::start(tmp.path(), port, &serve.addr, &auth.addr);
    let image = |r: &str| format!("docker://{}/{r}", caddy.addr);

    let id_token = issuer.id_token("acme/app", SERVICE);
    let dest = tmp.path().join("pulled");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("x:{id_token}"),
        &image("acme/app:latest"),
        &format!("oci:{}:pulled", dest.display()),
    ])
    .ok();
    regpress(&["verify", &s(&dest)]).ok();
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &image("public/base:latest"),
    ])
    .ok();
    let anonymous = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &image("acme/app:latest"),
    ]);
    assert_ne!(anonymous.code, 0, "pulled a private image anonymously");

    let client = reqwest::blocking::Client::new();
    let url = |p: &str| format!("http://{}{p}", caddy.addr);
    let head = client
        .head(url("/v2/public/base/manifests/latest"))
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok()),
        Some(golden_digest().as_str())
    );
    let private = client
        .get(url("/v2/acme/app/manifests/latest"))
        .send()
        .unwrap();
    assert_eq!(private.status(), 401);
    let challenge = private.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("scope=\"repository:acme/app:pull\""),
        "{challenge}"
    );
    for trick in [
        "/v2/acme%2fapp/manifests/latest",
        "/v2//acme/app/manifests/latest",
        "/v2/public/base%252f..%252facme/app/manifests/latest",
    ] {
        let status = client.get(url(trick)).send().unwrap().status();
        assert!(status == 403, "{trick}: {status}");
    }
}
