//! Plain-http requests for tests, through reqwest like the rest of the
//! workspace, callable from sync tests and from inside a tokio runtime
//! alike: each request runs on a thread of its own with a current-thread
//! runtime (a runtime cannot be blocked on from within another).

use std::time::Duration;

/// How long one request may take before it counts as no answer.
const LIMIT: Duration = Duration::from_secs(30);

/// `GET url` (plain http on loopback) → (status code, body). `None` when
/// nothing answers.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    request(reqwest::Method::GET, url, String::new())
}

/// `POST url` with `body` → (status code, body). `None` when nothing
/// answers.
pub fn http_post(url: &str, body: &str) -> Option<(u16, String)> {
    request(reqwest::Method::POST, url, body.to_string())
}

fn request(method: reqwest::Method, url: &str, body: String) -> Option<(u16, String)> {
    let url = url.to_string();
    std::thread::scope(|s| {
        s.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                // A client per request: its pooled connections would belong
                // to this request's runtime, gone once it returns.
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(LIMIT)
                    .build()
                    .ok()?;
                let response = client.request(method, url).body(body).send().await.ok()?;
                let code = response.status().as_u16();
                Some((code, response.text().await.ok()?))
            })
        })
        .join()
        .ok()
        .flatten()
    })
}
