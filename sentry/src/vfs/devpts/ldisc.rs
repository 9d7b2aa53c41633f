//! The line discipline of a pseudo-terminal (Linux's N_TTY), as pure state: input
//! processing (ICRNL/INLCR/IGNCR, ISIG, canonical editing, echo), output processing
//! (OPOST/ONLCR/OCRNL) and the bounded queues. The terminal wraps it in a lock, wakes
//! waiters and sends the signals it asks for.

use std::collections::VecDeque;

use rvisor_syscalls::flags::signal::{SIGINT, SIGQUIT, SIGTSTP};
use rvisor_syscalls::flags::termios::*;
use rvisor_syscalls::types::Termios;

/// Bytes of input the terminal holds (read queue plus the line being edited), as Linux's
/// N_TTY_BUF_SIZE.
pub const INPUT_MAX: usize = 4096;
/// Bytes of output waiting for the master to read them before replica writes block.
pub const OUTPUT_MAX: usize = 16384;
/// Echoes may go beyond [`OUTPUT_MAX`] by this much (then they are dropped, not blocked on).
const ECHO_SLACK: usize = 4096;

/// The termios of a new replica (Linux's pty slave defaults).
pub fn default_termios() -> Termios {
    Termios {
        c_iflag: ICRNL | IXON,
        c_oflag: OPOST | ONLCR,
        c_cflag: B38400 | CS8 | CREAD,
        c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
        c_line: 0,
        c_cc: INIT_C_CC,
    }
}

/// The terminal's queues and editing state.
pub struct Ldisc {
    pub termios: Termios,
    /// Canonical mode: completed lines, each read as a unit (a zero-length line is an
    /// end of file typed at the start of a line).
    lines: VecDeque<Vec<u8>>,
    /// Canonical mode: the line being edited.
    line: Vec<u8>,
    /// Non-canonical mode: input bytes.
    raw: VecDeque<u8>,
    /// The next input byte is taken literally (after VLNEXT).
    lnext: bool,
    /// Output for the master to read.
    pub out: VecDeque<u8>,
}

/// What one piece of input asks the terminal to do besides queueing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InputEffects {
    /// Signals for the foreground process group, in order.
    pub signals: Vec<u32>,
}

impl Ldisc {
    pub fn new(termios: Termios) -> Ldisc {
        Ldisc {
            termios,
            lines: VecDeque::new(),
            line: Vec::new(),
            raw: VecDeque::new(),
            lnext: false,
            out: VecDeque::new(),
        }
    }

    fn lflag(&self, f: u32) -> bool {
        self.termios.c_lflag & f != 0
    }

    fn iflag(&self, f: u32) -> bool {
        self.termios.c_iflag & f != 0
    }

    fn cc(&self, i: usize) -> u8 {
        self.termios.c_cc[i]
    }

    /// Whether `c` is the (enabled, i.e. non-zero) control character `i`.
    fn is_cc(&self, c: u8, i: usize) -> bool {
        let v = self.cc(i);
        v != 0 && c == v
    }

    pub fn canonical(&self) -> bool {
        self.lflag(ICANON)
    }

    /// Bytes held as input (queued and being edited).
    fn input_len(&self) -> usize {
        self.lines.iter().map(|l| l.len().max(1)).sum::<usize>() + self.line.len() + self.raw.len()
    }

    /// Whether the master may write more input now.
    pub fn input_room(&self) -> bool {
        self.input_len() < INPUT_MAX - 1
    }

    /// Whether output may be queued now (replica writes block otherwise).
    pub fn output_room(&self) -> bool {
        self.out.len() < OUTPUT_MAX
    }

    /// Bytes a read would find (FIONREAD): complete lines in canonical mode.
    pub fn readable_bytes(&self) -> usize {
        if self.canonical() {
            self.lines.iter().map(Vec::len).sum()
        } else {
            self.raw.len()
        }
    }

    /// Whether a read can return now: a complete line, or at least `min` raw bytes.
    pub fn read_ready(&self, min: usize) -> bool {
        if self.canonical() {
            !self.lines.is_empty()
        } else {
            self.raw.len() >= min.max(1)
        }
    }

    /// Raw bytes queued (non-canonical mode).
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Takes input for a read: at most one line in canonical mode. `None`: nothing there.
    pub fn take_input(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.canonical() {
            let line = self.lines.front_mut()?;
            let n = line.len().min(buf.len());
            buf[..n].copy_from_slice(&line[..n]);
            if n == line.len() {
                self.lines.pop_front();
            } else {
                line.drain(..n);
            }
            Some(n)
        } else {
            if self.raw.is_empty() {
                return None;
            }
            let n = self.raw.len().min(buf.len());
            for (d, s) in buf.iter_mut().zip(self.raw.drain(..n)) {
                *d = s;
            }
            Some(n)
        }
    }

    /// Discards queued input (TCIFLUSH, a signal character without NOFLSH).
    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.line.clear();
        self.raw.clear();
        self.lnext = false;
    }

    /// Applies new attributes; switching between canonical and raw mode keeps the input.
    pub fn set_termios(&mut self, t: Termios) {
        let was_canon = self.canonical();
        self.termios = t;
        let canon = self.canonical();
        if was_canon && !canon {
            for l in self.lines.drain(..) {
                self.raw.extend(l);
            }
            self.raw.extend(self.line.drain(..));
        } else if !was_canon && canon && !self.raw.is_empty() {
            self.lines.push_back(self.raw.drain(..).collect());
        }
    }

    /// Queues output written by the replica, with output processing. Returns how many
    /// input bytes were taken (all of them, or what fits below [`OUTPUT_MAX`]).
    pub fn write_output(&mut self, src: &[u8]) -> usize {
        let mut n = 0;
        for &c in src {
            if self.out.len() >= OUTPUT_MAX {
                break;
            }
            self.put_out(c);
            n += 1;
        }
        n
    }

    /// One output byte through OPOST.
    fn put_out(&mut self, c: u8) {
        let o = self.termios.c_oflag;
        if o & OPOST == 0 {
            self.out.push_back(c);
            return;
        }
        match c {
            b'\n' if o & ONLCR != 0 => self.out.extend([b'\r', b'\n']),
            b'\r' if o & OCRNL != 0 => self.out.push_back(b'\n'),
            c if o & OLCUC != 0 && c.is_ascii_lowercase() => self.out.push_back(c.to_ascii_uppercase()),
            c => self.out.push_back(c),
        }
    }

    fn echo_raw(&mut self, bytes: &[u8]) {
        for &c in bytes {
            if self.out.len() < OUTPUT_MAX + ECHO_SLACK {
                self.put_out(c);
            }
        }
    }

    /// Echoes an input character as typed: control characters as `^X` with ECHOCTL.
    fn echo_char(&mut self, c: u8) {
        if self.lflag(ECHOCTL) && (c < 0x20 || c == 0x7f) && c != b'\t' && c != b'\n' {
            self.echo_raw(&[b'^', c ^ 0x40]);
        } else {
            self.echo_raw(&[c]);
        }
    }

    /// Columns `c` took when echoed.
    fn echo_width(&self, c: u8) -> usize {
        if self.lflag(ECHOCTL) && (c < 0x20 || c == 0x7f) && c != b'\t' {
            2
        } else {
            1
        }
    }

    /// Erases the last character of the line being edited, visually with ECHOE.
    fn erase_one(&mut self) -> bool {
        let Some(c) = self.line.pop() else { return false };
        if self.lflag(ECHO) {
            if self.lflag(ECHOE) {
                for _ in 0..self.echo_width(c) {
                    self.echo_raw(b"\x08 \x08");
                }
            } else {
                let erase = self.cc(VERASE);
                self.echo_char(erase);
            }
        }
        true
    }

    /// VERASE, VWERASE or VKILL in canonical mode.
    fn eraser(&mut self, kind: usize) {
        if self.line.is_empty() {
            return;
        }
        match kind {
            VKILL => {
                if self.lflag(ECHO) && !(self.lflag(ECHOE) && self.lflag(ECHOKE)) {
                    let k = self.cc(VKILL);
                    self.line.clear();
                    self.echo_char(k);
                    if self.lflag(ECHOK) {
                        self.echo_raw(b"\n");
                    }
                } else {
                    while self.erase_one() {}
                }
            }
            VWERASE => {
                while self.line.last().is_some_and(|c| c.is_ascii_whitespace()) {
                    self.erase_one();
                }
                while self.line.last().is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    self.erase_one();
                }
                // A word of punctuation goes one character at a time, as in Linux.
                if self
                    .line
                    .last()
                    .is_some_and(|c| !c.is_ascii_whitespace() && !c.is_ascii_alphanumeric() && *c != b'_')
                {
                    self.erase_one();
                }
            }
            _ => {
                self.erase_one();
            }
        }
    }

    /// Ends the line being edited (a line terminator or VEOF).
    fn complete_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.lines.push_back(line);
    }

    /// Processes input written by the master. Returns how many bytes were taken (fewer
    /// when the queue filled up in raw mode) and what to signal.
    pub fn receive(&mut self, src: &[u8], fx: &mut InputEffects) -> usize {
        let mut n = 0;
        for &b in src {
            if !self.canonical() && !self.input_room() {
                break;
            }
            if self.canonical() && !self.input_room() && self.lines.len() > 0 && self.line.is_empty() {
                // Lines wait for a reader; the master waits for room.
                break;
            }
            self.receive_byte(b, fx);
            n += 1;
        }
        n
    }

    fn receive_byte(&mut self, mut c: u8, fx: &mut InputEffects) {
        if self.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if self.iflag(IUCLC) && self.lflag(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            self.add_char(c, true);
            return;
        }
        if c == b'\r' {
            if self.iflag(IGNCR) {
                return;
            }
            if self.iflag(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.iflag(INLCR) {
            c = b'\r';
        }
        if self.lflag(ISIG) {
            let sig = [(VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)]
                .into_iter()
                .find(|&(i, _)| self.is_cc(c, i))
                .map(|(_, s)| s);
            if let Some(sig) = sig {
                if !self.lflag(NOFLSH) {
                    self.flush_input();
                    self.out.clear();
                }
                if self.lflag(ECHO) {
                    self.echo_char(c);
                }
                fx.signals.push(sig);
                return;
            }
        }
        if self.iflag(IXON) && (self.is_cc(c, VSTART) || self.is_cc(c, VSTOP)) {
            // Flow control characters are consumed; output is never held back.
            return;
        }
        if !self.canonical() {
            self.raw.push_back(c);
            if self.lflag(ECHO) {
                self.echo_char(c);
            }
            return;
        }
        if self.is_cc(c, VERASE) || self.is_cc(c, VKILL) || (self.lflag(IEXTEN) && self.is_cc(c, VWERASE)) {
            let kind = if self.is_cc(c, VERASE) {
                VERASE
            } else if self.is_cc(c, VKILL) {
                VKILL
            } else {
                VWERASE
            };
            self.eraser(kind);
            return;
        }
        if self.lflag(IEXTEN) && self.is_cc(c, VLNEXT) {
            self.lnext = true;
            if self.lflag(ECHO) && self.lflag(ECHOCTL) {
                self.echo_raw(b"^\x08");
            }
            return;
        }
        if self.is_cc(c, VEOF) {
            self.complete_line();
            return;
        }
        self.add_char(c, false);
    }

    /// A character of the line (or raw input after VLNEXT); `literal` disables the line
    /// terminators.
    fn add_char(&mut self, c: u8, literal: bool) {
        if !self.canonical() {
            self.raw.push_back(c);
            if self.lflag(ECHO) {
                self.echo_char(c);
            }
            return;
        }
        let eol = !literal && (c == b'\n' || self.is_cc(c, VEOL) || (self.lflag(IEXTEN) && self.is_cc(c, VEOL2)));
        if eol {
            if c == b'\n' {
                if self.lflag(ECHO) || self.lflag(ECHONL) {
                    self.echo_raw(b"\n");
                }
            } else if self.lflag(ECHO) {
                self.echo_char(c);
            }
            self.line.push(c);
            self.complete_line();
            return;
        }
        // Linux keeps room for the line terminator and drops what does not fit.
        if self.input_len() >= INPUT_MAX - 1 {
            return;
        }
        self.line.push(c);
        if self.lflag(ECHO) {
            self.echo_char(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(l: &mut Ldisc, input: &[u8]) -> InputEffects {
        let mut fx = InputEffects::default();
        assert_eq!(l.receive(input, &mut fx), input.len());
        fx
    }

    fn out(l: &mut Ldisc) -> Vec<u8> {
        l.out.drain(..).collect()
    }

    fn read(l: &mut Ldisc) -> Option<Vec<u8>> {
        let mut b = [0u8; 100];
        l.take_input(&mut b).map(|n| b[..n].to_vec())
    }

    #[test]
    fn canonical_erase_echoes_backspace_space_backspace_and_crlf() {
        let mut l = Ldisc::new(default_termios());
        feed(&mut l, b"ab\x7fc");
        assert_eq!(read(&mut l), None);
        feed(&mut l, b"\r");
        assert_eq!(out(&mut l), b"ab\x08 \x08c\r\n");
        assert_eq!(read(&mut l).unwrap(), b"ac\n");
    }

    #[test]
    fn eof_at_line_start_reads_zero_and_ends_a_partial_line() {
        let mut l = Ldisc::new(default_termios());
        feed(&mut l, b"xy\x04\x04");
        assert_eq!(read(&mut l).unwrap(), b"xy");
        assert_eq!(read(&mut l).unwrap(), b"");
        assert_eq!(read(&mut l), None);
    }

    #[test]
    fn kill_and_word_erase_edit_the_line() {
        let mut l = Ldisc::new(default_termios());
        feed(&mut l, b"one two\x17x\x15z\n");
        assert_eq!(read(&mut l).unwrap(), b"z\n");
    }

    #[test]
    fn interrupt_flushes_input_echoes_caret_and_asks_for_sigint() {
        let mut l = Ldisc::new(default_termios());
        let fx = feed(&mut l, b"abc\x03");
        assert_eq!(fx.signals, vec![SIGINT]);
        assert_eq!(out(&mut l), b"^C");
        feed(&mut l, b"\n");
        assert_eq!(read(&mut l).unwrap(), b"\n");
        let fx = feed(&mut l, b"\x1a\x1c");
        assert_eq!(fx.signals, vec![SIGTSTP, SIGQUIT]);
    }

    #[test]
    fn raw_mode_passes_bytes_and_keeps_the_partial_line() {
        let mut l = Ldisc::new(default_termios());
        feed(&mut l, b"pa");
        let mut t = l.termios;
        t.c_lflag &= !(ICANON | ECHO | ISIG);
        l.set_termios(t);
        feed(&mut l, b"\x03\x7f");
        assert_eq!(read(&mut l).unwrap(), b"pa\x03\x7f");
    }

    #[test]
    fn output_maps_newline_to_crlf_only_with_opost() {
        let mut l = Ldisc::new(default_termios());
        l.write_output(b"a\nb");
        assert_eq!(out(&mut l), b"a\r\nb");
        let mut t = l.termios;
        t.c_oflag &= !OPOST;
        l.set_termios(t);
        l.write_output(b"a\nb");
        assert_eq!(out(&mut l), b"a\nb");
    }

    #[test]
    fn raw_input_is_bounded() {
        let mut t = default_termios();
        t.c_lflag = 0;
        let mut l = Ldisc::new(t);
        let big = vec![b'x'; 10000];
        let mut fx = InputEffects::default();
        let n = l.receive(&big, &mut fx);
        assert!(n < INPUT_MAX);
        assert!(!l.input_room());
    }
}
