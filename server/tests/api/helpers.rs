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
