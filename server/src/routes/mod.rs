//! JSON endpoints outside the Leptos pages.
pub mod health;
