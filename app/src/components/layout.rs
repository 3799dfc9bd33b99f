//! The frame around every page: header with navigation, main content, footer.
use leptos::prelude::*;

use super::{
    icons::Logo, local_time::LocalTimes, mobile_menu::MobileMenu, theme_toggle::ThemeToggle,
};
use crate::{pages::error::ErrorPage, session::Stage};

/// Visitors see the landing page's sections; signed-in users the portal's pages.
const VISITOR_NAV: &[(&str, &str)] = &[
    ("/#features", "Features"),
    ("/#gateways", "Gateways"),
    ("/#security", "Security"),
    ("/docs", "Docs"),
];
const PORTAL_NAV: &[(&str, &str)] = &[
    ("/dashboard", "Dashboard"),
    ("/keys", "Keys"),
    ("/alerts", "Alerts"),
    ("/webhooks", "Webhooks"),
    ("/audit", "Audit log"),
    ("/docs", "Docs"),
    ("/settings", "Settings"),
];
const ADMIN_NAV: &[(&str, &str)] = &[
    ("/dashboard", "Dashboard"),
    ("/admin", "Platform"),
    ("/keys", "Keys"),
    ("/admin/apis", "APIs"),
    ("/admin/plans", "Plans"),
    ("/admin/users", "Users"),
    ("/alerts", "Alerts"),
    ("/webhooks", "Webhooks"),
    ("/audit", "Audit log"),
    ("/docs", "Docs"),
    ("/settings", "Settings"),
];

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let visitor = crate::session::current();
    let nav = match (&visitor.stage, &visitor.user) {
        (Stage::SignedIn, Some(user)) if user.is_admin => ADMIN_NAV,
        (Stage::SignedIn, _) => PORTAL_NAV,
        _ => VISITOR_NAV,
    };
    let signed_in = visitor.stage == Stage::SignedIn;
    view! {
        <a
            href="#main"
            class="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-4 focus:z-50 focus:rounded-md focus:bg-indigo-600 focus:px-3 focus:py-2 focus:text-white"
        >
            "Skip to content"
        </a>
        <div class="flex min-h-screen flex-col">
            <header class="sticky top-0 z-40 border-b border-slate-200 bg-white/90 backdrop-blur dark:border-slate-800 dark:bg-slate-950/90">
                <div class="relative mx-auto flex h-14 max-w-6xl items-center gap-6 px-4 sm:px-6">
                    <a href="/" class="flex items-center gap-2 font-semibold tracking-tight">
                        <Logo class="size-7" />
                        <span>"Keyport"</span>
                    </a>
                    <nav aria-label="Main" class="hidden items-center gap-1 text-sm md:flex">
                        {nav.iter().map(|&(href, label)| view! { <NavLink href label /> }).collect_view()}
                    </nav>
                    <div class="ml-auto flex items-center gap-1">
                        <AccountLinks />
                        <ThemeToggle />
                        <MobileMenu>
                            <ul class="flex flex-col gap-1 text-sm">
                                {nav.iter().map(|&(href, label)| view! {
                                    <li><NavLink href label /></li>
                                }).collect_view()}
                            </ul>
                        </MobileMenu>
                    </div>
                </div>
            </header>
            <main id="main" class="flex-1">
                <ErrorBoundary fallback=|errors| view! { <ErrorPage errors /> }>
                    {children()}
                </ErrorBoundary>
            </main>
            <footer class="border-t border-slate-200 dark:border-slate-800">
                <div class="mx-auto flex max-w-6xl flex-col gap-2 px-4 py-6 text-sm text-slate-500 sm:flex-row sm:items-center sm:justify-between sm:px-6 dark:text-slate-400">
                    <p>"Keyport " {env!("CARGO_PKG_VERSION")} " · self-hosted API key portal"</p>
                    <p>"Keys are stored hashed and shown once."</p>
                </div>
            </footer>
            {signed_in.then(|| view! { <LocalTimes /> })}
        </div>
    }
}

/// Sign in / sign up for visitors; the account and "Sign out" for signed-in users.
#[component]
fn AccountLinks() -> impl IntoView {
    let view = crate::session::current();
    match (view.stage, view.user) {
        (Stage::SignedIn, Some(user)) => view! {
            <a href="/dashboard" class="hidden max-w-48 truncate px-2 text-sm text-slate-600 sm:block dark:text-slate-300">{user.email}</a>
            <form method="post" action="/logout">
                <button type="submit" class="rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100 focus-visible:outline-2 focus-visible:outline-indigo-600 dark:text-slate-200 dark:hover:bg-slate-800">
                    "Sign out"
                </button>
            </form>
        }
        .into_any(),
        (Stage::Anonymous, _) => view! {
            <a href="/login" class="rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800">"Sign in"</a>
            <a href="/signup" class="rounded-md bg-indigo-600 px-3 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500">"Sign up"</a>
        }
        .into_any(),
        _ => view! {
            <form method="post" action="/logout">
                <button type="submit" class="rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800">"Sign out"</button>
            </form>
        }
        .into_any(),
    }
}

#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <a
            href=href
            class="block rounded-md px-3 py-2 text-slate-600 hover:bg-slate-100 hover:text-slate-900 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 dark:text-slate-300 dark:hover:bg-slate-800 dark:hover:text-white"
        >
            {label}
        </a>
    }
}
