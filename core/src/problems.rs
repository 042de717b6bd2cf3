//! Collects every problem found in a definition, so one pass reports them all.

use std::fmt;

use serde::Serialize;

/// One thing wrong, located by a JSON-path-like `path` (e.g. `experiments[2].variants[0]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
    /// What kind of problem, for callers that treat one kind differently (never by its text).
    #[serde(skip)]
    pub code: Code,
}

/// Kinds of problem a caller may treat differently from the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Code {
    #[default]
    Other,
    /// An experiment without variants: fine while it is a draft, refused once it runs.
    NoVariants,
    /// A running experiment requiring a draft: fine while both are drafts.
    DraftPrerequisite,
}

/// Every problem found, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push_coded(path, Code::Other, message);
    }

    /// [`Problems::push`] of a problem of kind `code`.
    pub fn push_coded(&mut self, path: impl Into<String>, code: Code, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
            code,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// Keeps only the problems `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Problem) -> bool) {
        self.0.retain(keep);
    }

    /// Appends every problem of `other`.
    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
