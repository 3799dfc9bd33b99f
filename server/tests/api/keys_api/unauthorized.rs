//! 401: no usable key of the keyport API (missing, malformed, unknown, revoked, expired,
//! disabled, of another API, or of a disabled owner).
use super::*;

async fn requests_without_a_valid_key_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let anonymous = app.client.get(app.url("/v1/me")).send().await.unwrap();
    unauthorized(anonymous).await;
    let basic = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic YWRhOnNlY3JldA==")
        .send()
        .await
        .unwrap();
    unauthorized(basic).await;

    // Malformed, unknown, and Ada's key with its checksum broken.
    let unknown = PlainKey::generate();
    let mut tampered = w.ada.token.bearer.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    for token in ["kp_abc", "not-a-key", unknown.expose(), tampered.as_str()] {
        unauthorized(get_as(app, token, "/v1/me").await).await;
    }

    // Authentication comes first: strangers learn nothing from a 400, 404 or 422.
    let no_json = send_raw(
        app,
        Method::POST,
        "kp_abc",
        "/v1/keys",
        Some("application/json"),
        "{not json",
    )
    .await;
    unauthorized(no_json).await;
    let path = format!("/v1/keys/{}", w.ada.token.id);
    unauthorized(get_as(app, "kp_abc", &path).await).await;
    unauthorized(app.client.get(app.url("/v1/keys")).send().await.unwrap()).await;

    success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
}

async fn revoked_expired_and_disabled_keys_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let keys = &app.state.keys;
    keys.revoke(&w.ada.actor, &w.ada.token.id, Some("laptop stolen"))
        .await
        .unwrap();
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/me").await).await;

    // Rotated without a grace period, the old key expires at once; its replacement works.
    let replacement = keys.rotate(&w.bob.actor, &w.bob.token.id, 0).await.unwrap();
    unauthorized(get_as(app, &w.bob.token.bearer, "/v1/me").await).await;
    let me = success(
        get_as(app, replacement.plaintext.expose(), "/v1/me").await,
        200,
    )
    .await;
    assert_eq!(me["id"], w.bob.id.as_str());

    // A disabled key.
    let spare = keyport_key(app, &w.bob.actor, "spare", &["keys:read"]).await;
    success(get_as(app, &spare.bearer, "/v1/me").await, 200).await;
    let disable = KeyPatch {
        enabled: Some(false),
        ..Default::default()
    };
    keys.update(&w.bob.actor, &spare.id, disable).await.unwrap();
    unauthorized(get_as(app, &spare.bearer, "/v1/me").await).await;
}

async fn keys_of_other_apis_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let orders = create_orders_key(app, &w.ada.token.bearer, "shop").await;
    let plaintext = orders["key"].as_str().expect("the plaintext key");
    unauthorized(get_as(app, plaintext, "/v1/me").await).await;
    unauthorized(post_as(app, plaintext, "/v1/keys", &orders_key("more")).await).await;
}

async fn a_disabled_owners_keys_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let accounts = &app.state.accounts;
    let ctx = RequestContext::default();
    accounts
        .set_status(&w.admin.id, &w.ada.id, Status::Disabled, &ctx)
        .await
        .unwrap();
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/me").await).await;
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/keys").await).await;

    // The admin sees her keys as disabled; Bob is unaffected.
    let path = format!("/v1/keys/{}", w.ada.token.id);
    let token = success(get_as(app, &w.admin.token.bearer, &path).await, 200).await;
    assert_eq!(token["status"], "disabled");
    success(get_as(app, &w.bob.token.bearer, "/v1/me").await, 200).await;

    // Enabled again, her keys work again.
    accounts
        .set_status(&w.admin.id, &w.ada.id, Status::Active, &ctx)
        .await
        .unwrap();
    success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
}

on_both_databases!(
    requests_without_a_valid_key_are_unauthorized,
    revoked_expired_and_disabled_keys_are_unauthorized,
    keys_of_other_apis_are_unauthorized,
    a_disabled_owners_keys_are_unauthorized,
);
