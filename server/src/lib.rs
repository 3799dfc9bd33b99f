//! The Keyport server: configuration, telemetry, the HTTP application (Leptos SSR pages plus the
//! JSON endpoints) and the command line. `main.rs` only calls [`cli::main`].
pub mod api;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod email;
pub mod http;
pub mod metrics;
pub mod pages;
pub mod portal;
pub mod portal_usage;
pub mod routes;
pub mod scan;
pub mod security;
pub mod session_store;
pub mod site;
pub mod state;
pub mod telemetry;
pub mod web;

pub use config::Config;
pub use http::{Server, build_router};
pub use state::AppState;
