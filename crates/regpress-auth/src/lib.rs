//! regpress-auth: the companion handler that guards private repositories of a regpress
//! registry (`regpress auth serve`, or the `regpress-auth` binary on its own).
//!
//! Public repositories are plain files in a bucket; private ones sit behind a proxy (nginx
//! `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`) that asks this handler whether
//! each request may pass. Clients get short-lived registry tokens at `/token` by presenting an
//! OIDC ID token (a GitHub Actions job, a cloud workload, a person's SSO) as their password; no
//! passwords or long-lived secrets exist. The handler never serves image bytes.
//!
//! It is a crate of its own because it runs somewhere else than the publisher: next to the
//! proxy, for as long as the registry is up, reachable from the network. There it should carry
//! only what answering `/token` and `/check` needs (an HTTP server, JWT and OIDC, the
//! distribution name grammar from `regpress-oci`), not the publisher's S3 client, SBOM schemas
//! or Sigstore verification.
//!
//! One module per job: [`config`] reads `auth.toml`, [`oidc`] verifies ID tokens, [`policy`]
//! decides what an identity gets, [`scope`] parses what a client asks for, [`token`] mints and
//! checks registry tokens, [`routes`] is the HTTP surface, [`server`] holds its sockets under
//! hostile load (descriptor limit, connection cap, timeouts), [`log`] writes what happened;
//! [`error`] is how starting fails. [`pull_token`] makes, revokes and checks pull tokens for
//! clients without OIDC, [`audit`] appends every private decision to the audit log, and
//! [`duration`] reads `30d`-style durations.

pub mod audit;
pub mod config;
pub mod duration;
pub mod error;
pub mod log;
pub mod oidc;
pub mod policy;
pub mod pull_token;
pub mod routes;
pub mod scope;
pub mod server;
pub mod token;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub use crate::error::Error;

/// Load `config_path`, then serve until interrupted. Prints the URL once listening.
///
/// Generic over the caller's error type so that a host's command line can run it among its own
/// commands: `regpress auth serve` gets a `regpress::error::Error`, the `regpress-auth` binary
/// an [`Error`].
pub fn serve<E: From<Error>>(config_path: &Path, listen: Option<SocketAddr>) -> Result<(), E> {
    run(config_path, listen).map_err(E::from)
}

fn run(config_path: &Path, listen: Option<SocketAddr>) -> Result<(), Error> {
    let config = config::AuthConfig::load(config_path)?;
    let usage = |reason: String| Error::Config {
        path: config_path.to_path_buf(),
        reason,
    };
    let pull_tokens = match &config.pull_tokens {
        None => None,
        Some(p) => Some(routes::PullTokens {
            max_ttl: p.max_ttl,
            forbid: policy::Patterns::new(&p.forbid)
                .map_err(|e| usage(format!("pull_tokens.forbid: {e}")))?,
            revoked: pull_token::Revoked::load(&p.revoked, p.revocation_check)
                .map_err(|e| usage(format!("pull_tokens.revoked: {e}")))?,
        }),
    };
    let handler = routes::Handler {
        verifier: oidc::Verifier::new(&config.issuers).map_err(usage)?,
        policy: policy::Policy::new(&config.public, &config.trust).map_err(usage)?,
        signer: std::sync::RwLock::new(Arc::new(signer(&config).map_err(usage)?)),
        pull_tokens,
        audit: match &config.audit {
            None => None,
            Some(a) => Some(audit::Audit::open(a, &config.realm).map_err(usage)?),
        },
        service: config.service.clone(),
        realm: config.realm.clone(),
    };
    let listen = listen.unwrap_or(config.listen);
    let open_files = server::raise_open_files_limit();
    let cap = server::connection_cap(config.limits.max_connections, open_files);
    if cap < config.limits.max_connections {
        log::line(format_args!(
            "max_connections {} does not fit the open files limit of {}: at most {cap} connections",
            config.limits.max_connections,
            open_files.unwrap_or_default()
        ));
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::Internal(format!("cannot start runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = server::listen(listen).map_err(|error| Error::Listen {
            addr: listen,
            error,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("no local address: {e}")))?;
        println!(
            "regpress auth for {} (realm {}) at http://{addr}/",
            config.service, config.realm
        );
        let handler = Arc::new(handler);
        reload_keys_on_hangup(config_path.to_path_buf(), handler.clone());
        server::serve(
            listener,
            routes::router(handler),
            config.limits.clone(),
            cap,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await;
        Ok(())
    })
}

/// The signer of `config`: its signing key, and its previous keys to accept and publish.
fn signer(config: &config::AuthConfig) -> Result<token::Signer, String> {
    let previous: Vec<&str> = config
        .previous_keys_pem
        .iter()
        .map(|k| k.expose())
        .collect();
    token::Signer::new(
        config.signing_key_pem.expose(),
        &config.realm,
        &config.service,
        config.token_lifetime,
    )?
    .with_previous(&previous)
}

/// On SIGHUP, read the config again and sign with its `signing_key` (accepting and publishing
/// its `previous_keys`) from then on: a key rotation without a restart, so without a moment in
/// which the proxy cannot reach the handler. Only the keys are reloaded; a config that does not
/// load, or names another `service` or `realm`, keeps the keys in force (and is logged).
#[cfg(unix)]
fn reload_keys_on_hangup(path: std::path::PathBuf, handler: Arc<routes::Handler>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            log::line(format_args!(
                "cannot watch SIGHUP, keys reload only on restart: {e}"
            ));
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let loaded = config::AuthConfig::load(&path)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    if c.service != handler.service || c.realm != handler.realm {
                        return Err("service or realm changed: restart to change them".to_string());
                    }
                    signer(&c)
                });
            match loaded {
                Ok(signer) => {
                    let kids: Vec<String> = signer.jwks()["keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k["kid"].as_str().map(str::to_string))
                        .collect();
                    handler.replace_signer(signer);
                    log::line(format_args!("keys reloaded: {}", kids.join(" ")));
                }
                Err(e) => log::line(format_args!("keys not reloaded, keeping them: {e}")),
            }
        }
    });
}

/// SIGHUP does not exist here: keys reload on restart.
#[cfg(not(unix))]
fn reload_keys_on_hangup(_: std::path::PathBuf, _: Arc<routes::Handler>) {}
