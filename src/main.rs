//! The `aiida-rest` command: serve an AiiDA storage over REST API v4.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use aiida_rest::http::serve::{self as server, ServeOptions};
use aiida_rest::http::v4::V4;
use aiida_rest::http::{App, AppState, Settings};
use aiida_rest::storage::db::DbLimits;
use aiida_rest::storage::{self, Source};

#[derive(Parser)]
#[command(name = "aiida-rest", version, about = "A fast, read-only REST server for AiiDA provenance databases")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an AiiDA archive, a core.sqlite_dos profile folder, a PostgreSQL database, or a
    /// configured profile.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A `.aiida` archive file, a `core.sqlite_dos` profile folder (database.sqlite +
    /// container/), or the URL of a core.psql_dos database,
    /// `postgresql://user[:password]@host[:port]/database` (with --repository; the password
    /// may also come from $PGPASSWORD). Without it (and without --profile) the default profile
    /// of the AiiDA configuration is served, as `verdi` picks it ($AIIDA_PATH or ~/.aiida); the
    /// demo archive built into the program where there is no configuration or no profile.
    storage: Option<PathBuf>,
    /// The disk-objectstore container of the PostgreSQL database given as STORAGE (the
    /// container folder, or the folder holding `container/`).
    #[arg(long)]
    repository: Option<PathBuf>,
    /// Serve this profile of the AiiDA configuration ($AIIDA_PATH or ~/.aiida).
    #[arg(long, conflicts_with = "storage", env = "AIIDA_REST_PROFILE")]
    profile: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "AIIDA_REST_HOST")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 5000, env = "AIIDA_REST_PORT")]
    port: u16,
    /// Most database connections used at once.
    #[arg(long, default_value_t = 8, env = "AIIDA_REST_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Longest time one database query may run, in seconds.
    #[arg(long, default_value_t = 30, env = "AIIDA_REST_STATEMENT_TIMEOUT")]
    statement_timeout: u64,
    /// The most rows one answer may hold (a negative `limit` and QueryBuilder queries are
    /// capped by it).
    #[arg(long, default_value_t = 10_000, env = "AIIDA_REST_MAX_ROWS")]
    max_rows: i64,
    /// Do not serve POST /querybuilder (as `verdi restapi --no-posting`).
    #[arg(long)]
    no_posting: bool,
    /// Seconds a client has to send a complete request head (also the longest idle time
    /// between requests on a kept-alive connection, and the longest pause inside a request body).
    #[arg(long, default_value_t = 10, env = "AIIDA_REST_HEADER_TIMEOUT")]
    header_timeout: u64,
    /// Most client connections open at once; at the limit, the connection idle the longest is
    /// closed to make room. Default: the open-files limit less an eighth and 64, at most 10000.
    #[arg(long, env = "AIIDA_REST_MAX_OPEN_CONNECTIONS")]
    max_open_connections: Option<usize>,
    /// Seconds that requests under way may take to finish after SIGTERM or Ctrl-C; then the
    /// remaining connections are dropped.
    #[arg(long, default_value_t = 10, env = "AIIDA_REST_SHUTDOWN_GRACE")]
    shutdown_grace: u64,
    /// The public base URL of the server (e.g. `https://example.org/aiida` behind a proxy):
    /// the start of every absolute URL in the answers (`url`, `url_root`, `Link`), instead of
    /// the request's Host.
    #[arg(long, env = "AIIDA_REST_PUBLIC_URL", value_parser = server::public_origin)]
    public_url: Option<server::Origin>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("aiida_rest=info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aiida-rest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
    };
    // Database queries still running on the blocking pool do not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(args: ServeArgs) -> ExitCode {
    let source = match (&args.storage, &args.profile) {
        (Some(storage), _) => {
            let text = storage.to_string_lossy();
            let is_url = text.starts_with("postgresql://") || text.starts_with("postgres://");
            match (is_url, &args.repository) {
                (true, Some(repository)) => Source::Postgres { url: text.into_owned(), repository: repository.clone() },
                (true, None) => {
                    eprintln!("aiida-rest: a PostgreSQL database needs its file repository: add --repository PATH");
                    return ExitCode::from(2);
                }
                (false, Some(_)) => {
                    eprintln!(
                        "aiida-rest: --repository goes with a postgresql:// URL; archives and profile folders hold their own files"
                    );
                    return ExitCode::from(2);
                }
                (false, None) => Source::Path(storage.clone()),
            }
        }
        (None, _) if args.repository.is_some() => {
            eprintln!("aiida-rest: --repository goes with a postgresql:// URL");
            return ExitCode::from(2);
        }
        (None, Some(name)) => Source::Profile(name.clone()),
        (None, None) => Source::Default,
    };
    let limits = DbLimits {
        max_connections: args.max_connections.max(1),
        statement_timeout: Duration::from_secs(args.statement_timeout.max(1)),
    };
    let storage = match storage::open(&source, limits).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aiida-rest: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = Settings { posting: !args.no_posting, max_rows: args.max_rows.max(1), ..Settings::default() };
    let prefix = settings.prefix.clone();
    let description = storage.description.clone();
    let state = AppState { storage: Arc::new(storage), settings: Arc::new(settings) };
    let app = App::new()
        .nest(&prefix, V4::new(state.clone()))
        .nest("/api/v2", aiida_rest::http::v2::V2::new(state))
        .into_router();
    let open_files = server::raise_open_files_limit();
    let options = ServeOptions {
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        max_open_connections: args
            .max_open_connections
            .unwrap_or_else(|| server::default_max_open_connections(open_files))
            .max(1),
        public_url: args.public_url,
    };
    let addr = format!("{}:{}", args.host, args.port);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("aiida-rest: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let local: SocketAddr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("aiida-rest: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        "serving {description} at http://{local}{prefix}/ (at most {} connections, open files limit {})",
        options.max_open_connections,
        open_files.map_or("unknown".to_string(), |n| n.to_string())
    );
    eprintln!(" * REST API running on http://{local}{prefix}");
    // Ctrl-C or a service manager's SIGTERM: stop accepting, give the requests under way the
    // grace period, then stop.
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await; } } => {}
        }
        tracing::info!("shutting down");
    };
    if let Err(e) = server::serve(listener, app, options, shutdown).await {
        eprintln!("aiida-rest: server error: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
