//! `rvisor state`: the container's state as runc prints it.

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The container id.
    pub id: String,
}

pub fn run(g: &crate::GlobalFlags, args: StateArgs) -> anyhow::Result<i32> {
    let (locked, mut st) = crate::container::state::lock(&g.root, &args.id)?;
    crate::container::lifecycle::refresh_oom(g, &locked, &mut st);
    let v = st.to_oci_json(&crate::container::state::owner(&g.root, &st.id));
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
