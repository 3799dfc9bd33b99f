//! The portal's key, catalog and audit pages: the data each page needs (one loader per page,
//! called by its handler in [`crate::pages`]) and their form handlers (303 + flash, like
//! sign-in).
//! Authorization is the domain services'; this module maps forms and views.
mod audit;
mod catalog;
pub mod forms;
mod keys;
mod views;
mod webhooks;

pub(crate) use audit::{AuditQuery, audit_page};
pub(crate) use catalog::{admin_api_page, admin_apis_page, admin_plans_page};
pub(crate) use forms::{needs_step_up, step_up_code};
pub(crate) use keys::{KeysQuery, key_page, keys_page, new_key_page};
pub(crate) use views::plan_views;
pub(crate) use webhooks::{WebhooksQuery, webhook_page, webhooks_page};

use axum::{Router, routing::post};

use self::{catalog::*, keys::*, webhooks::*};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys/new", post(create_key))
        .route("/keys/{id}/action", post(key_action))
        .route("/hygiene/revoke", post(bulk_revoke))
        .route("/admin/apis", post(create_api))
        .route("/admin/apis/{slug}", post(update_api))
        .route("/admin/plans", post(save_plan))
        .route("/admin/plans/default", post(default_plan))
        .route("/admin/users/plan", post(assign_plan))
        .route("/webhooks", post(create_webhook))
        .route("/webhooks/{id}/action", post(webhook_action))
}
