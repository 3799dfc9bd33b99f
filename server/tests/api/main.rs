//! HTTP tests against the real application, served on a free port with a real database.

/// Runs each scenario (an `async fn(&TestApp)`) on SQLite and, in tests named `postgres`, on
/// PostgreSQL (which the test command runs only when KEYPORT_TEST_POSTGRES_URL is set).
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let app = crate::helpers::TestApp::spawn().await;
                    super::$scenario(&app).await;
                    app.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let app = crate::helpers::TestApp::spawn_postgres().await;
                    super::$scenario(&app).await;
                    app.cleanup().await;
                }
            )*
        }
    };
}
mod accounts;
mod alerts_api;
mod caller_verified;
mod change_feed;
mod cli;
mod client_address;
mod email;
mod gateways;
mod health;
mod helpers;
mod keys_api;
mod leaks;
mod nginx;
mod pages;
mod portal_keys;
mod processes;
mod sessions;
mod verify_denied;
mod verify_limits;
mod verify_support;
mod verify_valid;
mod webhooks;
