//! `--base-url`: the whole application served below a path (`/aiida/api/v4/...`), for a
//! reverse proxy that passes the path on unchanged.
//!
//! The base path is to the application what a WSGI `SCRIPT_NAME` is to the reference behind
//! mod_wsgi: a request under it is routed on the rest of its path (so every mount, `/api/v4`,
//! `/<name>/api/v4`, `/health`, `/metrics`, is found below the base), and its answers' absolute
//! URLs (`url`, `url_root`, `Link`) start with the origin and the base
//! (`http://host/aiida/`), while `path`, `API_prefix` and `available_endpoints` name the paths
//! below it, as Flask's do. `--public-url`, when given too, replaces the request's origin
//! (`https://example.org`), and the base follows it. A request outside the base gets the
//! JSON 404 of an unknown URL.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::Uri;
use axum::http::uri::{Parts, PathAndQuery};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tower::{Layer, Service};

use crate::http::error::ApiError;
use crate::http::request::{Origin, request_origin};

/// The base path of `--base-url`: `/aiida` from `/aiida/` or `aiida`; `None` for `/` or empty.
/// Letters, digits and `-._~` in segments separated by `/`.
pub fn parse_base(text: &str) -> Result<Option<String>, String> {
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    let fine = trimmed.split('/').all(|s| {
        !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    });
    if !fine {
        return Err(format!(
            "{text:?} is not a path like /aiida (letters, digits, '-', '.', '_', '~' between slashes)"
        ));
    }
    Ok(Some(format!("/{trimmed}")))
}

/// The tower layer: strips the base from the path, adds it to the origin.
#[derive(Clone)]
pub struct Base {
    pub base: Arc<str>,
    /// The 404's `available_endpoints` for a request outside the base.
    pub endpoints: Arc<[String]>,
}

impl<S> Layer<S> for Base {
    type Service = BaseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BaseService { inner, base: self.clone() }
    }
}

#[derive(Clone)]
pub struct BaseService<S> {
    inner: S,
    base: Base,
}

impl<S> Service<Request> for BaseService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, std::future::Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let Some(uri) = below(request.uri(), &self.base.base) else {
            let answer = ApiError::UnknownRoute(self.base.endpoints.to_vec()).into_response();
            return Either::Right(std::future::ready(Ok(answer)));
        };
        let origin = match request.extensions().get::<Origin>() {
            Some(origin) => origin.0.clone(),
            None => request_origin(request.version(), request.uri(), request.headers(), None)
                .unwrap_or_else(|_| "http://localhost".into()),
        };
        request.extensions_mut().insert(Origin(format!("{origin}{}", self.base.base)));
        *request.uri_mut() = uri;
        Either::Left(self.inner.call(request))
    }
}

/// `uri` with `base` taken off its path (`/` if nothing is left), `None` if it is not below.
fn below(uri: &Uri, base: &str) -> Option<Uri> {
    let rest = uri.path().strip_prefix(base)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    let text = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_string(),
    };
    let mut parts = Parts::default();
    parts.scheme = uri.scheme().cloned();
    parts.authority = uri.authority().cloned();
    parts.path_and_query = Some(PathAndQuery::try_from(text).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(parse_base("/aiida/").unwrap().as_deref(), Some("/aiida"));
        assert_eq!(parse_base("aiida/v1").unwrap().as_deref(), Some("/aiida/v1"));
        assert_eq!(parse_base("/").unwrap(), None);
        assert_eq!(parse_base("").unwrap(), None);
        for bad in ["/a b", "/a//b", "/a/../b", "/a?x", "/%41"] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_below_the_base() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(below(&uri("/aiida/api/v4/nodes?a=1"), "/aiida"), Some(uri("/api/v4/nodes?a=1")));
        assert_eq!(below(&uri("/aiida"), "/aiida"), Some(uri("/")));
        assert_eq!(below(&uri("/aiida/"), "/aiida"), Some(uri("/")));
        assert_eq!(below(&uri("/aiidax/api"), "/aiida"), None);
        assert_eq!(below(&uri("/api/v4"), "/aiida"), None);
        assert_eq!(below(&uri("http://h/aiida/x"), "/aiida"), Some(uri("http://h/x")));
    }
}
