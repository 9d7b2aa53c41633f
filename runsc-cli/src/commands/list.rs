//! `rvisor list`: the containers under `--root`, as runc's table or JSON.

use crate::container::state;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format: table or json.
    #[arg(long, short = 'f', default_value = "table")]
    format: String,
    /// Print only the ids.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Lays out rows like Go's tabwriter with runc's settings (min width 12, padding 3).
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count() + 3).max().unwrap_or(0).max(12))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn run(g: &crate::GlobalFlags, args: ListArgs) -> anyhow::Result<i32> {
    let states: Vec<_> = state::list_ids(&g.root).into_iter().filter_map(|id| state::load(&g.root, &id).ok()).collect();
    if args.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match args.format.as_str() {
        "json" => {
            let v: Vec<_> = states.iter().map(|s| s.to_oci_json(&state::owner(&g.root, &s.id))).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
            for s in &states {
                let status = s.status();
                let pid = if status == state::Status::Stopped { 0 } else { s.pid };
                rows.push(vec![s.id.clone(), pid.to_string(), status.as_str().into(), s.bundle.clone(), s.created.clone(), state::owner(&g.root, &s.id)]);
            }
            print!("{}", table(&rows));
        }
        other => anyhow::bail!("invalid format option: {other}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_pads_like_tabwriter() {
        let t = super::table(&[vec!["ID".into(), "PID".into()], vec!["a-long-container-id".into(), "7".into()]]);
        assert_eq!(t, format!("ID{}PID\na-long-container-id   7\n", " ".repeat(20)));
        // Short columns are 12 wide.
        assert_eq!(super::table(&[vec!["a".into(), "b".into()]]), format!("a{}b\n", " ".repeat(11)));
    }
}
