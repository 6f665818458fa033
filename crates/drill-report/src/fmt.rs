//! How the reports write numbers, instants and text: one spelling for every renderer.

/// A fraction as a percentage the way limits are written: `3.85%`, `1%`, `99.9%`, `0.04%`
/// (two decimals, trailing zeros dropped; below 0.01% three significant digits).
pub fn pct(f: f64) -> String {
    let p = f * 100.0;
    let s = if p != 0.0 && p.abs() < 0.01 {
        format!("{p:.1e}")
    } else {
        let t = format!("{p:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    format!("{s}%")
}

/// Milliseconds the way limits are written: `812ms`, `1.25s`.
pub fn millis(v: f64) -> String {
    if v < 1000.0 {
        format!("{:.0}ms", v.max(0.0))
    } else {
        let t = format!("{:.2}", v / 1000.0);
        format!("{}s", t.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// An instant (milliseconds since the Unix epoch) the way reports write it: RFC 3339,
/// milliseconds, UTC.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// XML and HTML text escaping (the JUnit and the HTML reports); control characters XML
/// cannot carry are dropped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_escaped() {
        assert_eq!(esc("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
