//! Prints the InfluxQL of every panel of the Grafana export, one a line,
//! as Grafana sends them for the last SECONDS seconds at the step the page
//! would pick for that range (for bench/dashboard.sh's peer).
//!
//!     cargo run -p web --example grafana_queries -- [SECONDS]

use std::time::Duration;

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .map_or(3600, |s| s.parse().expect("SECONDS is a number"));
    let step = web::frame::auto_step(Duration::from_secs(secs), 360);
    let ds = web::Datasource::Influx {
        url: String::new(),
        database: "lab".into(),
        token_env: None,
    };
    let dashboard = web::grafana::dashboard("lab", &ds);
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let query = target["query"].as_str().unwrap_or_default();
            println!(
                "{}",
                query
                    .replace("$timeFilter", &format!("time > now() - {secs}s"))
                    .replace("$__interval", &format!("{}s", step.as_secs()))
            );
        }
    }
}
