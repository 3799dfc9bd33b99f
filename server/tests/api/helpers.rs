//! Spawning the real app on port 0 with its own database, and a cookie-keeping client.
use domain::testing::TestDb;
use server::{AppState, Config, Server};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    /// `http://addr` of the metrics listener, when the config asked for one.
    pub metrics_address: Option<String>,
    // Keeps the data directory alive as long as the app.
    _data_dir: tempfile::TempDir,
    postgres: Option<TestDb>,
}

impl TestApp {
    /// The app on a fresh SQLite file in a temporary data directory.
    pub async fn spawn() -> TestApp {
        let data_dir = tempfile::tempdir().unwrap();
        let config = Config::for_data_dir(data_dir.path());
        Self::spawn_with(config, data_dir, None).await
    }

    /// The app on a fresh PostgreSQL database; panics when `KEYPORT_TEST_POSTGRES_URL` is unset
    /// (the test command only runs `postgres` tests when it is set).
    pub async fn spawn_postgres() -> TestApp {
        let pg = TestDb::postgres_empty()
            .await
            .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
        let data_dir = tempfile::tempdir().unwrap();
        let config = Config {
            database_url: Some(pg.url.clone()),
            ..Config::for_data_dir(data_dir.path())
        };
        Self::spawn_with(config, data_dir, Some(pg)).await
    }

    pub async fn spawn_with(
        config: Config,
        data_dir: tempfile::TempDir,
        postgres: Option<TestDb>,
    ) -> TestApp {
        Self::spawn_until(config, data_dir, postgres, std::future::pending()).await
    }

    /// The app, shutting down when `shutdown` resolves (as on SIGTERM).
    pub async fn spawn_until(
        config: Config,
        data_dir: tempfile::TempDir,
        postgres: Option<TestDb>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> TestApp {
        let server = Server::bind(&config).await.expect("the app starts");
        let address = format!("http://{}", server.local_addr());
        let state = server.state.clone();
        let metrics_address = server.metrics_addr().map(|a| format!("http://{a}"));
        tokio::spawn(server.run(shutdown));
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            address,
            client,
            state,
            metrics_address,
            _data_dir: data_dir,
            postgres,
        }
    }

    /// A second, independent browser for the same app.
    pub fn client_for(_app: &TestApp) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Another browser (its own cookies) on the same app; the original must outlive it.
    pub fn another_browser(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            client: Self::client_for(self),
            state: self.state.clone(),
            metrics_address: self.metrics_address.clone(),
            _data_dir: tempfile::tempdir().unwrap(),
            postgres: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn cleanup(self) {
        if let Some(pg) = self.postgres {
            self.state.db.conn().close_by_ref().await.ok();
            pg.cleanup().await;
        }
    }
}

/// A port nothing listens on right now (for a gateway the test starts).
pub async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// The protected API behind a gateway: answers with who the gateway said the caller is.
pub async fn upstream() -> std::net::SocketAddr {
    use axum::{Router, http::HeaderMap, routing::get};
    let app = Router::new().fallback(get(|headers: HeaderMap| async move {
        let key_id = headers
            .get("x-keyport-key-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        format!("upstream ok for {key_id}")
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Prints the median and worst of `delays` (trials of a propagation test), for the notes.
pub fn print_delays(what: &str, mut delays: Vec<std::time::Duration>) {
    delays.sort();
    println!(
        "{what}: p50 {:?}, worst {:?} ({} trials)",
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    );
}

/// A Redis server of the test's own, on a free port, that the test can stop and start again (the
/// shared one stays untouched).
pub struct OwnRedis {
    child: Option<std::process::Child>,
    port: u16,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            child: None,
            port: free_port().await,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let port = self.port.to_string();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (the machine that sets KEYPORT_TEST_REDIS_URL has it)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: connected, but answering nothing.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let status = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real SMTP server (Debian's `python3-aiosmtpd`) on a free port of the test's own, keeping
/// what it receives in a maildir. It can be stopped and started again on the same port.
pub struct SmtpServer {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One message as the SMTP server received it, parsed.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl ReceivedMail {
    /// The path of the first link in the text part that starts with `prefix` (after the public
    /// URL), e.g. `/verify-email/`.
    pub fn link_path(&self, public_url: &str, prefix: &str) -> String {
        let start = format!("{public_url}{prefix}");
        let at = self
            .text
            .find(&start)
            .unwrap_or_else(|| panic!("no {start} link in:\n{}", self.text));
        let rest = &self.text[at + public_url.len()..];
        rest.split_whitespace().next().unwrap().to_owned()
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let mut smtp = SmtpServer::stopped(free_port().await);
        smtp.restart().await;
        smtp
    }

    /// A server not started yet, on `port` (nothing listens there until [`SmtpServer::restart`]).
    pub fn stopped(port: u16) -> SmtpServer {
        SmtpServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let python =
            std::env::var("KEYPORT_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let child = std::process::Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(self.dir.path().join("maildir"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd runs (./dev.sh test installs python3-aiosmtpd)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the SMTP server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let dir = self.dir.path().join("maildir").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .into_iter()
            .map(|path| {
                let raw = std::fs::read(&path).unwrap();
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("a parsable message");
                let address = |a: Option<&mail_parser::Address>| {
                    a.and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .unwrap_or_default()
                        .to_owned()
                };
                ReceivedMail {
                    from: address(parsed.from()),
                    to: address(parsed.to()),
                    subject: parsed.subject().unwrap_or_default().to_owned(),
                    text: parsed.body_text(0).unwrap_or_default().into_owned(),
                    html: parsed.body_html(0).unwrap_or_default().into_owned(),
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                }
            })
            .collect()
    }

    /// The messages to `to`, once there are at least `n` (panics after 15 s).
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<ReceivedMail> {
        self.wait_for_within(to, n, 15).await
    }

    pub async fn wait_for_within(&self, to: &str, n: usize, seconds: u64) -> Vec<ReceivedMail> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let mine: Vec<_> = self.messages().into_iter().filter(|m| m.to == to).collect();
            if mine.len() >= n {
                return mine;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} message(s) to {to} did not arrive; received: {:?}",
                self.messages()
                    .iter()
                    .map(|m| (&m.to, &m.subject))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
