//! Applying config.json's capability sets to a new process's credentials.

use super::protocol::Capabilities;
use crate::kernel::caps::mask_of;
use crate::kernel::task::Creds;

/// Sets `creds`' capabilities from `spec` (`None`: the uid's defaults stay).
pub fn apply_spec(creds: &mut Creds, spec: Option<&Capabilities>) {
    let Some(c) = spec else { return };
    let mut unknown = Vec::new();
    let mut set = |names: &[String]| {
        let (m, u) = mask_of(names);
        unknown.extend(u);
        m
    };
    creds.caps.bounding = set(&c.bounding);
    creds.caps.permitted = set(&c.permitted) & creds.caps.bounding;
    creds.caps.effective = set(&c.effective) & creds.caps.permitted;
    creds.caps.inheritable = set(&c.inheritable);
    creds.caps.ambient = set(&c.ambient) & creds.caps.permitted & creds.caps.inheritable;
    if !unknown.is_empty() {
        tracing::warn!(?unknown, "unknown capability names ignored");
    }
}
