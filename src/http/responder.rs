//! [`Responder`]: what a mounted API is, and what the whole application is once built.
//!
//! Both used to be axum `Router`s: the application a router whose only route was its fallback
//! (the middleware), each API a router whose only route was its fallback (its `handle`). Every
//! request then went through three routers, each matching the path, cloning a boxed route and
//! boxing its future, and through axum's extractors for the API's handler. The code for that
//! cost `/server` a fifth of its throughput in instruction-cache misses alone. The routing the
//! application needs (which API a prefix belongs to) is one router, in [`super::App`]; what
//! it routes to, and what the server calls, is a function from a request to its answer.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::Uri;
use axum::response::Response;
use futures_util::future::BoxFuture;
use tower::{Service, ServiceExt};

use super::Ctx;

/// A function from a request to its answer, shared: cloning it is an `Arc` clone, and a call
/// boxes one future.
#[derive(Clone)]
pub struct Responder(Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>);

impl Responder {
    /// An API whose every request goes to `handle`, with a clone of `state`, the request's
    /// [`Ctx`] (what the answer echoes: the path as received), its URI below the prefix it is
    /// mounted at, and its body.
    pub fn new<S, H, F>(state: S, handle: H) -> Self
    where
        S: Clone + Send + Sync + 'static,
        H: Fn(S, Ctx, Uri, Body) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        Self::from_fn(move |request: Request| {
            let (parts, body) = request.into_parts();
            let ctx = Ctx::of(&parts);
            handle(state.clone(), ctx, parts.uri, body)
        })
    }

    /// A function of the whole request (its headers, its extensions) as a responder.
    pub fn from_fn<H, F>(handle: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        Self(Arc::new(move |request: Request| Box::pin(handle(request)) as BoxFuture<'static, Response>))
    }

    /// Any service (a `Router` with routes of its own, a middleware stack) as a responder.
    pub fn from_service<S>(service: S) -> Self
    where
        S: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        Self::from_fn(move |request: Request| {
            let answer = service.clone().oneshot(request);
            async move {
                let Ok(response) = answer.await;
                response
            }
        })
    }
}

impl<B> Service<axum::http::Request<B>> for Responder
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Map<BoxFuture<'static, Response>, fn(Response) -> Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        use futures_util::FutureExt;
        (self.0)(request.map(Body::new)).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn an_api_sees_its_state_the_received_path_and_the_body() {
        let responder = Responder::new("state", async |state: &str, ctx: Ctx, uri: Uri, body: Body| {
            let body = body.collect().await.unwrap().to_bytes();
            format!("{state} {} {} {}", ctx.path, uri.path(), String::from_utf8_lossy(&body)).into_response()
        });
        let mut request = Request::builder().uri("/below").body(Body::from("sent")).unwrap();
        request.extensions_mut().insert(super::super::path::ReceivedUri("/api/x/below".parse().unwrap()));
        let response = responder.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(text, "state /api/x/below /below sent");
    }

    #[tokio::test]
    async fn a_router_as_a_responder() {
        let router = axum::Router::new().route("/a", axum::routing::get(async || "a"));
        let responder = Responder::from_service(router);
        let answer = |uri: &'static str| {
            let responder = responder.clone();
            async move { responder.oneshot(Request::builder().uri(uri).body(String::new()).unwrap()).await.unwrap() }
        };
        assert_eq!(answer("/a").await.status(), StatusCode::OK);
        assert_eq!(answer("/b").await.status(), StatusCode::NOT_FOUND);
    }
}
