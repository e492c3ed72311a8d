//! Real mail servers for the e-mail tests, started by the tests on 127.0.0.1: Debian's Dovecot
//! (IMAP with IDLE) with a throwaway configuration in a temp dir, and aiosmtpd (Debian's
//! `python3-aiosmtpd`) as the SMTP server, which stores what it receives in a maildir the test
//! reads. `tools/test` installs both when missing. Not fakes: the adapter speaks to them as to
//! any provider's servers. Dovecot can also serve IMAP over TLS with a certificate of a CA made
//! here with the `openssl` command (Debian's `openssl`, which `dovecot-core` depends on), and
//! [`SilenceLimit`] sits in front of it to play a server that logs out a silent client.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Plain IMAP (the tests deliver through it).
    pub port: u16,
    /// IMAP over TLS from the first byte, when started with [`Dovecot::start_tls`].
    pub tls_port: Option<u16>,
    /// The PEM of the CA that signed the TLS certificate (for 127.0.0.1).
    pub ca_file: Option<PathBuf>,
    pub dir: PathBuf,
    child: Child,
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl command in
/// `dir`: (CA certificate, server certificate, server key). A server certificate of its own,
/// not the CA's: rustls refuses a CA certificate used as a server's.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command runs (Debian's openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=webcare test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=CA:FALSE
         keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    set_mode(&dir.join("server.key"), 0o644);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

impl Dovecot {
    /// Starts Dovecot in `dir` (which it may change: the mail store is under it).
    pub fn start(dir: &Path) -> Dovecot {
        Dovecot::launch(dir, false)
    }

    /// [`Dovecot::start`], also serving IMAP over TLS on [`Dovecot::tls_port`] with a
    /// certificate of a CA made for the test ([`Dovecot::ca_file`]).
    pub fn start_tls(dir: &Path) -> Dovecot {
        Dovecot::launch(dir, true)
    }

    fn launch(dir: &Path, tls: bool) -> Dovecot {
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
        let (ssl, tls_port, ca_file) = if tls {
            let (ca, cert, key) = certificates(&dir.join("tls"));
            let tls_port = free_port();
            (
                format!(
                    "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                    cert.display(),
                    key.display()
                ),
                tls_port,
                Some(ca),
            )
        } else {
            ("ssl = no\n".to_owned(), 0, None)
        };
        let config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\n{ssl}disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nfirst_valid_uid = 1\n\
             default_internal_user = {internal}\ndefault_internal_group = {internal}\n\
             default_login_user = {login}\nmail_location = maildir:{d}/mail/%u\n\
             passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={internal} gid={internal} home={d}/mail/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n\
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
        if tls {
            wait_for_port(tls_port, "dovecot (TLS)", &dir.join("dovecot.log"));
        }
        Dovecot {
            port,
            tls_port: tls.then_some(tls_port),
            ca_file,
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
        SmtpSink::launch(dir, &[])
    }

    /// [`SmtpSink::start`] with SMTP over TLS from the first byte (SMTPS), with `cert` and
    /// `key` (PEM).
    pub fn start_smtps(dir: &Path, cert: &Path, key: &Path) -> SmtpSink {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        SmtpSink::launch(dir, &["--smtpscert", &cert, "--smtpskey", &key])
    }

    fn launch(dir: &Path, tls: &[&str]) -> SmtpSink {
        let python = std::env::var("WEBCARE_PYTHON3").unwrap_or_else(|_| "/usr/bin/python3".into());
        let port = free_port();
        let maildir = dir.join("sent");
        let log = dir.join("aiosmtpd.log");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(tls)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
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

/// A loopback proxy in front of an IMAP server that plays a server with a short inactivity
/// timeout: a connection whose client sends nothing for `limit` is closed, as a server ends
/// an IDLE nobody renewed (RFC 2177 allows it after 29 minutes; Dovecot's own limit cannot be
/// shortened for a test). It counts the connections, the IDLE commands and the closings.
pub struct SilenceLimit {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    pub idles: Arc<AtomicUsize>,
    pub closed_for_silence: Arc<AtomicUsize>,
}

impl SilenceLimit {
    pub async fn start(upstream: u16, limit: Duration) -> SilenceLimit {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let idles = Arc::new(AtomicUsize::new(0));
        let closed_for_silence = Arc::new(AtomicUsize::new(0));
        let counters = (
            Arc::clone(&connections),
            Arc::clone(&idles),
            Arc::clone(&closed_for_silence),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (connections, idles, closed) = (
                    Arc::clone(&counters.0),
                    Arc::clone(&counters.1),
                    Arc::clone(&counters.2),
                );
                connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let down = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match tokio::time::timeout(limit, from_client.read(&mut buf)).await {
                            Err(_) => {
                                closed.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Ok(Ok(0) | Err(_)) => break,
                            Ok(Ok(n)) => {
                                let chunk = &buf[..n];
                                let count = chunk.windows(6).filter(|w| w == b" IDLE\r").count();
                                idles.fetch_add(count, Ordering::SeqCst);
                                if to_server.write_all(chunk).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    // Both directions end: the client sees the connection closed.
                    down.abort();
                });
            }
        });
        SilenceLimit {
            port,
            connections,
            idles,
            closed_for_silence,
        }
    }
}
