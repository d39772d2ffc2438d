//! The landing page at `/`: an HTML page listing the databases served, each with its node
//! count, links to its API roots, OpenAPI documents and documentation pages, and links that
//! open it in the AiiDA explorers. No script and no asset from the network: it works offline.
//!
//! Node counts come from the cached statistics (`query::stats::statistics`, computed when a
//! storage opens and kept while its fingerprint is unchanged), not from a count per view. With
//! several databases a view opens those that are closed (at most [`OPENING_AT_ONCE`] at a
//! time); one that cannot open is listed with its 503 message.

use std::sync::Arc;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, any};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::http::Ctx;
use crate::http::error::ApiError;
use crate::http::openapi::{STYLE, escape};
use crate::query::stats;
use crate::storage::Storage;

/// The new aiida-explorer web app (aiidateam/aiida-explorer), `?api_url=<API root>`.
pub const EXPLORER: &str = "https://aiidateam.github.io/aiida-explorer/";
/// The Materials Cloud explorer for one's own REST API, `?base_url=<API root>`.
pub const MATERIALS_CLOUD_EXPLORER: &str = "https://www.materialscloud.org/explore/ownrestapi";

/// Databases opened at once by one view of the page.
pub const OPENING_AT_ONCE: usize = 8;

/// Opens (or finds open) the storage of a database; the error is the 503 message.
pub type Opener = Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<Storage>, String>> + Send + Sync>;

/// One database on the page.
#[derive(Clone)]
pub struct Listed {
    /// Its name, with several databases.
    pub name: Option<String>,
    /// Where its v4 and v2 are mounted.
    pub v4: String,
    pub v2: String,
    /// Whether it is also the default database (served at `/api/v4`).
    pub default: bool,
    pub open: Opener,
}

impl Listed {
    /// The one storage of a single-storage server.
    pub fn single(storage: Arc<Storage>, v4: &str, v2: &str) -> Self {
        let open: Opener = Arc::new(move || {
            let storage = storage.clone();
            Box::pin(async move { Ok(storage) })
        });
        Listed { name: None, v4: v4.into(), v2: v2.into(), default: true, open }
    }
}

/// The page's handler, for `App::root`.
pub fn page(databases: Vec<Listed>) -> MethodRouter {
    let databases = Arc::new(databases);
    any(move |ctx: Ctx| {
        let databases = databases.clone();
        async move {
            if ctx.method != Method::GET {
                return ApiError::MethodNotAllowed("GET, HEAD").into_response();
            }
            let rows = futures_util::stream::iter(databases.iter().cloned())
                .map(|listed| async move {
                    let count = match (listed.open)().await {
                        Ok(storage) => match stats::statistics(&storage.db, None).await {
                            Ok(statistics) => Ok(statistics.total),
                            Err(err) => {
                                let err = ApiError::from(err);
                                Err(format!("{}: {err}", err.status().as_u16()))
                            }
                        },
                        Err(message) => Err(format!(
                            "503: The database '{}' is not available: {message}",
                            listed.name.as_deref().unwrap_or("")
                        )),
                    };
                    (listed, count)
                })
                .buffered(OPENING_AT_ONCE)
                .collect::<Vec<_>>()
                .await;
            let mut response = (StatusCode::OK, render(&ctx, &rows)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    })
}

/// Percent-encodes a URL for a query value (RFC 3986's unreserved characters stay).
fn query_value(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

fn render(ctx: &Ctx, rows: &[(Listed, Result<i64, String>)]) -> String {
    let several = rows.iter().any(|(l, _)| l.name.is_some());
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>aiida-rest</title><style>{STYLE}</style></head><body>\
         <h1>AiiDA REST API</h1><p>aiida-rest {} serves {} read-only: the REST API v4 of aiida-core (<code>verdi restapi</code>) and the older v2.</p>",
        env!("CARGO_PKG_VERSION"),
        if several { format!("{} databases", rows.len()) } else { "one AiiDA database".to_string() },
    );
    html.push_str(
        "<table id=\"databases\"><tr><th>Database</th><th>Nodes</th><th>REST API</th><th>OpenAPI</th><th>Documentation</th><th>Explore</th></tr>",
    );
    for (listed, count) in rows {
        let name = match (&listed.name, listed.default && several) {
            (Some(name), true) => format!("<strong>{}</strong> (default, also at <code>/api/v4</code>)", escape(name)),
            (Some(name), false) => format!("<strong>{}</strong>", escape(name)),
            (None, _) => "<strong>this server's database</strong>".to_string(),
        };
        // Relative links: they hold behind a proxy that serves the server under a sub-path.
        let docs = |prefix: &str, end: &str, label: &str| {
            format!("<a href=\"{}{end}\">{label}</a>", escape(prefix.trim_start_matches('/')))
        };
        let openapi =
            format!("{} {}", docs(&listed.v4, "/openapi.json", "v4"), docs(&listed.v2, "/openapi.json", "v2"));
        let documentation = format!("{} {}", docs(&listed.v4, "/docs", "v4"), docs(&listed.v2, "/docs", "v2"));
        let (nodes, api, explore, state) = match count {
            Ok(total) => {
                let root = format!("{}{}", ctx.origin, listed.v4);
                let explore = format!(
                    "<a class=\"explorer\" href=\"{EXPLORER}?api_url={}\">aiida-explorer</a> <a class=\"explorer\" href=\"{MATERIALS_CLOUD_EXPLORER}?base_url={}\">Materials Cloud</a>",
                    escape(&query_value(&root)),
                    escape(&query_value(&root)),
                );
                let api = format!("{} {}", docs(&listed.v4, "/", "v4"), docs(&listed.v2, "/", "v2"));
                (format!("<span class=\"count\">{total}</span>"), api, explore, "ok")
            }
            Err(message) => (
                format!("<span class=\"error\">{}</span>", escape(message)),
                String::new(),
                String::new(),
                "unavailable",
            ),
        };
        html.push_str(&format!(
            "<tr class=\"database\" data-state=\"{state}\"><td>{name}</td><td>{nodes}</td><td>{api}</td><td>{openapi}</td><td>{documentation}</td><td>{explore}</td></tr>"
        ));
    }
    html.push_str(
        "</table><p>The explorers run in your browser and read the API from there: the server must be reachable from it.</p></body></html>\n",
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(name: &str) -> Listed {
        let open: Opener = Arc::new(|| Box::pin(async { Err("no such file".to_string()) }));
        Listed {
            name: Some(name.into()),
            v4: format!("/{name}/api/v4"),
            v2: format!("/{name}/api/v2"),
            default: false,
            open,
        }
    }

    #[test]
    fn rows_escape_and_link() {
        let ctx = Ctx::new(Method::GET, &"/".parse().unwrap(), &Default::default());
        let ok = failing("a<b");
        let rows =
            vec![(ok, Ok(12)), (failing("broken"), Err("503: The database 'broken' is not available: gone".into()))];
        let html = render(&ctx, &rows);
        assert!(html.contains("<strong>a&lt;b</strong>"));
        assert!(html.contains("<span class=\"count\">12</span>"));
        assert!(html.contains("aiida-explorer/?api_url=http%3A%2F%2Flocalhost%2Fa%3Cb%2Fapi%2Fv4"));
        assert!(html.contains("503: The database &#39;broken&#39; is not available: gone"));
        assert!(!html.contains("href=\"broken/api/v4/\""), "no API link to a database that is not available");
        assert!(html.contains("href=\"broken/api/v4/docs\""));
        assert!(!html.contains("<script"));
    }
}
