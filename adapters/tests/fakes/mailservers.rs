//! Real mail servers for the e-mail tests, started by the tests on 127.0.0.1: Debian's Dovecot
//! (IMAP with IDLE) with a throwaway configuration in a temp dir, and aiosmtpd (Debian's
//! `python3-aiosmtpd`) as the SMTP server, which stores what it receives in a maildir the test
//! reads. `tools/test` installs both when missing. Not fakes: the adapter speaks to them as to
//! any provider's servers.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "gemeente";
pub const PASSWORD: &str = "imap-test-password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    // SIGTERM, so Dovecot's master stops the processes it started.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub struct Dovecot {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Dovecot {
    /// Starts Dovecot in `dir` (which it may change: the mail store is under it).
    pub fn start(dir: &Path) -> Dovecot {
        let binary =
            std::env::var("WEBCARE_DOVECOT").unwrap_or_else(|_| "/usr/sbin/dovecot".into());
        let root = unsafe_free_is_root();
        // As root Dovecot refuses to run its login and mail processes as root: Debian's
        // package brings the `dovecot` and `dovenull` users for that.
        let me = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let (internal, login) = if root {
            ("dovecot".to_owned(), "dovenull".to_owned())
        } else {
            (me.clone(), me)
        };
        let mail = dir.join("mail");
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // The mail processes run as `internal`, which must reach the mail store.
        set_mode(dir, 0o755);
        set_mode(&mail, 0o777);
        let port = free_port();
        let d = dir.display();
        let config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nfirst_valid_uid = 1\n\
             default_internal_user = {internal}\ndefault_internal_group = {internal}\n\
             default_login_user = {login}\nmail_location = maildir:{d}/mail/%u\n\
             passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={internal} gid={internal} home={d}/mail/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n\
             protocol imap {{\n  imap_idle_notify_interval = 1 mins\n}}\n"
        );
        let path = dir.join("dovecot.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(binary)
            .args(["-F", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot runs (Debian's dovecot-imapd; tools/test installs it)");
        wait_for_port(port, "dovecot", &dir.join("dovecot.log"));
        Dovecot {
            port,
            dir: dir.to_owned(),
            child,
        }
    }

    /// Delivers `mail` into the user's INBOX with a plain IMAP APPEND (what a mail server's
    /// delivery agent does), over a connection of its own.
    pub fn deliver(&self, mail: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        let mut expect = |reader: &mut BufReader<TcpStream>, tag: &str| loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "dovecot closed the connection");
            if line.starts_with(tag) {
                assert!(line.contains("OK"), "{line}");
                return;
            }
        };
        expect(&mut reader, "* OK");
        write!(stream, "a1 LOGIN {USER} {PASSWORD}\r\n").unwrap();
        expect(&mut reader, "a1 ");
        let mail = mail.replace("\r\n", "\n").replace('\n', "\r\n");
        write!(stream, "a2 APPEND INBOX {{{}}}\r\n", mail.len()).unwrap();
        let mut plus = String::new();
        reader.read_line(&mut plus).unwrap();
        assert!(plus.starts_with('+'), "{plus}");
        stream.write_all(mail.as_bytes()).unwrap();
        stream.write_all(b"\r\n").unwrap();
        expect(&mut reader, "a2 ");
        write!(stream, "a3 LOGOUT\r\n").unwrap();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn unsafe_free_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// aiosmtpd, storing every mail it receives in a maildir.
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> SmtpSink {
        let python = std::env::var("WEBCARE_PYTHON3").unwrap_or_else(|_| "/usr/bin/python3".into());
        let port = free_port();
        let maildir = dir.join("sent");
        let log = dir.join("aiosmtpd.log");
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("aiosmtpd runs (Debian's python3-aiosmtpd; tools/test installs it)");
        wait_for_port(port, "aiosmtpd", &log);
        SmtpSink {
            port,
            maildir,
            child,
        }
    }

    /// Every mail received so far, raw.
    pub fn received(&self) -> Vec<String> {
        let mut mails = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                mails.push(std::fs::read_to_string(path).unwrap());
            }
        }
        mails
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
