//! 409: the request clashes with the current state.
use super::*;

async fn revoking_or_rotating_twice_conflicts(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let once = id(&create_orders_key(app, ada, "once").await);
    // An empty body revokes without a reason.
    let revoke = format!("/v1/keys/{once}/revoke");
    let revoked = success(
        send_raw(app, Method::POST, ada, &revoke, None, "").await,
        200,
    )
    .await;
    assert_eq!(revoked["status"], "revoked");
    conflict(post_as(app, ada, &revoke, &json!({ "reason": "again" })).await).await;
    // A revoked key can be neither changed nor rotated.
    let path = format!("/v1/keys/{once}");
    conflict(patch_as(app, ada, &path, &json!({ "enabled": true })).await).await;
    conflict(post_as(app, ada, &format!("{path}/rotate"), &json!({})).await).await;

    let twice = id(&create_orders_key(app, ada, "twice").await);
    let rotate = format!("/v1/keys/{twice}/rotate");
    let grace = json!({ "grace_period_s": 3600 });
    let replacement = success(post_as(app, ada, &rotate, &grace).await, 201).await;
    conflict(post_as(app, ada, &rotate, &grace).await).await;
    // The replacement is the one to rotate next.
    let next = format!("/v1/keys/{}/rotate", id(&replacement));
    success(post_as(app, ada, &next, &json!({})).await, 201).await;
}

async fn a_taken_api_slug_conflicts(app: &TestApp) {
    let w = world(app).await;
    let admin = &w.admin.token.bearer;
    conflict(post_as(app, admin, "/v1/apis", &orders_api()).await).await;
    let keyport = with(orders_api(), "slug", json!("keyport"));
    conflict(post_as(app, admin, "/v1/apis", &keyport).await).await;
    let apis = success(get_as(app, admin, "/v1/apis").await, 200).await;
    let slugs = strs(apis["apis"].as_array().expect("apis"), "slug");
    assert_eq!(slugs.iter().filter(|s| **s == "orders").count(), 1);
    assert_eq!(slugs.iter().filter(|s| **s == "keyport").count(), 1);
}

async fn the_plans_active_key_limit_conflicts(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    // The Free plan allows 10 active keys; Ada's management key is the first of them.
    let mut created = Vec::new();
    for i in 2..=10 {
        created.push(id(&create_orders_key(app, ada, &format!("key {i}")).await));
    }
    let refused = conflict(post_as(app, ada, "/v1/keys", &orders_key("key 11")).await).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("10"), "{refused}");
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 10);

    // Bob's keys count against his own limit.
    create_orders_key(app, &w.bob.token.bearer, "bob's").await;

    // A revoked key no longer counts.
    let revoke = format!("/v1/keys/{}/revoke", created[0]);
    success(post_as(app, ada, &revoke, &json!({})).await, 200).await;
    create_orders_key(app, ada, "key 11").await;
    conflict(post_as(app, ada, "/v1/keys", &orders_key("key 12")).await).await;
}

on_both_databases!(
    revoking_or_rotating_twice_conflicts,
    a_taken_api_slug_conflicts,
    the_plans_active_key_limit_conflicts,
);
