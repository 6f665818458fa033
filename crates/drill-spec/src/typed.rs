//! The step from raw to typed: a validated playbook's faults, actions, checks and steps
//! leave the raw structs for their typed forms ([`crate::fault::ValidFault`],
//! [`crate::call::ValidAction`], [`crate::check::ValidCheck`], [`crate::call::ValidStep`]).

use crate::de::LocMap;
use crate::diag::Diag;

/// Raw items moved into their typed form ([`crate::fault::ValidFault`],
/// [`crate::call::ValidStep`], …). Validation has reported every way one can fail, with a hint;
/// an error here is its backstop, reported (when `report`) so an item never goes missing
/// silently from a playbook that passed.
pub(crate) struct Typed<'a> {
    pub diags: &'a mut Vec<Diag>,
    pub locs: &'a LocMap,
    pub report: bool,
}

impl Typed<'_> {
    pub fn list<R, T>(&mut self, at: &str, raw: Vec<R>) -> Vec<T>
    where
        T: TryFrom<R>,
        T::Error: std::fmt::Display,
    {
        let mut out = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            match T::try_from(r) {
                Ok(v) => out.push(v),
                Err(e) if self.report => {
                    self.diags.push(Diag::error(
                        self.locs.at(&format!("{at}[{i}]")),
                        e.to_string(),
                    ));
                }
                Err(_) => {}
            }
        }
        out
    }
}
