use std::fmt;

/// A generated credential. `Debug` and `Display` print `***`, so a secret
/// inside a status report, an event or a log line cannot leak by accident;
/// the value comes out only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The plain value, for the few places that must hand it on (a
    /// connection string, `prodhome env`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret, compared in time that depends
    /// only on the lengths: the answer's timing tells nothing about how much
    /// of a guess was right.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let mine = self.0.as_bytes();
        if mine.len() != candidate.len() {
            return false;
        }
        let diff = mine.iter().zip(candidate).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }

    /// A fresh random secret of `len` characters from [A-Za-z0-9], read
    /// from the kernel's CSPRNG.
    pub fn generate(len: usize) -> std::io::Result<Self> {
        Secret::generate_from(
            len,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        )
    }

    /// A fresh random secret of `len` characters drawn uniformly from
    /// `alphabet` (at most 256 distinct characters).
    pub fn generate_from(len: usize, alphabet: &str) -> std::io::Result<Self> {
        let chars: Vec<char> = alphabet.chars().collect();
        if chars.is_empty() || chars.len() > 256 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an alphabet needs 1 to 256 characters",
            ));
        }
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % chars.len();
        let mut out = String::with_capacity(len);
        let mut count = 0;
        let mut bytes = [0u8; 64];
        let mut file = std::fs::File::open("/dev/urandom")?;
        while count < len {
            std::io::Read::read_exact(&mut file, &mut bytes)?;
            for b in bytes {
                if (b as usize) < limit && count < len {
                    out.push(chars[b as usize % chars.len()]);
                    count += 1;
                }
            }
        }
        Ok(Secret(out))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_is_true_only_for_the_same_value() {
        let s = Secret::new("abc123");
        assert!(s.matches(b"abc123"));
        assert!(!s.matches(b"abc124"));
        assert!(!s.matches(b"abc12"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::generate(24).unwrap();
        assert_eq!(s.expose().len(), 24);
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert!(s.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, Secret::generate(24).unwrap());
    }
}
