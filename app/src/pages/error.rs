//! What a visitor sees when a page fails to render: a plain apology and a way back, never the
//! internal error (that is logged on the server).
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ErrorPage(errors: ArcRwSignal<Errors>) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::INTERNAL_SERVER_ERROR);
        }
        for (_, error) in errors.get_untracked().iter() {
            leptos::logging::error!("page failed to render: {error}");
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = errors;
    view! {
        <Title text="Something went wrong" />
        <section role="alert" class="mx-auto max-w-xl px-4 py-24 text-center sm:px-6">
            <p class="text-sm font-semibold text-red-600 dark:text-red-400">"Error"</p>
            <h1 class="mt-2 text-3xl font-semibold tracking-tight">"Something went wrong"</h1>
            <p class="mt-4 text-slate-600 dark:text-slate-400">
                "Keyport could not show this page. The problem has been logged; please try again in a moment."
            </p>
            <a
                href="/"
                class="mt-8 inline-flex items-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600"
            >
                "Go to the home page"
            </a>
        </section>
    }
}
