//! `--request-timeout`: a request not answered within the time gets a 503 with a JSON
//! message, and its work is dropped, as when the client goes away: a database query under way
//! is interrupted (SQLite) or cancelled on the server (PostgreSQL), see `storage::db`.
//!
//! The time runs to the answer's head; a body that streams (a file download) is not cut
//! short once it has started.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::http::error::ApiError;

/// The tower layer: at most `limit` to the answer's head.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub limit: Duration,
}

impl<S> Layer<S> for Deadline {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService { inner, limit: self.limit }
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<Request> for DeadlineService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        DeadlineFuture { inner: self.inner.call(request), sleep: tokio::time::sleep(self.limit), limit: self.limit }
    }
}

pin_project_lite::pin_project! {
    /// The answer, or the 503 when the time is up (the answer's work is dropped with it).
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: tokio::time::Sleep,
        limit: Duration,
    }
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        std::task::ready!(this.sleep.poll(cx));
        Poll::Ready(Ok(timed_out(*this.limit)))
    }
}

fn timed_out(limit: Duration) -> Response {
    let seconds = limit.as_secs_f64();
    ApiError::Unavailable(format!(
        "The request was not answered within the server's time limit ({seconds} s) and was stopped; \
         narrow it down (filters, a smaller limit) or try again later."
    ))
    .into_response()
}
