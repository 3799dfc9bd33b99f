#![recursion_limit = "512"]
//! Keyport's user interface. Pages render on the server; only the interactive parts are
//! `#[island]`s that hydrate in the browser (see the README's architecture section for why).
use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

pub mod components;
pub mod pages;
pub mod session;
pub mod theme;

use components::layout::Layout;
use pages::{
    admin_catalog::{AdminApi, AdminApis, AdminPlans},
    admin_leaks::AdminLeaks,
    admin_users::AdminUsers,
    alerts::Alerts,
    audit::Audit,
    auth::{
        AcceptInvitation, Enroll, ForgotPassword, Login, LoginCode, RecoveryCodes, ResetPassword,
        SignUp, VerifyEmail,
    },
    dashboard::{AdminDashboard, Dashboard},
    docs::Docs,
    hygiene::Hygiene,
    keys::{KeyDetail, KeysList, NewKeyPage},
    landing::Landing,
    not_found::NotFound,
    settings::Settings,
    webhooks::{WebhookDetail, Webhooks},
};

/// The product name, as shown in titles and headings.
pub const PRODUCT: &str = "Keyport";

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let theme_class = theme::requested_theme().map(|t| t.class());
    view! {
        <!DOCTYPE html>
        <html lang="en" class=theme_class>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <AutoReload options=options.clone() />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-white text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

/// The routed application inside the shell.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/keyport.css" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Title formatter=|page: String| {
            if page.is_empty() { PRODUCT.to_owned() } else { format!("{page} · {PRODUCT}") }
        } />
        <Meta
            name="description"
            content="Keyport is a self-hosted developer portal for API keys: scoped keys, usage, rotation and a fast verification endpoint."
        />
        <Router>
            <Layout>
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=Landing />
                    <Route path=path!("/signup") view=SignUp />
                    <Route path=path!("/login") view=Login />
                    <Route path=path!("/login/code") view=LoginCode />
                    <Route path=path!("/forgot-password") view=ForgotPassword />
                    <Route path=path!("/reset/:token") view=ResetPassword />
                    <Route path=path!("/verify-email/:token") view=VerifyEmail />
                    <Route path=path!("/invite/:token") view=AcceptInvitation />
                    <Route path=path!("/enroll") view=Enroll />
                    <Route path=path!("/enroll/recovery") view=RecoveryCodes />
                    <Route path=path!("/dashboard") view=Dashboard />
                    <Route path=path!("/settings") view=Settings />
                    <Route path=path!("/admin") view=AdminDashboard />
                    <Route path=path!("/admin/users") view=AdminUsers />
                    <Route path=path!("/admin/apis") view=AdminApis />
                    <Route path=path!("/admin/apis/:slug") view=AdminApi />
                    <Route path=path!("/admin/plans") view=AdminPlans />
                    <Route path=path!("/admin/leaks") view=AdminLeaks />
                    <Route path=path!("/keys") view=KeysList />
                    <Route path=path!("/keys/new") view=NewKeyPage />
                    <Route path=path!("/keys/:id") view=KeyDetail />
                    <Route path=path!("/audit") view=Audit />
                    <Route path=path!("/alerts") view=Alerts />
                    <Route path=path!("/hygiene") view=Hygiene />
                    <Route path=path!("/webhooks") view=Webhooks />
                    <Route path=path!("/webhooks/:id") view=WebhookDetail />
                    <Route path=path!("/docs") view=Docs />
                </Routes>
            </Layout>
        </Router>
    }
}
