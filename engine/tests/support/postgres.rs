//! A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary directory, the
//! server on a free port on 127.0.0.1 (and its socket in that directory), gone afterwards. It
//! exists so the PostgreSQL store is tested against a real server, never a mock, on any machine
//! where `tools/test` ran (it installs Debian's `postgresql` when the binaries are missing).
//!
//! Debian's server refuses to run as root, and CI runs as root: then the cluster belongs to the
//! `postgres` user (created by the package) and every server command runs through `runuser`.
//! Cleaning up must happen even when a test panics or the process is killed, and a cluster kept
//! in a `static` is never dropped: so besides the [`Drop`] guard, a small watchdog process waits
//! for the test process to end and then stops the server and removes the directory.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use webcare_engine::store::postgres::PgUrl;

/// Where Debian (and most distributions) keep the server binaries, which are not on `PATH`.
const DEBIAN_DIR: &str = "/usr/lib/postgresql";

/// The directory with `initdb`, `pg_ctl` and `postgres`: `WEBCARE_PG_BIN`, else `PATH`, else the
/// newest `/usr/lib/postgresql/*/bin`. Panics with what to do when there is none.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEBCARE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    // A `PATH` entry may hold symlinks only (`/usr/local/bin/initdb`); the server binary
    // `postgres` must be beside `initdb`, so follow the link.
    if let Some(dir) = on_path
        && let Ok(real) = std::fs::canonicalize(dir.join("initdb"))
        && let Some(parent) = real.parent()
    {
        return parent.to_owned();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "the PostgreSQL server binaries (initdb, pg_ctl) were not found in PATH or {DEBIAN_DIR}/*/bin: \
             run `tools/test` (it installs Debian's `postgresql` package), or set WEBCARE_PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A running cluster; stopped and removed on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The unprivileged user the server runs as when the tests run as root.
    run_as: Option<String>,
    databases: AtomicU32,
}

impl Cluster {
    /// Creates and starts a new cluster.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("webcare-pg-")
            .tempdir()
            .expect("a temporary directory for the cluster");
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            // The server's user must own its directory; the temp dir itself is 0700 root.
            let status = Command::new("chown")
                .args(["-R", &format!("{user}:")])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "cannot hand `{}` to the `{user}` user (Debian's postgresql package creates it; run `tools/test`)",
                dir.path().display()
            );
        }
        let port = free_port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            run_as,
            databases: AtomicU32::new(0),
        };
        cluster.watchdog();
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "webcare",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        cluster.start_server();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a server binary (as the server's user when we are root); panics with its output
    /// when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", exe.display()));
        assert!(
            out.status.success(),
            "`{program} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again, after [`Cluster::stop_server`]) and waits until it accepts
    /// connections.
    pub fn start_server(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200",
            self.port,
            path(self.dir.path())
        );
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-o",
                &options,
            ],
        );
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn stop_server(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["stop", "-w", "-m", "immediate", "-D", path(&data)],
        );
    }

    /// A URL of a new, empty database of its own, for one test.
    pub fn new_database(&self) -> PgUrl {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{n}");
        let mut admin = postgres::Client::connect(&self.url_of("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        PgUrl::new(self.url_of(&name))
    }

    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://webcare@127.0.0.1:{}/{database}", self.port)
    }

    /// A process that outlives a panicking or killed test binary and then stops the server and
    /// removes the directory.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} stop -m immediate -D '{data}' >/dev/null 2>&1; \
             pid=$(head -1 '{data}/postmaster.pid' 2>/dev/null) && kill -9 \"$pid\" 2>/dev/null; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        // Its own session, so the test harness ending does not take it along.
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&pg_ctl);
                c
            }
            None => Command::new(&pg_ctl),
        };
        let _ = cmd
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // If pg_ctl could not stop it, the postmaster goes by its pid.
        if let Ok(pid) = std::fs::read_to_string(data.join("postmaster.pid"))
            && let Some(pid) = pid.lines().next()
        {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
