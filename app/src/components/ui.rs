//! Page-level building blocks: headers, notices, badges, empty states, confirmations, pagination.
use leptos::prelude::*;

pub const CARD: &str =
    "rounded-xl border border-slate-200 bg-white p-6 dark:border-slate-800 dark:bg-slate-900/40";
pub const BUTTON: &str = "inline-flex items-center justify-center gap-2 rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600";
pub const DANGER: &str = "inline-flex items-center justify-center rounded-md bg-red-600 px-3 py-2 text-sm font-medium text-white shadow-sm hover:bg-red-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-600";
pub const LABEL: &str = "block text-sm font-medium";
pub const HINT: &str = "mt-1 text-xs text-slate-500 dark:text-slate-400";
pub const ERROR: &str = "mt-1 text-sm text-red-600 dark:text-red-400";
pub const TH: &str = "px-4 py-3";
pub const TABLE_WRAP: &str =
    "overflow-x-auto rounded-xl border border-slate-200 dark:border-slate-800";
pub const TABLE: &str = "min-w-full divide-y divide-slate-200 text-sm dark:divide-slate-800";
pub const THEAD: &str = "bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500 dark:bg-slate-900 dark:text-slate-400";
pub const TBODY: &str = "divide-y divide-slate-200 dark:divide-slate-800";
pub const LINK: &str = "font-medium text-indigo-600 hover:underline dark:text-indigo-400";

/// Title, subtitle and actions at the top of a page.
#[component]
pub fn PageHeader(
    title: String,
    #[prop(optional, into)] subtitle: Option<String>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="flex flex-wrap items-end justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                {subtitle.map(|s| view! { <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{s}</p> })}
            </div>
            {children.map(|c| view! { <div class="flex flex-wrap gap-2">{c()}</div> })}
        </div>
    }
}

/// A success message, announced politely.
#[component]
pub fn Notice(message: Option<String>) -> impl IntoView {
    message.map(|m| view! {
        <div role="status" class="rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800 dark:border-green-900 dark:bg-green-950/50 dark:text-green-200">{m}</div>
    })
}

/// A key status as a coloured badge with its text (colour is never the only signal).
#[component]
pub fn StatusBadge(status: String, label: String) -> impl IntoView {
    let colour = match status.as_str() {
        "active" => "bg-green-100 text-green-800 dark:bg-green-900 dark:text-green-100",
        "expiring_soon" | "rotating" => {
            "bg-amber-100 text-amber-800 dark:bg-amber-900 dark:text-amber-100"
        }
        "revoked" | "expired" => "bg-red-100 text-red-800 dark:bg-red-900 dark:text-red-100",
        _ => "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-100",
    };
    view! { <span class=format!("inline-block whitespace-nowrap rounded-full px-2 py-0.5 text-xs font-medium {colour}")>{label}</span> }
}

/// An empty list: what it is and what to do next.
#[component]
pub fn EmptyState(
    title: &'static str,
    text: &'static str,
    #[prop(optional)] action: Option<(&'static str, &'static str)>,
) -> impl IntoView {
    view! {
        <div class="rounded-xl border border-dashed border-slate-300 px-6 py-12 text-center dark:border-slate-700">
            <p class="font-medium">{title}</p>
            <p class="mx-auto mt-1 max-w-md text-sm text-slate-600 dark:text-slate-400">{text}</p>
            {action.map(|(href, label)| view! { <a href=href class=format!("{BUTTON} mt-4")>{label}</a> })}
        </div>
    }
}

/// A destructive or important action behind a disclosure: the first button only opens the
/// question; the form inside does the work. Works without WASM.
#[component]
pub fn Confirm(label: String, #[prop(optional)] danger: bool, children: Children) -> impl IntoView {
    let summary = if danger {
        "inline-flex cursor-pointer list-none items-center rounded-md border border-red-300 px-3 py-2 text-sm font-medium text-red-700 hover:bg-red-50 dark:border-red-800 dark:text-red-300 dark:hover:bg-red-950/40"
    } else {
        "inline-flex cursor-pointer list-none items-center rounded-md border border-slate-300 px-3 py-2 text-sm font-medium hover:bg-slate-50 dark:border-slate-700 dark:hover:bg-slate-800"
    };
    view! {
        <details class="group">
            <summary class=summary>{label}</summary>
            <div class="mt-2 w-full max-w-md space-y-3 rounded-lg border border-slate-200 bg-white p-4 text-left shadow-lg dark:border-slate-700 dark:bg-slate-900">
                {children()}
            </div>
        </details>
    }
}

/// A 2FA code input for actions that need a fresh check. `id` must be unique on the page when
/// several forms ask for a code (default `step-up-code`).
#[component]
pub fn StepUpField(
    error: Option<String>,
    #[prop(optional, into)] id: Option<String>,
) -> impl IntoView {
    let invalid = error.is_some();
    let id = id.unwrap_or_else(|| "step-up-code".to_owned());
    let hint = format!("{id}-hint");
    view! {
        <div>
            <label for=id.clone() class=LABEL>"Authentication code"</label>
            <input id=id name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required=true
                pattern="[0-9 ]{6,7}" maxlength="7" aria-invalid=invalid.then_some("true")
                aria-describedby=hint.clone()
                class=crate::components::form::INPUT />
            <p id=hint class=HINT>"Confirm it is you: enter the 6-digit code from your authenticator app."</p>
            {error.map(|e| view! { <p class=ERROR>{e}</p> })}
        </div>
    }
}

/// "Page 2 of 5" with previous/next links.
#[component]
pub fn Pagination(page: u64, pages: u64, link: Callback<u64, String>) -> impl IntoView {
    (pages > 1).then(|| view! {
        <nav aria-label="Pagination" class="flex items-center justify-between text-sm">
            <span>{format!("Page {page} of {pages}")}</span>
            <div class="flex gap-2">
                {(page > 1).then(|| view! { <a class=crate::components::form::SECONDARY rel="prev" href=link.run(page - 1)>"Previous"</a> })}
                {(page < pages).then(|| view! { <a class=crate::components::form::SECONDARY rel="next" href=link.run(page + 1)>"Next"</a> })}
            </div>
        </nav>
    })
}
