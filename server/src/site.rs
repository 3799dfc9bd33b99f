//! The built site (CSS, JS, WASM, favicon, and their precompressed `.br`/`.gz` variants),
//! embedded in a binary built with the `embed-site` feature (`./dev.sh build` does that), so
//! `keyport serve` runs from any directory as one file. `--site-root` still serves a directory
//! instead (for development). The embedding is rust-embed's; the few lines that pick the
//! precompressed variant a browser accepts are ours, as rust-embed's axum support has none.
use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

#[cfg(feature = "embed-site")]
#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../target/site"]
#[allow_missing = true]
struct Embedded;

/// One embedded file's bytes and type.
struct File {
    data: std::borrow::Cow<'static, [u8]>,
    mime: String,
}

#[cfg(feature = "embed-site")]
fn get(path: &str) -> Option<File> {
    Embedded::get(path).map(|f| File {
        mime: f.metadata.mimetype().to_owned(),
        data: f.data,
    })
}

#[cfg(not(feature = "embed-site"))]
fn get(_: &str) -> Option<File> {
    None
}

/// Whether this binary carries the built site (its hydration script at least).
pub fn embedded() -> bool {
    get("pkg/keyport.js").is_some()
}

/// The embedded file at `path`, in the best encoding the client accepts (brotli, then gzip);
/// `None` when there is no such file.
pub fn serve(path: &str, headers: &HeaderMap) -> Option<Response> {
    let path = path.trim_start_matches('/');
    if path.is_empty() || path.ends_with(".br") || path.ends_with(".gz") {
        return None;
    }
    let plain = get(path)?;
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let accepts = |coding: &str| {
        accepted.split(',').any(|c| {
            let mut parts = c.split(';').map(str::trim);
            parts.next() == Some(coding) && parts.all(|p| p != "q=0" && p != "q=0.0")
        })
    };
    let (data, encoding) = [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(|(coding, _)| accepts(coding))
        .find_map(|(coding, ext)| get(&format!("{path}{ext}")).map(|f| (f.data, Some(coding))))
        .unwrap_or((plain.data, None));
    // Embedded files are borrowed from the binary: served without copying them.
    let body = match data {
        std::borrow::Cow::Borrowed(bytes) => Body::from(Bytes::from_static(bytes)),
        std::borrow::Cow::Owned(bytes) => Body::from(bytes),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&plain.mime) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(coding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    Some(response)
}
