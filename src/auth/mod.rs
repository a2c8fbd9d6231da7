//! `regpress auth serve`: the companion handler for private repositories.
//!
//! Public repositories are plain files in a bucket; private ones sit behind a proxy (nginx
//! `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`) that asks this handler whether
//! each request may pass. Clients get short-lived registry tokens at `/token` by presenting an
//! OIDC ID token (a GitHub Actions job, a cloud workload, a person's SSO) as their password; no
//! passwords or long-lived secrets exist. The handler never serves image bytes.
//!
//! One module per job: [`config`] reads `auth.toml`, [`oidc`] verifies ID tokens, [`policy`]
//! decides what an identity gets, [`scope`] parses what a client asks for, [`token`] mints and
//! checks registry tokens, [`routes`] is the HTTP surface.

pub mod config;
pub mod oidc;
pub mod policy;
pub mod routes;
pub mod scope;
pub mod token;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;

/// Load `config_path`, then serve until interrupted. Prints the URL once listening.
pub fn serve(config_path: &Path, listen: Option<SocketAddr>) -> Result<(), Error> {
    let config = config::AuthConfig::load(config_path)?;
    let usage = |e: String| Error::Usage(format!("config {}: {e}", config_path.display()));
    let handler = routes::Handler {
        verifier: oidc::Verifier::new(&config.issuers).map_err(usage)?,
        policy: policy::Policy::new(&config.public, &config.trust).map_err(usage)?,
        signer: token::Signer::new(
            &config.signing_key_pem,
            &config.realm,
            &config.service,
            config.token_lifetime,
        )
        .map_err(usage)?,
        service: config.service.clone(),
        realm: config.realm.clone(),
    };
    let listen = listen.unwrap_or(config.listen);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::Internal(format!("cannot start runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("no local address: {e}")))?;
        println!(
            "regpress auth for {} (realm {}) at http://{addr}/",
            config.service, config.realm
        );
        axum::serve(listener, routes::router(Arc::new(handler)))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::Internal(format!("server failed: {e}")))
    })
}
