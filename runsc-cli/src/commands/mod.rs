//! One module per subcommand.

pub mod boot;
pub mod console;
pub mod gofer;
pub mod help;
pub mod run_do;
