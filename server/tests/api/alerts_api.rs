//! `/v1/alerts` over real HTTP: each developer reads and acknowledges alerts on their own keys
//! only (another's is 404), scopes hold, admins read everyone's.
use chrono::{Duration, Utc};
use domain::{
    audit::RequestContext,
    keys::{LeakAction, NewKey},
    service::Actor,
};
use serde_json::json;

use crate::{
    helpers::TestApp,
    keys_api::{failure, forbidden, get_as, keyport_key, not_found, post_as, success},
};

const PASSWORD: &str = "glacier lantern pepper";

async fn person(app: &TestApp, email: &str, admin: bool, scopes: &[&str]) -> (Actor, String) {
    let user = if admin {
        app.state
            .accounts
            .create_admin(email, PASSWORD)
            .await
            .unwrap()
    } else {
        app.state
            .accounts
            .sign_up(email, PASSWORD, &RequestContext::default())
            .await
            .unwrap()
    };
    let actor = Actor::new(user.id, admin, RequestContext::default());
    let token = keyport_key(app, &actor, "management", scopes).await;
    (actor, token.bearer)
}

#[tokio::test]
async fn alerts_are_read_and_acknowledged_by_their_owner_only() {
    let app = TestApp::spawn().await;
    let (_, admin) = person(&app, "root@example.com", true, &["admin"]).await;
    let (ada, ada_token) = person(
        &app,
        "ada@example.com",
        false,
        &["usage:read", "keys:write"],
    )
    .await;
    let (_, bob_token) = person(
        &app,
        "bob@example.com",
        false,
        &["usage:read", "keys:write"],
    )
    .await;
    let (_, reader) = person(&app, "rita@example.com", false, &["usage:read"]).await;
    let (_, keys_only) = person(&app, "kim@example.com", false, &["keys:read"]).await;
    let key = app
        .state
        .keys
        .create(
            &ada,
            NewKey {
                name: "leaky".into(),
                api: "keyport".into(),
                scopes: vec!["keys:read".into()],
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .key;
    app.state
        .keys
        .mark_leaked(
            &key.id,
            LeakAction::Revoke,
            None,
            json!({ "url": "https://example.com/paste" }),
            &RequestContext::default(),
        )
        .await
        .unwrap();

    let open = success(get_as(&app, &ada_token, "/v1/alerts").await, 200).await;
    let alerts = open["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{open}");
    assert_eq!(alerts[0]["rule"], "leaked");
    assert_eq!(alerts[0]["key_id"], key.id.as_str());
    assert!(
        alerts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("example.com/paste")
    );
    let id = alerts[0]["id"].as_str().unwrap().to_owned();
    // Bob sees none of it and cannot acknowledge it; scopes hold.
    let bobs = success(get_as(&app, &bob_token, "/v1/alerts?all=true").await, 200).await;
    assert_eq!(bobs["alerts"], json!([]));
    not_found(
        post_as(
            &app,
            &bob_token,
            &format!("/v1/alerts/{id}/acknowledge"),
            &json!({}),
        )
        .await,
    )
    .await;
    forbidden(
        post_as(
            &app,
            &reader,
            &format!("/v1/alerts/{id}/acknowledge"),
            &json!({}),
        )
        .await,
    )
    .await;
    forbidden(get_as(&app, &keys_only, "/v1/alerts").await).await;
    not_found(
        post_as(
            &app,
            &ada_token,
            "/v1/alerts/alr_00000000000000000000/acknowledge",
            &json!({}),
        )
        .await,
    )
    .await;
    not_found(
        post_as(
            &app,
            &ada_token,
            "/v1/alerts/not-an-id/acknowledge",
            &json!({}),
        )
        .await,
    )
    .await;
    failure(
        get_as(&app, &ada_token, "/v1/alerts?limit=0").await,
        422,
        "validation_failed",
    )
    .await;
    // The admin sees it too.
    let all = success(get_as(&app, &admin, "/v1/alerts").await, 200).await;
    assert_eq!(all["alerts"][0]["owner_email"], "ada@example.com");

    let done = post_as(
        &app,
        &ada_token,
        &format!("/v1/alerts/{id}/acknowledge"),
        &json!({}),
    )
    .await;
    assert_eq!(done.status(), 204);
    let open = success(get_as(&app, &ada_token, "/v1/alerts").await, 200).await;
    assert_eq!(open["alerts"], json!([]));
    let all = success(get_as(&app, &ada_token, "/v1/alerts?all=true").await, 200).await;
    assert!(all["alerts"][0]["acknowledged_at"].is_string(), "{all}");
}
