//! HTTP tests against the real application, served on a free port with a real database.
mod accounts;
mod cli;
mod health;
mod helpers;
mod pages;
mod portal_keys;
mod sessions;
