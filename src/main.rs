//! The `aiida-rest` command: serve an AiiDA storage over REST API v4.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use aiida_rest::http::listener::LenientListener;
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
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
    }
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
    tracing::info!("serving {description} at http://{local}{prefix}/");
    eprintln!(" * REST API running on http://{local}{prefix}");
    // Ctrl-C or a service manager's SIGTERM: finish the requests under way, then stop.
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await; } } => {}
        }
        tracing::info!("shutting down");
    };
    if let Err(e) = axum::serve(LenientListener(listener), app).with_graceful_shutdown(shutdown).await {
        eprintln!("aiida-rest: server error: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
