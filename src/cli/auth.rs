//! `regpress auth`: the companion handler that guards private repositories (`auth serve`), its
//! signing key (`auth keygen`) and pull tokens (`auth pull-token create|revoke`).
//!
//! Its flags and the calls to [`crate::auth`]; the key is this command's product, so it is
//! printed here, not by [`super::print`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::Error;

#[derive(Subcommand, Debug)]
pub(super) enum AuthCommand {
    /// Serve /token (registry tokens for OIDC ID tokens), /check (a proxy's forward-auth:
    /// nginx auth_request, Caddy forward_auth, Traefik forwardAuth) and /.well-known/jwks.json.
    Serve(AuthServeArgs),
    /// Print a new P-256 signing key (PKCS#8 PEM) for auth.toml's `signing_key`.
    Keygen,
    /// Pull tokens for clients without OIDC: create one, or revoke one.
    #[command(subcommand)]
    PullToken(crate::auth::pull_token::PullTokenCommand),
}

#[derive(Args, Debug)]
pub(super) struct AuthServeArgs {
    /// The handler's config: service, realm, signing key, issuers, trust rules (see
    /// examples/auth.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on, overriding the config's `listen`; port 0 picks a free port
    /// (printed on start).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// Run an `auth` subcommand.
pub(super) fn run(command: AuthCommand) -> Result<(), Error> {
    match command {
        AuthCommand::Serve(args) => crate::auth::serve(&args.config, args.listen),
        AuthCommand::PullToken(command) => {
            crate::auth::pull_token::run(command).map_err(Error::from)
        }
        AuthCommand::Keygen => {
            print!(
                "{}",
                crate::auth::token::generate_key().map_err(Error::Internal)?
            );
            Ok(())
        }
    }
}
