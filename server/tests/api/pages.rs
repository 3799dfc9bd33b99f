//! Server-rendered pages: the landing page, the 404 page, and the headers around them.
use crate::helpers::TestApp;

#[tokio::test]
async fn landing_page_is_server_rendered_with_the_product_name() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<title>Keyport</title>"),
        "title missing: {html}"
    );
    assert!(html.contains("API keys your developers manage themselves"));
    // The stylesheet and the hydration script point at the built bundle.
    assert!(
        html.contains(r#"href="/pkg/keyport.css""#),
        "stylesheet link missing"
    );
    assert!(html.contains("/pkg/keyport"), "hydration script missing");
    // Only the interactive parts are islands.
    assert!(html.contains("<leptos-island"), "no island rendered");
}

#[tokio::test]
async fn theme_cookie_is_rendered_on_the_html_element() {
    let app = TestApp::spawn().await;
    let html = app
        .client
        .get(app.url("/"))
        .header("cookie", "keyport_theme=dark")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"<html lang="en" class="dark""#),
        "{}",
        &html[..200.min(html.len())]
    );
}

#[tokio::test]
async fn unknown_pages_answer_404_with_a_helpful_page() {
    let app = TestApp::spawn().await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found"));
    assert!(html.contains(r#"href="/""#), "no way back home");
}

#[tokio::test]
async fn missing_static_files_answer_404() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/pkg/does-not-exist.wasm").await.status(), 404);
}

/// Every route of the Leptos app has its own page handler (and so its declared access): a page
/// added to the app without one would otherwise answer only the 404 fallback.
#[test]
fn every_app_route_has_a_page_handler() {
    let listed: Vec<String> = leptos_axum::generate_route_list(app::App)
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert!(listed.len() >= 20, "{listed:?}");
    for path in &listed {
        assert!(
            server::pages::PATHS.contains(&path.as_str()),
            "{path} has no page handler in server::pages"
        );
    }
    for path in server::pages::PATHS {
        assert!(
            listed.iter().any(|p| p == path),
            "{path} is handled but not a route of the app"
        );
    }
}

/// The access each page declares, seen from outside: anonymous visitors are sent to sign in
/// from every page behind it (the old redirect table missed `/hygiene`), and the sign-in pages
/// are open to them.
#[tokio::test]
async fn anonymous_visitors_reach_only_the_open_pages() {
    let app = TestApp::spawn().await;
    for path in [
        "/dashboard",
        "/settings",
        "/keys",
        "/keys/new",
        "/keys/key_00000000000000000000",
        "/audit",
        "/alerts",
        "/hygiene",
        "/enroll/recovery",
        "/admin",
        "/admin/users",
        "/admin/apis",
        "/admin/apis/keyport",
        "/admin/plans",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login", "{path}");
    }
    for (path, to) in [("/login/code", "/login"), ("/enroll", "/login")] {
        let response = app.get(path).await;
        assert_eq!(response.headers()["location"], to, "{path}");
    }
    for path in ["/", "/login", "/signup", "/docs"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            !response.headers().contains_key("cache-control"),
            "{path}: anonymous pages carry no session secrets"
        );
    }
    // Routes are matched whole: a path that merely starts like a protected one is no page.
    assert_eq!(app.get("/administrator").await.status(), 404);
    assert_eq!(app.get("/keys/a/b").await.status(), 404);
    // A query that does not parse is the page's defaults, not an error.
    let response = app.get("/login?page=abc&page=def").await;
    assert_eq!(response.status(), 200);
}
