//! 404: unknown, or another user's key (never 403, which would confirm it exists): broken
//! object level authorization.
use super::*;

async fn another_users_keys_are_not_found(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let bob = &w.bob.token.bearer;
    let bob_key = id(&create_orders_key(app, bob, "bob's").await);
    for key_id in [bob_key.as_str(), w.bob.token.id.as_str(), UNKNOWN_KEY] {
        let path = format!("/v1/keys/{key_id}");
        not_found(get_as(app, ada, &path).await).await;
        not_found(patch_as(app, ada, &path, &json!({ "name": "mine now" })).await).await;
        // Even a change Ada may never make is "not found" rather than "forbidden".
        not_found(patch_as(app, ada, &path, &json!({ "scopes": ["admin"] })).await).await;
        let rotate = json!({ "grace_period_s": 0 });
        not_found(post_as(app, ada, &format!("{path}/rotate"), &rotate).await).await;
        let revoke = json!({ "reason": "mine now" });
        not_found(post_as(app, ada, &format!("{path}/revoke"), &revoke).await).await;
    }

    // Someone else's key and a key that does not exist answer alike.
    let theirs = not_found(get_as(app, ada, &format!("/v1/keys/{bob_key}")).await).await;
    let nobodys = not_found(get_as(app, ada, &format!("/v1/keys/{UNKNOWN_KEY}")).await).await;
    assert_eq!(theirs, nobodys);
    // ...but the attempts on Bob's keys are in the audit log, under Ada (ASVS 16.3.2).
    let denied = audit_events(
        app,
        &w.admin.token.bearer,
        "/v1/audit?action=authz.denied&limit=100",
    )
    .await;
    let on_bobs_key = denied
        .iter()
        .filter(|e| e["target"] == bob_key.as_str())
        .count();
    assert!(on_bobs_key >= 6, "{denied:?}");
    assert!(
        denied
            .iter()
            .any(|e| e["target"] == w.bob.token.id.as_str()),
        "{denied:?}"
    );
    assert!(
        denied
            .iter()
            .all(|e| e["actor_id"] == w.ada.id.as_str() && e["target"] != UNKNOWN_KEY),
        "{denied:?}"
    );

    // Bob's keys are untouched.
    let after = success(get_as(app, bob, &format!("/v1/keys/{bob_key}")).await, 200).await;
    assert_eq!(after["name"], "bob's");
    assert_eq!(after["status"], "active");
    success(get_as(app, bob, "/v1/me").await, 200).await;
    let events = audit_events(app, bob, "/v1/audit?action=key.").await;
    assert_eq!(strs(&events, "action"), ["key.create", "key.create"]);

    // Ada's list never shows them, even when she asks for Bob's.
    let listed = key_list(app, ada, &format!("/v1/keys?owner_id={}", w.bob.id)).await;
    assert!(
        !listed.is_empty() && listed.iter().all(|k| k["owner_id"] == w.ada.id.as_str()),
        "{listed:?}"
    );

    // Nothing else lives under /v1.
    not_found(get_as(app, ada, "/v1/secrets").await).await;
}

/// Ids of the wrong kind or shape are answered like unknown ids (and never reach a query): a
/// user id, an API id, truncated or padded ids, characters outside base62.
async fn ids_that_are_not_key_ids_are_not_found(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let mine = id(&create_orders_key(app, ada, "mine").await);
    let padded = format!("{mine}0");
    for key_id in [
        w.ada.id.as_str(),
        "api_00000000000000000000",
        &mine[..mine.len() - 1],
        padded.as_str(),
        "key_000000000000000000%2F",
        "nope",
    ] {
        let path = format!("/v1/keys/{key_id}");
        not_found(get_as(app, ada, &path).await).await;
        not_found(patch_as(app, ada, &path, &json!({ "name": "x" })).await).await;
        not_found(post_as(app, ada, &format!("{path}/revoke"), &json!({})).await).await;
        not_found(get_as(app, ada, &format!("{path}/usage")).await).await;
    }
    // The real id still works.
    success(get_as(app, ada, &format!("/v1/keys/{mine}")).await, 200).await;
}

on_both_databases!(
    another_users_keys_are_not_found,
    ids_that_are_not_key_ids_are_not_found,
);
