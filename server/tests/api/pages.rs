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
