//! One module per subcommand.

pub mod boot;
pub mod console;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod gofer;
pub mod help;
pub mod install;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod run_do;
pub mod spec;
pub mod start;
pub mod state;
pub mod unsupported;
pub mod wait;
