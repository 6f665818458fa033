//! Exit codes: the one table every command (and the help text) uses.

use std::process::ExitCode;

use drill_engine::Status;

/// Everything passed, or nothing to do.
pub const OK: u8 = 0;
/// A check or threshold failed.
pub const CHECK_FAILED: u8 = 1;
/// Invalid input or usage: nothing was executed.
pub const INVALID: u8 = 2;
/// Aborted: a guard tripped, or an operator stopped the run.
pub const ABORTED: u8 = 3;
/// A fault could not be reverted; the output says what is still changed.
pub const REVERT_FAILED: u8 = 4;

/// The table, for `--help`.
pub const HELP: &str = "\
Exit codes (all commands):
  0  ok
  1  a check or threshold failed
  2  invalid input or usage (nothing was executed)
  3  aborted (a guard tripped, or an operator stopped the run)
  4  a fault could not be reverted (the output says what is still changed)";

/// The exit code of a run that ended with `status`.
pub fn of(status: Status) -> u8 {
    match status {
        Status::Passed | Status::DryRun => OK,
        Status::Failed => CHECK_FAILED,
        Status::Aborted => ABORTED,
        Status::RevertFailed => REVERT_FAILED,
    }
}

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_the_documented_code() {
        assert_eq!(of(Status::Passed), 0);
        assert_eq!(of(Status::DryRun), 0);
        assert_eq!(of(Status::Failed), 1);
        assert_eq!(of(Status::Aborted), 3);
        assert_eq!(of(Status::RevertFailed), 4);
        for (c, line) in [
            (OK, "0  ok"),
            (CHECK_FAILED, "1  a check"),
            (INVALID, "2  invalid"),
            (ABORTED, "3  aborted"),
            (REVERT_FAILED, "4  a fault"),
        ] {
            assert!(HELP.contains(line), "{c}: {line}");
        }
    }
}
