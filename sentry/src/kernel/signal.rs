//! Signal state of tasks. Delivery to guest handlers comes with the signal-frame work;
//! for now dispositions and masks are kept exactly, and signals whose action is the
//! default terminate the thread group as Linux would.

use rvisor_syscalls::flags::signal::*;
use rvisor_syscalls::types::{SigAction, SigAltStack, SigSet};

/// What a signal does when its disposition is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Stop,
    Continue,
    Ignore,
}

/// The default action of `sig` (signal(7)).
pub fn default_action(sig: u32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            DefaultAction::CoreDump
        }
        _ => DefaultAction::Terminate,
    }
}

/// Signals that can be neither caught, blocked nor ignored.
pub const UNBLOCKABLE: SigSet = SigSet((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)));

/// Per-thread-group dispositions plus the per-thread mask and alternate stack.
#[derive(Clone, Debug)]
pub struct SignalState {
    pub actions: [SigAction; NSIG as usize],
    pub mask: SigSet,
    pub pending: SigSet,
    pub altstack: SigAltStack,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG as usize],
            mask: SigSet::default(),
            pending: SigSet::default(),
            altstack: SigAltStack { ss_sp: 0, ss_flags: SS_DISABLE, __pad: 0, ss_size: 0 },
        }
    }
}

impl SignalState {
    /// The disposition of `sig` (1..=64).
    pub fn action(&self, sig: u32) -> Option<&SigAction> {
        self.actions.get((sig as usize).checked_sub(1)?)
    }

    pub fn action_mut(&mut self, sig: u32) -> Option<&mut SigAction> {
        self.actions.get_mut((sig as usize).checked_sub(1)?)
    }

    /// Whether `sig`, if sent now, would be discarded (ignored explicitly or by default).
    pub fn is_ignored(&self, sig: u32) -> bool {
        match self.action(sig) {
            Some(a) if a.handler == SIG_IGN => sig != SIGKILL && sig != SIGSTOP,
            Some(a) if a.handler == SIG_DFL => default_action(sig) == DefaultAction::Ignore,
            _ => false,
        }
    }
}
