//! Form building blocks: labelled inputs with their error next to them, buttons, alerts.
use leptos::prelude::*;

pub const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm placeholder:text-slate-400 focus:border-indigo-500 focus:outline-2 focus:outline-indigo-500 aria-[invalid=true]:border-red-500 dark:border-slate-700 dark:bg-slate-900";
pub const PRIMARY: &str = "inline-flex w-full items-center justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:opacity-50";
pub const SECONDARY: &str = "inline-flex items-center justify-center gap-2 rounded-md border border-slate-300 bg-white px-3 py-2 text-sm font-medium text-slate-700 shadow-sm hover:bg-slate-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-200 dark:hover:bg-slate-800";

/// A labelled input; `error` renders under it and marks it invalid for assistive technology.
#[component]
pub fn Field(
    name: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(default = None)] value: Option<String>,
    #[prop(default = None)] error: Option<String>,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional)] autofocus: bool,
    /// Distinguishes two fields of the same name on one page.
    #[prop(optional)]
    id: Option<&'static str>,
) -> impl IntoView {
    let id = format!("field-{}", id.unwrap_or(name));
    let described = match (&error, hint) {
        (Some(_), _) => Some(format!("{id}-error")),
        (None, Some(_)) => Some(format!("{id}-hint")),
        _ => None,
    };
    let invalid = error.is_some();
    view! {
        <div>
            <label for=id.clone() class="block text-sm font-medium">{label}</label>
            <input
                id=id.clone()
                name=name
                type=kind
                required=true
                autocomplete=autocomplete
                inputmode=inputmode
                value=value
                autofocus=autofocus
                aria-invalid=invalid.then_some("true")
                aria-describedby=described
                class=INPUT
            />
            {hint.filter(|_| !invalid).map(|hint| view! {
                <p id=format!("{id}-hint") class="mt-1 text-xs text-slate-500 dark:text-slate-400">{hint}</p>
            })}
            {error.map(|error| view! {
                <p id=format!("{id}-error") class="mt-1 text-sm text-red-600 dark:text-red-400">{error}</p>
            })}
        </div>
    }
}

/// A form-level error, announced to screen readers.
#[component]
pub fn Alert(message: Option<String>) -> impl IntoView {
    message.map(|message| view! {
        <div role="alert" class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-900 dark:bg-red-950/50 dark:text-red-200">
            {message}
        </div>
    })
}

/// The card that holds the sign-in style forms.
#[component]
pub fn AuthCard(
    title: &'static str,
    #[prop(optional)] subtitle: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <section class="mx-auto max-w-md px-4 py-12 sm:py-16">
            <div class="rounded-xl border border-slate-200 bg-white p-6 shadow-sm sm:p-8 dark:border-slate-800 dark:bg-slate-900/60">
                <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                {subtitle.map(|s| view! { <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">{s}</p> })}
                <div class="mt-6">{children()}</div>
            </div>
        </section>
    }
}
