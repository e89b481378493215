//! The bottom of an error's `source()` chain, for messages that should say
//! what went wrong (`Connection refused (os error 111)`) rather than a
//! library's wrapper around it, which may repeat a URL the message already
//! names (or one that holds a token).

/// The innermost cause of `error`, displayed.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request for url (http://h/?token=x)")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_innermost_cause_is_told_not_the_wrapper() {
        let e = Outer(std::io::Error::other("Connection refused"));
        assert_eq!(root_cause(&e), "Connection refused");
        assert_eq!(root_cause(&std::io::Error::other("alone")), "alone");
    }
}
