//! [`Report`]: what each check of a conformance run did.

use std::fmt;

/// What became of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every assertion of the check ran and held.
    Passed,
    /// The check ran and held, but left some assertions out; says which and why (an
    /// optional method the store does not support, the trait's default `touch`).
    Partial(String),
    /// The check did not run; says why (atomicity not claimed).
    Skipped(String),
}

/// What a conformance run did, check by check, in the order they ran. A report only
/// exists for a store that passed: a failing check panics. Its `Display` is one line per
/// check, for a test to print.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub(super) checks: Vec<(&'static str, Outcome)>,
    pub(super) unsupported: Vec<&'static str>,
}

impl Report {
    /// Every check by name, with its outcome, in the order they ran.
    pub fn checks(&self) -> impl Iterator<Item = (&'static str, &Outcome)> + '_ {
        self.checks.iter().map(|(name, outcome)| (*name, outcome))
    }

    /// The outcome of the check called `name` (the names are the ones in the
    /// failure messages, such as `"destroy_removes"`).
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks().find(|(n, _)| *n == name).map(|(_, o)| o)
    }

    /// Whether every check ran in full: none partial, none skipped.
    pub fn all_passed(&self) -> bool {
        self.checks().all(|(_, o)| *o == Outcome::Passed)
    }

    /// The optional methods (`all`, `len`, `clear`) that answered
    /// [`StoreError::Unsupported`](crate::store::StoreError::Unsupported).
    pub fn unsupported(&self) -> &[&'static str] {
        &self.unsupported
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |want: fn(&Outcome) -> bool| self.checks().filter(|(_, o)| want(o)).count();
        write!(
            f,
            "store conformance: {} passed, {} partial, {} skipped",
            count(|o| *o == Outcome::Passed),
            count(|o| matches!(o, Outcome::Partial(_))),
            count(|o| matches!(o, Outcome::Skipped(_))),
        )?;
        for (name, outcome) in self.checks() {
            match outcome {
                Outcome::Passed => write!(f, "\n  passed   {name}")?,
                Outcome::Partial(why) => write!(f, "\n  partial  {name}: {why}")?,
                Outcome::Skipped(why) => write!(f, "\n  skipped  {name}: {why}")?,
            }
        }
        Ok(())
    }
}
