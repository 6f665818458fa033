//! Diagnostics: every problem found in a document, with where it is and how to fix it.

use std::fmt;

use serde::Serialize;

/// A position in a source file: 1-based line and column, and which file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Loc {
    /// Index into [`Sources`]; 0 is the first file added.
    pub src: u16,
    /// 1-based line (0 when unknown).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub col: u32,
}

impl Loc {
    pub const fn new(src: u16, line: u32, col: u32) -> Self {
        Self { src, line, col }
    }
}

/// How bad a diagnostic is. Errors stop everything; warnings are printed and let the run go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diag {
    pub severity: Severity,
    pub loc: Loc,
    /// What is wrong, lowercase, one sentence.
    pub message: String,
    /// How to fix it, when the fix is clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diag {
    pub fn error(loc: Loc, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            loc,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(loc: Loc, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            loc,
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The full message as printed after `error: `.
    pub fn text(&self) -> String {
        match &self.hint {
            Some(h) => format!("{}, {}", self.message, h),
            None => self.message.clone(),
        }
    }
}

/// The names of the files diagnostics point into.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    names: Vec<String>,
}

impl Sources {
    /// Registers a file name and returns its index for [`Loc::src`].
    pub fn add(&mut self, name: impl Into<String>) -> u16 {
        let name = name.into();
        if let Some(i) = self.names.iter().position(|n| *n == name) {
            return u16::try_from(i).unwrap_or(u16::MAX);
        }
        self.names.push(name);
        u16::try_from(self.names.len() - 1).unwrap_or(u16::MAX)
    }

    pub fn name(&self, src: u16) -> &str {
        self.names
            .get(usize::from(src))
            .map_or("<unknown>", String::as_str)
    }

    /// Renders a diagnostic as `PATH:LINE:COL: error: MESSAGE`.
    pub fn render(&self, d: &Diag) -> String {
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{}:{}:{}: {}: {}",
            self.name(d.loc.src),
            d.loc.line,
            d.loc.col,
            sev,
            d.text()
        )
    }
}

/// Suggests the closest of `candidates` to a misspelt `word`, if one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A list of quoted names: `"a", "b" or "c"`.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::from("nothing"),
        [one] => format!("\"{one}\""),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("\"{n}\"")).collect();
            format!("{} or \"{last}\"", init.join(", "))
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.loc.line, self.loc.col, self.text())
    }
}
