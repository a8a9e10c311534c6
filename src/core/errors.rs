//! Rendering an error with its causes, for messages that must say what went
//! wrong underneath (a TLS failure inside an HTTP error inside a store error).

/// `outer: cause: deeper cause`, skipping a cause whose text the message
/// already contains (many libraries repeat their source in their own text).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_are_appended_once() {
        let e = Outer(std::io::Error::other("disk gone"));
        assert_eq!(error_chain(&e), "outer: disk gone");
        let plain = std::io::Error::other("only");
        assert_eq!(error_chain(&plain), "only");
    }
}
