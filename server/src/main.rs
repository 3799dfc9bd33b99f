//! The `keyport` command. Everything lives in the library so tests drive the same code.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    server::cli::main()
}

/// Rust's allocations go to mimalloc; SQLite (C, bundled) allocates with glibc's malloc, whose
/// default of up to 8 arenas per core let its memory creep: under a steady verify load with the
/// usage flush on (100,000 keys), the RSS grew ~3 MiB a minute for 10 minutes, all of it in new
/// glibc arenas, while mimalloc's stayed flat. With one arena glibc's side stays within SQLite's
/// page caches (`--sqlite-cache-mib`) plus a few MiB (two arenas still crept in glibc's main
/// heap). glibc's per-thread caches serve most of SQLite's small allocations without taking the
/// arena's lock.
/// (`MALLOC_ARENA_MAX` in the environment still decides when set; mimalloc's `override`, which
/// would take SQLite's allocations too, swung by ±20 MiB and kept rising in the same test.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt(3) takes two integers and touches no memory of ours; it runs before
        // any thread is started. A refusal (0) leaves glibc's default.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
