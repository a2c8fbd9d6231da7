//! `regpress serve`: preview a local-directory site exactly as a bucket's website endpoint would.
//!
//! Each key is answered with its stored Content-Type, Cache-Control and Content-Length, HEAD and
//! Range work, missing keys are 404 and `/v2/` answers from its `v2/` object (or `index.html`),
//! so a dry run can be pulled with real clients (skopeo, crane, docker) before anything reaches
//! a bucket. Like a bucket, it sends no `Docker-Content-Digest`; the digest is exposed the way
//! S3 exposes object metadata, as `x-amz-meta-digest`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::error::Error;
use crate::store::dir::DirStore;

/// Serve the site in `root` on `listen` until interrupted. Prints the URL once listening.
pub async fn serve(root: PathBuf, listen: SocketAddr) -> Result<(), Error> {
    if !root.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a directory (publish to it first with --to)",
            root.display()
        )));
    }
    let store = Arc::new(DirStore::new(&root.to_string_lossy(), root.clone()));
    let app = axum::Router::new().fallback(handle).with_state(store);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("no local address: {e}")))?;
    println!("serving {} at http://{addr}/", root.display());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Internal(format!("server failed: {e}")))
}

async fn handle(State(store): State<Arc<DirStore>>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response();
    }
    let Ok(key) = percent_decode_str(request.uri().path().trim_start_matches('/')).decode_utf8()
    else {
        return (StatusCode::BAD_REQUEST, "bad path encoding\n").into_response();
    };
    let mut candidates = vec![key.to_string()];
    if key.is_empty() || key.ends_with('/') {
        candidates.push(format!("{key}index.html"));
    }
    let Some((path, meta)) = candidates.iter().find_map(|k| store.lookup(k)) else {
        return (StatusCode::NOT_FOUND, "NoSuchKey\n").into_response();
    };
    let mime = meta
        .content_type
        .parse::<mime::Mime>()
        .unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let response = match ServeFile::new_with_mime(path, &mime).oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let mut response = response.map(Body::new);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&meta.cache_control) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&meta.sha256) {
        headers.insert("x-amz-meta-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "\"{}\"",
        meta.sha256.trim_start_matches("sha256:")
    )) {
        headers.insert(header::ETAG, v);
    }
    response
}
