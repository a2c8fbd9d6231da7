//! An error with its causes, in one line: HTTP clients often say little at the top
//! ("error sending request") and the reason ("connection refused") only further down.

/// An error with its causes, `outer: inner: …`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
