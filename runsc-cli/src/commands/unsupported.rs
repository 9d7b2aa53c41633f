//! `checkpoint`, `restore` and `update`: accepted on the command line, refused clearly.

#[derive(Debug, clap::Args)]
pub struct AnyArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub fn run(name: &str, _args: AnyArgs) -> anyhow::Result<i32> {
    anyhow::bail!("{name} is not supported by rvisor yet")
}
