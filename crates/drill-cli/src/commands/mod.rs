//! One file per subcommand: its arguments (clap `Args`) and its `run`, which returns the
//! exit code from [`crate::exit`].

pub mod apply;
pub mod daemon;
pub mod demo;
pub mod load;
pub mod plan;
pub mod recover;
pub mod remote;
pub mod report;
pub mod revert;
pub mod runs;
pub mod schema;
pub mod token;
pub mod validate;
