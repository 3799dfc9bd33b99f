//! Debian's real nginx in front of an upstream, asking Keyport with `auth_request`, using the
//! shipped `examples/nginx/keyport.conf` (only the ports changed). The test command installs
//! nginx when it is missing; without it this test fails rather than pass silently.
use std::{
    net::SocketAddr,
    process::{Child, Command},
    time::Duration,
};

use domain::keys::NewKey;

use crate::{
    helpers::{TestApp, free_port, upstream},
    verify_support::*,
};

const NGINX: &str = "/usr/sbin/nginx";

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

async fn start_nginx(keyport: &str, upstream: SocketAddr) -> (Nginx, u16, tempfile::TempDir) {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "{NGINX} is missing: install Debian's nginx (./dev.sh test does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let example = include_str!("../../../examples/nginx/keyport.conf");
    let site = example
        .replace("server 127.0.0.1:3000;", &format!("server {keyport};"))
        .replace("server 127.0.0.1:8080;", &format!("server {upstream};"))
        .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(site, example, "the example's ports were found and replaced");
    let d = dir.path().display();
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    let user = if unsafe_is_root() { "user root;" } else { "" };
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let child = Command::new(NGINX)
        .args([
            "-e",
            &format!("{d}/error.log"),
            "-p",
            &d.to_string(),
            "-c",
            &format!("{d}/nginx.conf"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (nginx, port, dir);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
}

fn unsafe_is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

#[tokio::test]
async fn nginx_auth_request_lets_valid_keys_through_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let keyport = app.address.trim_start_matches("http://").to_owned();
    let (nginx, port, dir) = start_nginx(&keyport, upstream().await).await;
    let client = reqwest::Client::new();
    let get = |key: Option<String>| {
        let mut r = client.get(format!("http://127.0.0.1:{port}/orders/42"));
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        r.send()
    };

    // A valid key reaches the upstream, which learns the key id.
    let (valid, id) = key(&app, &w.dev, orders_key()).await;
    let r = get(Some(valid.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("upstream ok for {id}"));

    // No key, or a bad one: 401 with WWW-Authenticate, never reaching the upstream.
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = get(Some(domain::keys::PlainKey::generate().expose().to_owned()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "NOT_FOUND");
    assert!(!r.text().await.unwrap().contains("upstream ok"));

    // The location requires orders:read; a key with only orders:write is forbidden.
    let (write_only, _) = key(
        &app,
        &w.dev,
        NewKey {
            scopes: vec!["orders:write".into()],
            ..orders_key()
        },
    )
    .await;
    let r = get(Some(write_only)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-keyport-code"], "INSUFFICIENT_SCOPE");

    // A rate-limited key: 429 with Retry-After at the client (not nginx's default 500).
    let (slow, _) = key(&app, &w.dev, limited(Some((1, 60)), None)).await;
    assert_eq!(get(Some(slow.clone())).await.unwrap().status(), 200);
    let r = get(Some(slow)).await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "{:?}",
        std::fs::read_to_string(dir.path().join("error.log"))
    );
    assert_eq!(r.headers()["x-keyport-code"], "RATE_LIMITED");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    drop(nginx);
    app.cleanup().await;
}
