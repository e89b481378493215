//! The one naming rule every crate that finds a replication link in
//! Postgres shares: `up` creates the subscription and its slot under it,
//! the status and the sampler look the slot up by it, the lab checker
//! refuses two links that would share it.

/// The subscription (and publisher-side slot) name prodhome gives one
/// subscriber of one replication: `<replication>_<subscriber>`.
pub fn subscription_name(replication: &str, subscriber: &str) -> String {
    format!("{replication}_{subscriber}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_name_joins_replication_and_subscriber() {
        assert_eq!(super::subscription_name("books", "sub1"), "books_sub1");
    }
}
