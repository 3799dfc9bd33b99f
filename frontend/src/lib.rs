//! Entry point of the WASM bundle: hydrates the interactive islands of the server-rendered page.
// Link the app crate so the islands it defines are exported from this bundle.
pub use app;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
