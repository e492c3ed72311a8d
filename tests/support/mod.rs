//! What the end-to-end tests share: the `webcare` binary with a clean environment, users added
//! as an operator adds them, and for the browser tests finding Chromium and chromedriver, one
//! chromedriver per test on a free port, and a headless browser session. A test file takes it
//! with `mod support;`; not every file uses every helper, hence the `dead_code` allowance.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// The `webcare` binary run in `dir`, without the settings and tokens of the environment the
/// tests run in.
pub fn webcare(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command.current_dir(dir).env("RUST_LOG", "warn");
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") || name.ends_with("_BOT_TOKEN") {
            command.env_remove(name);
        }
    }
    command
}

/// Copies the repository's `rules/` and `scripts/` into `dir` (subfolders such as
/// `rules/examples/` included), so a test can edit a rulebook; returns the rules folder.
pub fn copy_rulebook(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["rules", "scripts"] {
        copy_tree(&root.join(sub), &dir.join(sub));
    }
    dir.join("rules")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, target).expect("copy");
        }
    }
}

/// `webcare user add` with the password on stdin, as an operator runs it before the service
/// starts.
pub fn add_user(dir: &Path, login: &str, role: &str, team: Option<&str>, password: &str) {
    let mut args = vec!["user", "add", login, "--role", role];
    if let Some(team) = team {
        args.extend(["--team", team]);
    }
    let mut add = webcare(dir)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `env`, or else the first of `candidates` that exists; a clear panic naming the packages
/// otherwise, because a missing browser is a setup problem, not a failing feature.
pub fn binary(env: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} not found; install Debian's `chromium` and `chromium-driver` (apt-get install chromium chromium-driver) or set {env}",
                candidates.first().unwrap_or(&"")
            )
        })
}

/// A chromedriver child on a free port, stopped on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let chromedriver = binary(
            "WEBCARE_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with its own profile directory; `extra_args` such as a window
/// size go after the fixed ones.
pub async fn browser(driver: &Driver, profile: &Path, extra_args: &[&str]) -> Client {
    let chromium = binary(
        "WEBCARE_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    .iter()
    .chain(extra_args)
    .map(|a| (*a).to_owned())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// The stdout lines of a started `webcare`, collected as they come.
pub type PrintedLines = Arc<Mutex<Vec<String>>>;

/// Starts `command` (stdout piped; stderr piped or not) and collects its stdout lines as they
/// come, so a test can wait for a start line, and its stderr whole, for the end of the test
/// (`None` when stderr is not piped).
pub fn spawn_printing(command: &mut Command) -> (Child, PrintedLines, Option<JoinHandle<String>>) {
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let logged = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });
    (child, lines, logged)
}

/// Clicks the first element matching `css`, waiting up to 20 s for it to appear.
pub async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of the first element matching `css`, waiting for it to appear. After a click
/// that posts a form the element found may belong to the page being replaced; reading it
/// then fails as stale, and it is looked up again on the new page.
pub async fn text_of(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let element = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap();
        match element.text().await {
            Ok(text) => return text,
            Err(e) if Instant::now() < deadline => {
                eprintln!("reading `{css}` again: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("`{css}`: {e}"),
        }
    }
}
