//! The export's floor: every page fetched as `d365 get --all` fetches them, by a process of
//! its own (this executable, started again in raw mode), and read only for what paging
//! needs (the next link) and a row count. Nothing is written, nothing is kept.
//!
//! It sends what `d365-webapi` sends for a page (the token, `Accept`, the OData versions,
//! `Prefer: odata.maxpagesize`, `If-None-Match: null`, an `x-ms-client-request-id`) with
//! the HTTP client settings `d365-webapi` builds by default, on the multi-threaded runtime
//! `d365 get` runs on, so the emulator serves both the same pages in the same way.

use std::process::Command;
use std::time::Duration;

use serde::de::IgnoredAny;

/// The variable that starts this executable in raw mode, naming the first page's URL.
const URL_VARIABLE: &str = "D365_BENCH_RAW_PAGES_URL";
/// The bearer token, passed in the environment (never on a command line).
const TOKEN_VARIABLE: &str = "D365_BENCH_RAW_PAGES_TOKEN";
/// The page size to ask for.
const PAGE_SIZE_VARIABLE: &str = "D365_BENCH_RAW_PAGES_SIZE";

/// The raw pass as a process: this executable in raw mode.
pub(crate) fn command(first_page: &str, token: &str, page_size: u32) -> Command {
    let mut command =
        Command::new(std::env::current_exe().expect("the bench executable's own path"));
    command
        .env(URL_VARIABLE, first_page)
        .env(TOKEN_VARIABLE, token)
        .env(PAGE_SIZE_VARIABLE, page_size.to_string());
    command
}

/// A page, read for paging and counting only.
#[derive(serde::Deserialize)]
struct Page {
    value: Vec<IgnoredAny>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// When this executable was started in raw mode: fetches every page, prints the row
/// count, and returns `true` (the caller exits).
pub(crate) fn run_if_asked() -> bool {
    let Ok(first_page) = std::env::var(URL_VARIABLE) else {
        return false;
    };
    let token = std::env::var(TOKEN_VARIABLE).expect("the raw pass's token");
    let page_size: u32 = std::env::var(PAGE_SIZE_VARIABLE)
        .expect("the raw pass's page size")
        .parse()
        .expect("a page size");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rows = runtime.block_on(fetch_all(first_page, &token, page_size));
    println!("{rows}");
    true
}

async fn fetch_all(first_page: String, token: &str, page_size: u32) -> u64 {
    let http = d365_auth_core::grant::http_client_builder()
        .user_agent(concat!("d365-webapi/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let authorization = format!("Bearer {token}");
    let prefer = format!("odata.maxpagesize={page_size}");
    let mut rows = 0;
    let mut next = Some(first_page);
    let mut request_number = 0_u64;
    while let Some(url) = next.take() {
        request_number += 1;
        let body = http
            .get(&url)
            .timeout(Duration::from_secs(120))
            .header("Authorization", &authorization)
            .header("Accept", "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .header(
                "x-ms-client-request-id",
                format!("00000000-0000-4000-8000-{request_number:012x}"),
            )
            .header("If-None-Match", "null")
            .header("Prefer", &prefer)
            .send()
            .await
            .expect("a page request")
            .error_for_status()
            .expect("a page")
            .bytes()
            .await
            .expect("a page's body");
        let page: Page = serde_json::from_slice(&body).expect("a page of JSON");
        rows += page.value.len() as u64;
        next = page.next_link;
    }
    rows
}
