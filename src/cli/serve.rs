//! `regpress serve`: serve a local-directory site as a bucket's website endpoint would.
//!
//! Its flags and the call to [`crate::serve::serve`], on a Tokio runtime it starts for itself.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::error::Error;

#[derive(Args, Debug)]
#[command(after_help = "\
Example:
  regpress publish ./out --repo acme/base --tag latest --to ./site
  regpress serve ./site --listen 127.0.0.1:5000 &
  skopeo inspect --tls-verify=false docker://127.0.0.1:5000/acme/base:latest")]
pub(super) struct ServeArgs {
    /// The site directory (a `--to` target of `publish`).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
}

/// Serve until interrupted.
pub(super) fn run(args: ServeArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::Internal(format!("cannot start runtime: {e}")))?;
    runtime.block_on(crate::serve::serve(args.dir, args.listen))
}
