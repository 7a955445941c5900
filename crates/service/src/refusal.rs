//! A check that may refuse. A refusal is an answer, not an error: the call
//! worked, and what it found (a missing backup, a corrupt copy) is reported in
//! status. Errors (`ServiceError`) are for calls that did not work.

/// What a check found usable, or why it refused.
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub enum Refusable<T, R = String> {
    /// The check passed; what was asked for.
    Usable(T),
    /// The check refused; why.
    Refused(R),
}

impl<T, R> Refusable<T, R> {
    /// As a `Result`, the refusal as the error (to turn it into one, or to use `?`).
    pub fn usable(self) -> Result<T, R> {
        match self {
            Self::Usable(t) => Ok(t),
            Self::Refused(r) => Err(r),
        }
    }

    /// Borrows what it holds.
    pub fn as_ref(&self) -> Refusable<&T, &R> {
        match self {
            Self::Usable(t) => Refusable::Usable(t),
            Self::Refused(r) => Refusable::Refused(r),
        }
    }
}
