//! The light/dark switch in the header: an island, so it is the part of the header that hydrates.
use leptos::prelude::*;

use super::icons::{Moon, Sun};

#[island]
pub fn ThemeToggle() -> impl IntoView {
    // Unknown on the server (the OS preference is only visible in the browser).
    let dark = RwSignal::new(None::<bool>);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        dark.set(Some(crate::theme::current() == crate::theme::Theme::Dark));
    });
    let toggle = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let next = crate::theme::current().toggled();
            crate::theme::apply(next);
            dark.set(Some(next == crate::theme::Theme::Dark));
        }
    };
    view! {
        <button
            type="button"
            on:click=toggle
            aria-label="Dark theme"
            title="Switch between light and dark theme"
            aria-pressed=move || dark.get().map(|d| d.to_string())
            data-hydrated=move || dark.get().map(|_| "true")
            class="inline-flex size-9 items-center justify-center rounded-md text-slate-600 hover:bg-slate-100 hover:text-slate-900 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 dark:text-slate-300 dark:hover:bg-slate-800 dark:hover:text-white"
        >
            <span class="dark:hidden"><Moon /></span>
            <span class="hidden dark:inline"><Sun /></span>
        </button>
    }
}
