//! The portal's key, catalog and audit pages: the data each page needs and their form handlers.
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
