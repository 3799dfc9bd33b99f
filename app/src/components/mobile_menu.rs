//! The navigation menu on narrow screens: a button that opens and closes the list of links.
use leptos::prelude::*;

use super::icons::{Bars, Close};

/// The links are rendered on the server and passed in as children, so they work without WASM
/// on wide screens and the island only owns the open/closed state.
#[island]
pub fn MobileMenu(children: Children) -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <div class="md:hidden">
            <button
                type="button"
                on:click=move |_| open.update(|o| *o = !*o)
                aria-expanded=move || open.get().to_string()
                aria-controls="mobile-nav"
                class="inline-flex size-9 items-center justify-center rounded-md text-slate-600 hover:bg-slate-100 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 dark:text-slate-300 dark:hover:bg-slate-800"
            >
                <span class="sr-only">"Menu"</span>
                <Show when=move || open.get() fallback=|| view! { <Bars /> }>
                    <Close />
                </Show>
            </button>
            <nav
                id="mobile-nav"
                aria-label="Main"
                class="absolute inset-x-0 top-full border-b border-slate-200 bg-white px-4 py-3 shadow-sm dark:border-slate-800 dark:bg-slate-950"
                class:hidden=move || !open.get()
                on:click=move |_| open.set(false)
            >
                {children()}
            </nav>
        </div>
    }
}
