//! The stub page: its fixed place in every stub's address space, its layout, and the
//! hand-assembled machine code (and the stub filter's program) it holds. See `stub.rs` for
//! how stubs are made from it.

use super::seccomp;

/// Address of the stub page. Guest memory lives below it ([`crate::Platform::max_user_address`]
/// is `STUB_ADDR`), so the guest can never map over the stub.
pub const STUB_ADDR: u64 = 0x7fff_fffe_0000;
/// Size of the stub page.
pub const STUB_SIZE: u64 = 0x1000;
/// Top of the x86_64 user address space (4-level paging, `TASK_SIZE_MAX`).
pub const USER_TOP: u64 = 0x7fff_ffff_f000;
/// The file descriptor under which the stub holds the sentry's memory file (its only fd).
pub const STUB_MEMFD: i32 = 3;

/// Offset of the injection site (`syscall; int3`) in the stub page.
pub(super) const INJECT_OFFSET: u64 = 0x80;
/// Where injected syscalls execute.
pub const INJECT_ADDR: u64 = STUB_ADDR + INJECT_OFFSET;
/// `rip` at the stop after an injected syscall (just past the `int3`).
pub(super) const INJECT_TRAP_RIP: u64 = INJECT_ADDR + 3;
/// `rip` at the first stop, the blob's leading `int3` (before it unmaps anything).
pub(super) const START_TRAP_RIP: u64 = STUB_ADDR + 1;
/// Offset just past the `int3` that ends the blob's start-up.
pub(super) const READY_OFFSET: u64 = 0x3a;
pub(super) const READY_TRAP_RIP: u64 = STUB_ADDR + READY_OFFSET;
/// Offset of the clone site (`syscall; test rax, rax; jz child; int3; child: pause loop`).
pub(super) const CLONE_OFFSET: u64 = 0xa0;
/// Where the injected `clone` executes.
pub const CLONE_ADDR: u64 = STUB_ADDR + CLONE_OFFSET;
/// `rip` at the parent's stop after the injected `clone` (just past its `int3`); also where
/// the child's `pause` loop starts.
pub const CLONE_TRAP_RIP: u64 = CLONE_ADDR + 8;

/// Offset of the `struct sock_fprog` describing [`seccomp::stub_filter`], which a new stub
/// installs from its own page (see [`attach_new_process`]).
pub(super) const FPROG_OFFSET: u64 = 0x100;
/// Address of that `sock_fprog` in every stub (the zygote's filter allows `seccomp` with
/// exactly this pointer).
pub const STUB_FPROG_ADDR: u64 = STUB_ADDR + FPROG_OFFSET;
/// Offset of the filter program the `sock_fprog` points to.
pub(super) const FILTER_OFFSET: u64 = FPROG_OFFSET + 16;

/// The blob's own failure path (a start-up `munmap` failed).
pub(super) const EXIT_BLOB: i32 = 127;

// ---------------------------------------------------------------------------------------
// The blob.

/// The stub page's machine code. It never touches a stack (there is none after start-up).
///
/// ```text
/// 0x00: int3                          ; start stop: the tracer unregisters rseq, sets options
/// 0x01: mov eax, SYS_munmap
///       xor edi, edi
///       mov rsi, STUB_ADDR
///       syscall                       ; munmap(0, STUB_ADDR)
///       test rax, rax
///       jnz fail
///       mov eax, SYS_munmap
///       mov rdi, STUB_ADDR+STUB_SIZE
///       mov rsi, USER_TOP-(STUB_ADDR+STUB_SIZE)
///       syscall                       ; munmap(everything above the stub page)
///       test rax, rax
///       jnz fail
/// 0x39: int3                          ; ready stop
/// fail: mov eax, SYS_exit_group
///       mov edi, 127
///       syscall
///       ud2
/// 0x80: syscall                       ; injection site
///       int3
/// 0xa0: syscall                       ; clone site (the injected clone)
///       test rax, rax
///       jz child                      ; the new thread continues at `child` ...
///       int3                          ; ... the first thread stops here with its tid
/// child:
/// 0xa8: mov eax, SYS_pause            ; and waits (all signals blocked) for its tracer
///       syscall
///       jmp child
/// 0x100: struct sock_fprog { len, .filter = STUB_ADDR + 0x110 }   ; data, never executed:
/// 0x110: the stub filter's instructions                           ; see `attach_new_process`
/// ```
///
/// The same clone site makes new stub *processes* when the tracer injects a fork into the
/// zygote: the child, too, has `rax == 0` and waits in the `pause` loop.
///
/// The new thread has no stack of its own (clone with stack 0 keeps the parent's, which
/// points at unmapped memory): none of this code uses one, and with every signal blocked no
/// signal frame is ever pushed before its tracer takes over.
pub(super) fn stub_blob() -> Vec<u8> {
    fn mov_eax(c: &mut Vec<u8>, imm: u32) {
        c.push(0xb8);
        c.extend_from_slice(&imm.to_le_bytes());
    }
    fn mov_r64(c: &mut Vec<u8>, opcode: u8, imm: u64) {
        c.extend_from_slice(&[0x48, opcode]);
        c.extend_from_slice(&imm.to_le_bytes());
    }
    const MOV_RDI: u8 = 0xbf;
    const MOV_RSI: u8 = 0xbe;
    const SYSCALL: [u8; 2] = [0x0f, 0x05];
    const TEST_RAX_RAX: [u8; 3] = [0x48, 0x85, 0xc0];
    const INT3: u8 = 0xcc;

    let mut c = Vec::with_capacity(INJECT_OFFSET as usize + 3);
    let mut fail_jumps = Vec::new();
    c.push(INT3);
    mov_eax(&mut c, libc::SYS_munmap as u32);
    c.extend_from_slice(&[0x31, 0xff]); // xor edi, edi
    mov_r64(&mut c, MOV_RSI, STUB_ADDR);
    c.extend_from_slice(&SYSCALL);
    c.extend_from_slice(&TEST_RAX_RAX);
    c.extend_from_slice(&[0x75, 0]); // jnz rel8 (patched)
    fail_jumps.push(c.len() - 1);
    mov_eax(&mut c, libc::SYS_munmap as u32);
    mov_r64(&mut c, MOV_RDI, STUB_ADDR + STUB_SIZE);
    mov_r64(&mut c, MOV_RSI, USER_TOP - (STUB_ADDR + STUB_SIZE));
    c.extend_from_slice(&SYSCALL);
    c.extend_from_slice(&TEST_RAX_RAX);
    c.extend_from_slice(&[0x75, 0]);
    fail_jumps.push(c.len() - 1);
    c.push(INT3);
    debug_assert_eq!(c.len() as u64, READY_OFFSET);
    let fail = c.len();
    for at in fail_jumps {
        c[at] = (fail - (at + 1)) as u8;
    }
    mov_eax(&mut c, libc::SYS_exit_group as u32);
    c.push(0xbf); // mov edi, imm32
    c.extend_from_slice(&(EXIT_BLOB as u32).to_le_bytes());
    c.extend_from_slice(&SYSCALL);
    c.extend_from_slice(&[0x0f, 0x0b]); // ud2
    c.resize(INJECT_OFFSET as usize, INT3);
    c.extend_from_slice(&SYSCALL);
    c.push(INT3);
    c.resize(CLONE_OFFSET as usize, INT3);
    c.extend_from_slice(&SYSCALL);
    c.extend_from_slice(&TEST_RAX_RAX);
    c.extend_from_slice(&[0x74, 0x01]); // jz child
    c.push(INT3);
    debug_assert_eq!(c.len() as u64, CLONE_TRAP_RIP - STUB_ADDR);
    mov_eax(&mut c, libc::SYS_pause as u32);
    c.extend_from_slice(&SYSCALL);
    c.extend_from_slice(&[0xeb, 0xf7]); // jmp child
    let filter = seccomp::stub_filter();
    c.resize(FPROG_OFFSET as usize, INT3);
    c.extend_from_slice(&(filter.len() as u16).to_le_bytes());
    c.resize(FPROG_OFFSET as usize + 8, 0);
    c.extend_from_slice(&(STUB_ADDR + FILTER_OFFSET).to_le_bytes());
    debug_assert_eq!(c.len() as u64, FILTER_OFFSET);
    for ins in &filter {
        c.extend_from_slice(&ins.code.to_le_bytes());
        c.push(ins.jt);
        c.push(ins.jf);
        c.extend_from_slice(&ins.k.to_le_bytes());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_layout_matches_the_constants() {
        let b = stub_blob();
        assert_eq!(b[0], 0xcc);
        assert_eq!(b[READY_OFFSET as usize - 1], 0xcc);
        assert_eq!(
            &b[INJECT_OFFSET as usize..INJECT_OFFSET as usize + 3],
            &[0x0f, 0x05, 0xcc]
        );
        // Clone site: syscall; test rax, rax; jz +1; int3; mov eax, SYS_pause; syscall;
        // jmp back to the mov.
        let clone = &b[CLONE_OFFSET as usize..CLONE_OFFSET as usize + 17];
        assert_eq!(
            &clone[..8],
            &[0x0f, 0x05, 0x48, 0x85, 0xc0, 0x74, 0x01, 0xcc]
        );
        assert_eq!(CLONE_ADDR + 8, CLONE_TRAP_RIP);
        assert_eq!(clone[8], 0xb8);
        assert_eq!(&clone[9..13], &(libc::SYS_pause as u32).to_le_bytes());
        assert_eq!(&clone[13..], &[0x0f, 0x05, 0xeb, 0xf7]);
        // The jmp lands on the mov: 0xb1 - 9 = 0xa8.
        assert_eq!(
            CLONE_OFFSET as usize + clone.len() - 9,
            CLONE_OFFSET as usize + 8
        );
        assert!(b.len() as u64 <= STUB_SIZE);
        // The stub filter's sock_fprog and program, as the kernel reads them.
        let filter = seccomp::stub_filter();
        let fprog = &b[FPROG_OFFSET as usize..FILTER_OFFSET as usize];
        assert_eq!(&fprog[..2], &(filter.len() as u16).to_le_bytes());
        assert_eq!(&fprog[8..], &(STUB_ADDR + FILTER_OFFSET).to_le_bytes());
        assert_eq!(b.len(), FILTER_OFFSET as usize + 8 * filter.len());
        let last = &b[b.len() - 8..];
        assert_eq!(&last[4..], &libc::SECCOMP_RET_ALLOW.to_le_bytes());
        // Both start-up `jnz` jump to the exit_group path right after the ready int3.
        for (i, w) in b.windows(2).enumerate().take(READY_OFFSET as usize) {
            if w[0] == 0x75 && i > 0 && b[i - 1] == 0xc0 {
                assert_eq!(i + 2 + w[1] as usize, READY_OFFSET as usize);
            }
        }
        assert_eq!(b[READY_OFFSET as usize], 0xb8);
    }
}
