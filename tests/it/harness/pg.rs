//! PostgreSQL for the tests: the server named by `AIIDA_REST_TEST_PG_URL`, or a throwaway
//! cluster started from the PostgreSQL binaries of this machine (as an unprivileged user when
//! the tests run as root) on a free loopback port, and removed when the test binary exits.
//! Each fixture database is made with the real psql_dos schema and the rows of the reference
//! profile, with their original ids.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, Once};

use tokio_postgres::NoTls;

pub const URL_VAR: &str = "AIIDA_REST_TEST_PG_URL";

/// The fixture database shared by the tests of one test binary.
static SHARED: LazyLock<Result<Shared, String>> = LazyLock::new(make_shared);

struct Shared {
    url: String,
    /// The superuser's URL on the same server, for the databases of the other fixtures.
    admin: String,
    // Never dropped: statics are not; the exit hook removes the cluster.
    _cluster: Option<Cluster>,
}

fn make_shared() -> Result<Shared, String> {
    if let Ok(admin) = std::env::var(URL_VAR) {
        let url = load_fixture(&admin, true)?;
        return Ok(Shared { url, admin, _cluster: None });
    }
    let cluster = Cluster::start()?;
    let admin = cluster.admin_url();
    let url = load_fixture(&admin, false)?;
    Ok(Shared { url, admin, _cluster: Some(cluster) })
}

/// The second fixture (`tests/fixtures/fixture2-profile`) in its own database on the server of
/// [`shared`].
static SHARED2: LazyLock<Result<String, String>> = LazyLock::new(|| match &*SHARED {
    Ok(shared) => load_data(&shared.admin, std::env::var(URL_VAR).is_ok(), "fixture2-profile.pg.sql"),
    Err(why) => Err(why.clone()),
});

/// The URL of the second fixture's database, like [`shared`] (a failure in CI when PostgreSQL
/// is not available, else `None` after a notice).
pub fn shared2() -> Option<&'static str> {
    match &*SHARED2 {
        Ok(url) => Some(url),
        Err(why) => {
            unavailable(why);
            None
        }
    }
}

/// The URL of the shared fixture database, or `None` (after a notice) when PostgreSQL is not
/// available here. Under CI a missing PostgreSQL fails the test instead.
pub fn shared() -> Option<&'static str> {
    match &*SHARED {
        Ok(shared) => Some(&shared.url),
        Err(why) => {
            unavailable(why);
            None
        }
    }
}

/// Says why a PostgreSQL test cannot run: a failure in CI, a skip notice elsewhere.
pub fn unavailable(why: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    if ci {
        panic!("PostgreSQL tests cannot run: {why}");
    }
    eprintln!("NOTICE: PostgreSQL test skipped: {why}");
}

/// A PostgreSQL cluster of our own in a temporary folder.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    pub port: u16,
}

impl Cluster {
    pub fn start() -> Result<Cluster, String> {
        let bin = find_bin().ok_or(
            "no PostgreSQL server binaries (initdb, pg_ctl): install the Debian package `postgresql`, \
             or point AIIDA_REST_TEST_PG_URL at a server",
        )?;
        let run_as = if running_as_root() { Some(unprivileged_user()?) } else { None };
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        // The server's account must reach the folder; $TMPDIR may be private to root.
        let base = if run_as.is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = base.join(format!("aiida-rest-pg-{}-{}", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let mut cluster = Cluster { dir, bin, run_as, port: 0 };
        register_cleanup(&cluster);
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "--locale=C", "--encoding=UTF8", "--auth=trust", "-U", "postgres", "--no-sync"],
        )?;
        let socket_dir = cluster.dir.display().to_string();
        let mut last_error = String::new();
        // A port found free can be taken before the server binds it: try a few.
        for _ in 0..3 {
            cluster.port = free_port()?;
            let conf = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{socket_dir}'\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 40\n",
                cluster.port
            );
            append(&Path::new(&data).join("postgresql.conf"), &conf)?;
            match cluster.start_again() {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The superuser's URL for the maintenance database.
    pub fn admin_url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: open sessions are ended).
    pub fn stop(&self) -> Result<(), String> {
        self.run("pg_ctl", &["stop", "-D", &self.data(), "-m", "fast", "-w", "-t", "60"])
    }

    pub fn start_again(&self) -> Result<(), String> {
        let log = self.dir.join("server.log").display().to_string();
        self.run("pg_ctl", &["start", "-D", &self.data(), "-l", &log, "-w", "-t", "60"]).map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            format!("{e}\nserver log (last lines, newest first):\n{}", tail.join("\n"))
        })
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().map_err(|e| format!("cannot run {tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        cleanup(&self.dir);
    }
}

struct Registered {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    watchdog: Option<std::process::Child>,
}

static CLUSTERS: Mutex<Vec<Registered>> = Mutex::new(Vec::new());
static DATABASES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn at_exit() {
    let dirs: Vec<PathBuf> = CLUSTERS.lock().map(|c| c.iter().map(|r| r.dir.clone()).collect()).unwrap_or_default();
    for dir in dirs {
        cleanup(&dir);
    }
    let databases = std::mem::take(&mut *DATABASES.lock().unwrap_or_else(|e| e.into_inner()));
    if !databases.is_empty() {
        let _ = std::thread::spawn(move || drop_databases(databases)).join();
    }
}

fn install_exit_hook() {
    static HOOK: Once = Once::new();
    // Statics are never dropped, so the shared cluster is removed at process exit.
    HOOK.call_once(|| unsafe {
        atexit(at_exit);
    });
}

/// Removes the cluster at exit, and also if this process dies without running exit hooks: a
/// watchdog shell waits for it and then stops the server and deletes the folder.
fn register_cleanup(cluster: &Cluster) {
    install_exit_hook();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         if [ -f '{dir}/data/postmaster.pid' ]; then \
           p=$(head -n 1 '{dir}/data/postmaster.pid'); kill -QUIT \"$p\" 2>/dev/null; \
           for i in $(seq 1 50); do kill -0 \"$p\" 2>/dev/null || break; sleep 0.2; done; \
         fi; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = cluster.dir.display()
    );
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    CLUSTERS.lock().unwrap_or_else(|e| e.into_inner()).push(Registered {
        dir: cluster.dir.clone(),
        bin: cluster.bin.clone(),
        run_as: cluster.run_as,
        watchdog,
    });
}

fn cleanup(dir: &Path) {
    let registered = {
        let mut clusters = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
        let index = clusters.iter().position(|r| r.dir == dir);
        index.map(|i| clusters.remove(i))
    };
    let Some(mut r) = registered else { return };
    if r.dir.join("data/postmaster.pid").exists() {
        let mut cmd = Command::new(r.bin.join("pg_ctl"));
        cmd.args(["stop", "-D", &r.dir.join("data").display().to_string(), "-m", "immediate", "-w"])
            .current_dir(&r.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = r.run_as {
            cmd.uid(uid).gid(gid);
        }
        let _ = cmd.status();
    }
    let _ = std::fs::remove_dir_all(&r.dir);
    // Cleaned up in time: the watchdog has nothing left to do.
    if let Some(mut watchdog) = r.watchdog.take() {
        let _ = watchdog.kill();
        let _ = watchdog.wait();
    }
}

/// `initdb` and `pg_ctl` of the newest PostgreSQL installed (Debian keeps them off PATH).
fn find_bin() -> Option<PathBuf> {
    let complete = |dir: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|t| dir.join(t).is_file());
    if let Some(dir) = std::env::var_os("AIIDA_REST_TEST_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| complete(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| complete(d))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// PostgreSQL refuses to run as root: use the `postgres` account, else `nobody`.
fn unprivileged_user() -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .ok_or_else(|| "running as root and no postgres or nobody account".into())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut file =
        std::fs::OpenOptions::new().append(true).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Creates a new database on the server of `admin_url` (C collation, so text sorts as in
/// SQLite), loads the schema and the fixture rows, and returns its URL. `drop_at_exit`: for
/// servers that outlive the tests.
pub fn load_fixture(admin_url: &str, drop_at_exit: bool) -> Result<String, String> {
    load_data(admin_url, drop_at_exit, "ref-profile.pg.sql")
}

/// [`load_fixture`] with the rows of `data`, a file of `tests/fixtures/`.
pub fn load_data(admin_url: &str, drop_at_exit: bool, data: &str) -> Result<String, String> {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let name = format!("aiida_rest_test_{}_{}", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
    let admin_url = admin_url.to_string();
    let url = with_database(&admin_url, &name);
    if drop_at_exit {
        install_exit_hook();
        DATABASES.lock().unwrap_or_else(|e| e.into_inner()).push((admin_url.clone(), name.clone()));
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // The dump starts with psql meta-commands (`\restrict`), which only psql understands.
    let schema: String = std::fs::read_to_string(fixtures.join("psql_dos-schema.sql"))
        .map_err(|e| e.to_string())?
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n");
    let data = std::fs::read_to_string(fixtures.join(data)).map_err(|e| e.to_string())?;
    let db_url = url.clone();
    // Tests call this from inside their own runtime, which cannot block on another.
    std::thread::spawn(move || {
        runtime()?.block_on(async {
            let admin = connect(&admin_url).await?;
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                ))
                .await
                .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
            let db = connect(&db_url).await?;
            db.batch_execute(&schema).await.map_err(|e| format!("loading the schema: {}", pg_error(&e)))?;
            db.batch_execute(&data).await.map_err(|e| format!("loading the fixture rows: {}", pg_error(&e)))?;
            Ok::<_, String>(())
        })
    })
    .join()
    .map_err(|_| "the loader thread panicked".to_string())??;
    Ok(url)
}

fn drop_databases(databases: Vec<(String, String)>) {
    let Ok(rt) = runtime() else { return };
    rt.block_on(async {
        for (admin_url, name) in databases {
            if let Ok(admin) = connect(&admin_url).await {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            }
        }
    });
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

/// A plain client (not the server's pool) for setting up and inspecting test databases.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.map_err(|e| format!("connecting to {url}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({:?})", db.severity(), db.message(), db.where_()),
        None => e.to_string(),
    }
}
