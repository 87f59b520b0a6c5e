//! Problems found in flow files, each pinned to a file, line, column and key, so a user can jump
//! straight to it. Validation collects all of them rather than stopping at the first.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a YAML file something is: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in one flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub mark: Mark,
    /// The dotted path of the offending key, e.g. `flow.tasks[1].script.code`.
    pub key: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &Path, mark: Mark, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, file: file.to_path_buf(), mark, key: key.into(), message: message.into() }
    }

    pub fn warning(file: &Path, mark: Mark, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(file, mark, key, message) }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}:{}: {level}: ", self.file.display(), self.mark)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Suggest the closest of `candidates` to a misspelt `word`, if one is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["name", "cron", "interval", "timezone"];
        assert_eq!(did_you_mean("crn", keys), Some("cron"));
        assert_eq!(did_you_mean("intreval", keys), Some("interval"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }

    #[test]
    fn display_names_file_line_column_and_key() {
        let d = Diagnostic::error(Path::new("f.yaml"), Mark { line: 3, column: 7 }, "flow.name", "bad");
        assert_eq!(d.to_string(), "f.yaml:3:7: error: key `flow.name`: bad");
    }
}
