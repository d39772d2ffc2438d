//! The middleware every request goes through, as two services around tower-http's compression
//! layer (outermost first):
//!
//! 1. [`Outer`]: HEAD is handled as GET and answered without the body, every answer of known
//!    length states it (`head`); routing sees
//!    the percent-decoded path, as Werkzeug's does, and the URI as received is kept for the
//!    answers that echo it (`path`).
//! 2. `compress::layer`: JSON and text answers of 1 KiB or more, gzip or brotli as the client
//!    asks. A request that names no encoding goes past it (`compress::negotiates`).
//! 3. [`Inner`]: under the mounted prefixes, preflights are answered and POST bodies read whole
//!    (`cors`, `body`); then the answer of the routes gets its `ETag`/`Cache-Control` or
//!    becomes a 304 (`etag`), large answers are compressed once and kept (`compress::memo`),
//!    and CORS headers are added.
//!
//! Each step is a plain function of its module; this file only orders them. They used to be one
//! `from_fn` layer each: a boxed future, a cloned service and a moved request per layer and per
//! request, which cost the cheapest endpoints a quarter of their throughput. Now a request
//! costs one boxed future ([`Inner`]'s), whatever the number of steps.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::Response;
use futures_util::future::{BoxFuture, Either};
use tower::{Layer, Service, ServiceExt};

use super::path::Prefixes;
use super::request::unquote;
use super::{body, compress, cors, etag, head, path};

/// What the steps need to know of the application: the mounted prefixes, the CORS origins and
/// the caching policy of each mount's storage.
pub struct Config {
    pub prefixes: Prefixes,
    pub cors: cors::Origins,
    pub policy: etag::Policy,
}

/// `routes` wrapped in the middleware: the whole application, as `App::into_responder` serves it.
pub fn wrap(
    routes: Router,
    config: Config,
) -> Outer<
    impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + Sync + 'static,
> {
    let plain = Inner { routes, config: Arc::new(config) };
    let compressed = compress::layer().layer(plain.clone()).map_response(|response| response.map(Body::new));
    Outer { compressed, plain }
}

/// HEAD as GET, and the canonical path (see the module documentation).
#[derive(Clone)]
pub struct Outer<S> {
    /// [`Inner`] under the compression layer.
    compressed: S,
    /// [`Inner`] alone, for the requests that name no encoding.
    plain: Inner,
}

impl<S> Service<Request> for Outer<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = OuterFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // `plain` is always ready; `compressed` is as ready as the `Inner` it wraps.
        self.compressed.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let head = request.method() == Method::HEAD;
        if head {
            *request.method_mut() = Method::GET;
        }
        path::decode(&mut request);
        let inner = if compress::negotiates(request.headers()) {
            Either::Left(self.compressed.call(request))
        } else {
            Either::Right(self.plain.call(request))
        };
        OuterFuture { inner, head }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Outer`]: the inner answer, without its body for HEAD.
    pub struct OuterFuture<F> {
        #[pin]
        inner: Either<F, BoxFuture<'static, Result<Response, Infallible>>>,
        head: bool,
    }
}

impl<F> Future for OuterFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let head = *this.head;
        let plain = matches!(*this.inner, Either::Right(_));
        this.inner.poll(cx).map(|answer| {
            answer.map(|mut response| {
                if plain {
                    compress::mark_variant(&mut response);
                }
                if head { head::strip_body(response) } else { head::state_length(response) }
            })
        })
    }
}

/// CORS, the body limit, validators and kept compressed answers (see the module documentation).
#[derive(Clone)]
pub struct Inner {
    routes: Router,
    config: Arc<Config>,
}

impl Service<Request> for Inner {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The routes are a `Router`, always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let routes = self.routes.clone();
        let config = self.config.clone();
        Box::pin(async move { Ok(config.answer(routes, request).await) })
    }
}

impl Config {
    async fn answer(&self, routes: Router, request: Request) -> Response {
        // The path is canonical here (`Outer`): decoding allocates only when it has escapes.
        let covered = {
            let path = request.uri().path();
            if path.contains('%') { self.prefixes.cover(&unquote(path)) } else { self.prefixes.cover(path) }
        };
        let origin = if covered { request.headers().get(header::ORIGIN).cloned() } else { None };
        if covered && let Some(mut response) = cors::preflight_answer(&request) {
            cors::finish(&self.cors, origin, &mut response);
            return response;
        }
        let wanted = etag::wanted(&request);
        let mount = wanted.as_ref().and_then(|_| self.policy.mount_of(request.uri().path()));
        let encoding = compress::preferred(request.headers());
        let request = if covered && request.method() == Method::POST {
            match body::read_whole(request).await {
                Ok(request) => request,
                Err(too_large) => return self.finish_cors(covered, origin, too_large),
            }
        } else {
            request
        };
        let Ok(mut response) = routes.oneshot(request).await;
        if let Some(wanted) = wanted {
            response = etag::finish(&self.policy, mount, &wanted, response).await;
        }
        if let Some(encoding) = encoding {
            response = compress::memo(encoding, response).await;
        }
        self.finish_cors(covered, origin, response)
    }

    fn finish_cors(&self, covered: bool, origin: Option<header::HeaderValue>, mut response: Response) -> Response {
        if covered {
            cors::finish(&self.cors, origin, &mut response);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each request's future is moved into its box: one that carries a database query's state
    /// (the storage check of `etag`, 3 KiB) costs every request the copy.
    #[test]
    fn the_future_of_a_request_stays_small() {
        let config =
            Config { prefixes: Prefixes(Vec::new().into()), cors: cors::Origins::Any, policy: etag::Policy::new([]) };
        let answer = config.answer(Router::new(), Request::new(Body::empty()));
        assert!(std::mem::size_of_val(&answer) <= 2048, "{} bytes", std::mem::size_of_val(&answer));
    }
}
