//! Inline SVG icons (decorative: hidden from screen readers; the control carries the label).
use leptos::prelude::*;

#[component]
pub fn Logo(#[prop(optional, into)] class: String) -> impl IntoView {
    view! {
        <svg class=class viewBox="0 0 32 32" aria-hidden="true" fill="none">
            <rect width="32" height="32" rx="8" class="fill-indigo-600" />
            <circle cx="12" cy="16" r="5" stroke="white" stroke-width="2.5" />
            <path d="M17 16h9m-3 0v4m-3-4v3" stroke="white" stroke-width="2.5" stroke-linecap="round" />
        </svg>
    }
}

#[component]
pub fn Sun() -> impl IntoView {
    view! {
        <svg class="size-5" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
            <circle cx="12" cy="12" r="4" />
            <path stroke-linecap="round" d="M12 2v2m0 16v2M4.9 4.9l1.4 1.4m11.4 11.4 1.4 1.4M2 12h2m16 0h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" />
        </svg>
    }
}

#[component]
pub fn Moon() -> impl IntoView {
    view! {
        <svg class="size-5" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
            <path stroke-linejoin="round" d="M20.5 14.5A8.5 8.5 0 0 1 9.5 3.5a8.5 8.5 0 1 0 11 11Z" />
        </svg>
    }
}

#[component]
pub fn Bars() -> impl IntoView {
    view! {
        <svg class="size-5" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
            <path stroke-linecap="round" d="M4 6h16M4 12h16M4 18h16" />
        </svg>
    }
}

#[component]
pub fn Close() -> impl IntoView {
    view! {
        <svg class="size-5" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
            <path stroke-linecap="round" d="M6 6l12 12M18 6 6 18" />
        </svg>
    }
}

#[component]
pub fn Check() -> impl IntoView {
    view! {
        <svg class="size-5 shrink-0 text-indigo-600 dark:text-indigo-400" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
            <path stroke-linecap="round" stroke-linejoin="round" d="m5 12 5 5L20 7" />
        </svg>
    }
}
