//! Flag and constant values of the x86_64 Linux ABI, grouped by the call that takes them.

/// open(2) / openat(2) flags.
pub mod open {
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_RDONLY: u32 = 0o0;
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DSYNC: u32 = 0o10000;
    pub const O_ASYNC: u32 = 0o20000;
    pub const O_DIRECT: u32 = 0o40000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_NOATIME: u32 = 0o1000000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    pub const O_SYNC: u32 = 0o4010000;
    pub const O_PATH: u32 = 0o10000000;
    pub const O_TMPFILE: u32 = 0o20200000;
    /// The bit of O_TMPFILE besides O_DIRECTORY (Linux's `__O_TMPFILE`).
    pub const O_TMPFILE_BIT: u32 = 0o20000000;
}

/// `*at()` flags and the special directory fd.
pub mod at {
    pub const AT_FDCWD: i32 = -100;
    pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
    pub const AT_REMOVEDIR: u32 = 0x200;
    pub const AT_EACCESS: u32 = 0x200;
    pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
    pub const AT_NO_AUTOMOUNT: u32 = 0x800;
    pub const AT_EMPTY_PATH: u32 = 0x1000;
    pub const AT_STATX_SYNC_TYPE: u32 = 0x6000;
}

/// File type and permission bits of `st_mode`.
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
    pub const S_ISUID: u32 = 0o4000;
    pub const S_ISGID: u32 = 0o2000;
    pub const S_ISVTX: u32 = 0o1000;
}

/// `d_type` values of `linux_dirent64`.
pub mod dirent {
    pub const DT_UNKNOWN: u8 = 0;
    pub const DT_FIFO: u8 = 1;
    pub const DT_CHR: u8 = 2;
    pub const DT_DIR: u8 = 4;
    pub const DT_BLK: u8 = 6;
    pub const DT_REG: u8 = 8;
    pub const DT_LNK: u8 = 10;
    pub const DT_SOCK: u8 = 12;

    /// The `d_type` for a `st_mode`.
    pub fn from_mode(mode: u32) -> u8 {
        ((mode & super::mode::S_IFMT) >> 12) as u8
    }
}

/// lseek(2) whence.
pub mod seek {
    pub const SEEK_SET: u32 = 0;
    pub const SEEK_CUR: u32 = 1;
    pub const SEEK_END: u32 = 2;
    pub const SEEK_DATA: u32 = 3;
    pub const SEEK_HOLE: u32 = 4;
}

/// statx(2) mask bits.
pub mod statx {
    pub const STATX_TYPE: u32 = 0x1;
    pub const STATX_MODE: u32 = 0x2;
    pub const STATX_NLINK: u32 = 0x4;
    pub const STATX_UID: u32 = 0x8;
    pub const STATX_GID: u32 = 0x10;
    pub const STATX_ATIME: u32 = 0x20;
    pub const STATX_MTIME: u32 = 0x40;
    pub const STATX_CTIME: u32 = 0x80;
    pub const STATX_INO: u32 = 0x100;
    pub const STATX_SIZE: u32 = 0x200;
    pub const STATX_BLOCKS: u32 = 0x400;
    pub const STATX_BASIC_STATS: u32 = 0x7ff;
    pub const STATX_BTIME: u32 = 0x800;
    pub const STATX_MNT_ID: u32 = 0x1000;
}

/// fcntl(2) commands and fd flags.
pub mod fcntl {
    pub const F_DUPFD: u32 = 0;
    pub const F_GETFD: u32 = 1;
    pub const F_SETFD: u32 = 2;
    pub const F_GETFL: u32 = 3;
    pub const F_SETFL: u32 = 4;
    pub const F_GETLK: u32 = 5;
    pub const F_SETLK: u32 = 6;
    pub const F_SETLKW: u32 = 7;
    pub const F_SETOWN: u32 = 8;
    pub const F_GETOWN: u32 = 9;
    pub const F_DUPFD_CLOEXEC: u32 = 1030;
    pub const F_SETPIPE_SZ: u32 = 1031;
    pub const F_GETPIPE_SZ: u32 = 1032;
    pub const FD_CLOEXEC: u32 = 1;
    /// Open-file-description locks (owned by the description, not the process).
    pub const F_OFD_GETLK: u32 = 36;
    pub const F_OFD_SETLK: u32 = 37;
    pub const F_OFD_SETLKW: u32 = 38;
    /// memfd seals.
    pub const F_ADD_SEALS: u32 = 1033;
    pub const F_GET_SEALS: u32 = 1034;
    pub const F_SEAL_SEAL: u32 = 0x0001;
    pub const F_SEAL_SHRINK: u32 = 0x0002;
    pub const F_SEAL_GROW: u32 = 0x0004;
    pub const F_SEAL_WRITE: u32 = 0x0008;
    pub const F_SEAL_FUTURE_WRITE: u32 = 0x0010;
    /// `struct flock` `l_type` values.
    pub const F_RDLCK: i16 = 0;
    pub const F_WRLCK: i16 = 1;
    pub const F_UNLCK: i16 = 2;
}

/// flock(2) operations.
pub mod flock {
    pub const LOCK_SH: u32 = 1;
    pub const LOCK_EX: u32 = 2;
    pub const LOCK_NB: u32 = 4;
    pub const LOCK_UN: u32 = 8;
}

/// memfd_create(2) flags.
pub mod memfd {
    pub const MFD_CLOEXEC: u32 = 0x0001;
    pub const MFD_ALLOW_SEALING: u32 = 0x0002;
    pub const MFD_HUGETLB: u32 = 0x0004;
    pub const MFD_NOEXEC_SEAL: u32 = 0x0008;
    pub const MFD_EXEC: u32 = 0x0010;
    /// The longest name (without the "memfd:" prefix), excluding the NUL.
    pub const MFD_NAME_MAX: usize = 249;
}

/// splice(2), tee(2) and vmsplice(2) flags.
pub mod splice {
    pub const SPLICE_F_MOVE: u32 = 1;
    pub const SPLICE_F_NONBLOCK: u32 = 2;
    pub const SPLICE_F_MORE: u32 = 4;
    pub const SPLICE_F_GIFT: u32 = 8;
}

/// openat2(2) `open_how.resolve` flags.
pub mod resolve {
    pub const RESOLVE_NO_XDEV: u64 = 0x01;
    pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    pub const RESOLVE_BENEATH: u64 = 0x08;
    pub const RESOLVE_IN_ROOT: u64 = 0x10;
    pub const RESOLVE_CACHED: u64 = 0x20;
}

/// mmap(2), mprotect(2), madvise(2) and msync(2) values.
pub mod mman {
    pub const PROT_NONE: u32 = 0;
    pub const PROT_READ: u32 = 1;
    pub const PROT_WRITE: u32 = 2;
    pub const PROT_EXEC: u32 = 4;
    pub const PROT_GROWSDOWN: u32 = 0x0100_0000;
    pub const PROT_GROWSUP: u32 = 0x0200_0000;
    pub const MAP_SHARED: u32 = 0x01;
    pub const MAP_PRIVATE: u32 = 0x02;
    pub const MAP_SHARED_VALIDATE: u32 = 0x03;
    pub const MAP_TYPE: u32 = 0x0f;
    pub const MAP_FIXED: u32 = 0x10;
    pub const MAP_ANONYMOUS: u32 = 0x20;
    pub const MAP_32BIT: u32 = 0x40;
    pub const MAP_GROWSDOWN: u32 = 0x0100;
    pub const MAP_DENYWRITE: u32 = 0x0800;
    pub const MAP_EXECUTABLE: u32 = 0x1000;
    pub const MAP_LOCKED: u32 = 0x2000;
    pub const MAP_NORESERVE: u32 = 0x4000;
    pub const MAP_POPULATE: u32 = 0x8000;
    pub const MAP_NONBLOCK: u32 = 0x10000;
    pub const MAP_STACK: u32 = 0x20000;
    pub const MAP_HUGETLB: u32 = 0x40000;
    pub const MAP_SYNC: u32 = 0x80000;
    pub const MAP_FIXED_NOREPLACE: u32 = 0x100000;
    pub const MREMAP_MAYMOVE: u32 = 1;
    pub const MREMAP_FIXED: u32 = 2;
    pub const MREMAP_DONTUNMAP: u32 = 4;
    pub const MADV_NORMAL: u32 = 0;
    pub const MADV_RANDOM: u32 = 1;
    pub const MADV_SEQUENTIAL: u32 = 2;
    pub const MADV_WILLNEED: u32 = 3;
    pub const MADV_DONTNEED: u32 = 4;
    pub const MADV_FREE: u32 = 8;
    pub const MADV_REMOVE: u32 = 9;
    pub const MADV_DONTFORK: u32 = 10;
    pub const MADV_DOFORK: u32 = 11;
    pub const MADV_HUGEPAGE: u32 = 14;
    pub const MADV_WIPEONFORK: u32 = 18;
    pub const MADV_KEEPONFORK: u32 = 19;
    pub const MCL_CURRENT: u32 = 1;
    pub const MCL_FUTURE: u32 = 2;
    pub const MCL_ONFAULT: u32 = 4;
    pub const MLOCK_ONFAULT: u32 = 1;
    pub const MADV_NOHUGEPAGE: u32 = 15;
    pub const MS_ASYNC: u32 = 1;
    pub const MS_INVALIDATE: u32 = 2;
    pub const MS_SYNC: u32 = 4;
}

/// Clock ids.
pub mod clock {
    pub const CLOCK_REALTIME: i32 = 0;
    pub const CLOCK_MONOTONIC: i32 = 1;
    pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    pub const CLOCK_MONOTONIC_RAW: i32 = 4;
    pub const CLOCK_REALTIME_COARSE: i32 = 5;
    pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
    pub const CLOCK_BOOTTIME: i32 = 7;
    pub const CLOCK_REALTIME_ALARM: i32 = 8;
    pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
    pub const CLOCK_TAI: i32 = 11;
    pub const TIMER_ABSTIME: u32 = 1;
}

/// arch_prctl(2) codes.
pub mod arch_prctl {
    pub const ARCH_SET_GS: u32 = 0x1001;
    pub const ARCH_SET_FS: u32 = 0x1002;
    pub const ARCH_GET_FS: u32 = 0x1003;
    pub const ARCH_GET_GS: u32 = 0x1004;
    pub const ARCH_GET_CPUID: u32 = 0x1011;
    pub const ARCH_SET_CPUID: u32 = 0x1012;
}

/// prctl(2) options used so far.
pub mod prctl {
    pub const PR_SET_PDEATHSIG: u32 = 1;
    pub const PR_GET_PDEATHSIG: u32 = 2;
    pub const PR_GET_DUMPABLE: u32 = 3;
    pub const PR_SET_DUMPABLE: u32 = 4;
    pub const PR_GET_KEEPCAPS: u32 = 7;
    pub const PR_SET_KEEPCAPS: u32 = 8;
    pub const PR_SET_NAME: u32 = 15;
    pub const PR_GET_NAME: u32 = 16;
    pub const PR_CAPBSET_READ: u32 = 23;
    pub const PR_SET_CHILD_SUBREAPER: u32 = 36;
    pub const PR_GET_CHILD_SUBREAPER: u32 = 37;
    pub const PR_SET_NO_NEW_PRIVS: u32 = 38;
    pub const PR_GET_NO_NEW_PRIVS: u32 = 39;
    pub const PR_SET_VMA: u32 = 0x53564d41;
}

/// Resources of getrlimit(2)/prlimit64(2).
pub mod rlimit {
    pub const RLIMIT_CPU: u32 = 0;
    pub const RLIMIT_FSIZE: u32 = 1;
    pub const RLIMIT_DATA: u32 = 2;
    pub const RLIMIT_STACK: u32 = 3;
    pub const RLIMIT_CORE: u32 = 4;
    pub const RLIMIT_RSS: u32 = 5;
    pub const RLIMIT_NPROC: u32 = 6;
    pub const RLIMIT_NOFILE: u32 = 7;
    pub const RLIMIT_MEMLOCK: u32 = 8;
    pub const RLIMIT_AS: u32 = 9;
    pub const RLIMIT_LOCKS: u32 = 10;
    pub const RLIMIT_SIGPENDING: u32 = 11;
    pub const RLIMIT_MSGQUEUE: u32 = 12;
    pub const RLIMIT_NICE: u32 = 13;
    pub const RLIMIT_RTPRIO: u32 = 14;
    pub const RLIMIT_RTTIME: u32 = 15;
    pub const RLIM_NLIMITS: usize = 16;
    pub const RLIM_INFINITY: u64 = u64::MAX;
}

/// Signal numbers, sigaction flags and sigprocmask operations.
pub mod signal {
    pub const SIGHUP: u32 = 1;
    pub const SIGINT: u32 = 2;
    pub const SIGQUIT: u32 = 3;
    pub const SIGILL: u32 = 4;
    pub const SIGTRAP: u32 = 5;
    pub const SIGABRT: u32 = 6;
    pub const SIGBUS: u32 = 7;
    pub const SIGFPE: u32 = 8;
    pub const SIGKILL: u32 = 9;
    pub const SIGUSR1: u32 = 10;
    pub const SIGSEGV: u32 = 11;
    pub const SIGUSR2: u32 = 12;
    pub const SIGPIPE: u32 = 13;
    pub const SIGALRM: u32 = 14;
    pub const SIGTERM: u32 = 15;
    pub const SIGSTKFLT: u32 = 16;
    pub const SIGCHLD: u32 = 17;
    pub const SIGCONT: u32 = 18;
    pub const SIGSTOP: u32 = 19;
    pub const SIGTSTP: u32 = 20;
    pub const SIGTTIN: u32 = 21;
    pub const SIGTTOU: u32 = 22;
    pub const SIGURG: u32 = 23;
    pub const SIGXCPU: u32 = 24;
    pub const SIGXFSZ: u32 = 25;
    pub const SIGVTALRM: u32 = 26;
    pub const SIGPROF: u32 = 27;
    pub const SIGWINCH: u32 = 28;
    pub const SIGIO: u32 = 29;
    pub const SIGPWR: u32 = 30;
    pub const SIGSYS: u32 = 31;
    pub const SIGRTMIN: u32 = 32;
    pub const SIGRTMAX: u32 = 64;
    pub const NSIG: u32 = 64;

    pub const SIG_DFL: u64 = 0;
    pub const SIG_IGN: u64 = 1;
    pub const SIG_BLOCK: u32 = 0;
    pub const SIG_UNBLOCK: u32 = 1;
    pub const SIG_SETMASK: u32 = 2;

    pub const SA_NOCLDSTOP: u64 = 0x0000_0001;
    pub const SA_NOCLDWAIT: u64 = 0x0000_0002;
    pub const SA_SIGINFO: u64 = 0x0000_0004;
    pub const SA_RESTORER: u64 = 0x0400_0000;
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    pub const SA_RESTART: u64 = 0x1000_0000;
    pub const SA_NODEFER: u64 = 0x4000_0000;
    pub const SA_RESETHAND: u64 = 0x8000_0000;

    pub const SS_ONSTACK: i32 = 1;
    pub const SS_DISABLE: i32 = 2;
    pub const MINSIGSTKSZ: u64 = 2048;

    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    pub const BUS_ADRERR: i32 = 2;
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_TKILL: i32 = -6;

    /// The conventional name (`"SIGTERM"`) of signal `sig`.
    pub fn name(sig: u32) -> Option<&'static str> {
        const NAMES: [&str; 31] = [
            "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
            "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
            "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU",
            "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",
            "SIGPWR", "SIGSYS",
        ];
        NAMES.get((sig as usize).checked_sub(1)?).copied()
    }
}

/// ioctl(2) requests on terminals and files.
pub mod ioctl {
    pub const TCGETS: u32 = 0x5401;
    pub const TCSETS: u32 = 0x5402;
    pub const TCSETSW: u32 = 0x5403;
    pub const TCSETSF: u32 = 0x5404;
    pub const TCFLSH: u32 = 0x540B;
    pub const TIOCSCTTY: u32 = 0x540E;
    pub const TIOCGPGRP: u32 = 0x540F;
    pub const TIOCSPGRP: u32 = 0x5410;
    pub const TIOCOUTQ: u32 = 0x5411;
    pub const TIOCGWINSZ: u32 = 0x5413;
    pub const TIOCSWINSZ: u32 = 0x5414;
    pub const FIONREAD: u32 = 0x541B;
    pub const TIOCNOTTY: u32 = 0x5422;
    pub const TIOCGSID: u32 = 0x5429;
    pub const TIOCGPTN: u32 = 0x8004_5430;
    pub const TIOCSPTLCK: u32 = 0x4004_5431;
    pub const FIONCLEX: u32 = 0x5450;
    pub const FIOCLEX: u32 = 0x5451;
    pub const FIONBIO: u32 = 0x5421;
    pub const FIOASYNC: u32 = 0x5452;
    pub const TCSBRK: u32 = 0x5409;
    pub const TCXONC: u32 = 0x540A;
    pub const TIOCEXCL: u32 = 0x540C;
    pub const TIOCNXCL: u32 = 0x540D;
    pub const TIOCSTI: u32 = 0x5412;
    pub const TIOCINQ: u32 = FIONREAD;
    pub const TCSBRKP: u32 = 0x5425;
    pub const TIOCGDEV: u32 = 0x8004_5432;
    pub const TIOCGPTLCK: u32 = 0x8004_5439;
    pub const TIOCGPTPEER: u32 = 0x5441;
    pub const TIOCVHANGUP: u32 = 0x5437;
}

/// Terminal attributes (`struct termios` flags and `c_cc` indices, asm-generic values).
pub mod termios {
    // c_iflag
    pub const IGNBRK: u32 = 0o1;
    pub const BRKINT: u32 = 0o2;
    pub const ISTRIP: u32 = 0o40;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const ICRNL: u32 = 0o400;
    pub const IUCLC: u32 = 0o1000;
    pub const IXON: u32 = 0o2000;
    pub const IXANY: u32 = 0o4000;
    pub const IXOFF: u32 = 0o10000;
    pub const IMAXBEL: u32 = 0o20000;
    pub const IUTF8: u32 = 0o40000;
    // c_oflag
    pub const OPOST: u32 = 0o1;
    pub const OLCUC: u32 = 0o2;
    pub const ONLCR: u32 = 0o4;
    pub const OCRNL: u32 = 0o10;
    pub const ONOCR: u32 = 0o20;
    pub const ONLRET: u32 = 0o40;
    // c_cflag
    pub const B38400: u32 = 0o17;
    pub const CS8: u32 = 0o60;
    pub const CREAD: u32 = 0o200;
    pub const HUPCL: u32 = 0o2000;
    // c_lflag
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHONL: u32 = 0o100;
    pub const NOFLSH: u32 = 0o200;
    pub const TOSTOP: u32 = 0o400;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOPRT: u32 = 0o2000;
    pub const ECHOKE: u32 = 0o4000;
    pub const FLUSHO: u32 = 0o10000;
    pub const PENDIN: u32 = 0o40000;
    pub const IEXTEN: u32 = 0o100000;
    pub const EXTPROC: u32 = 0o200000;
    // c_cc indices
    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VSWTC: usize = 7;
    pub const VSTART: usize = 8;
    pub const VSTOP: usize = 9;
    pub const VSUSP: usize = 10;
    pub const VEOL: usize = 11;
    pub const VREPRINT: usize = 12;
    pub const VDISCARD: usize = 13;
    pub const VWERASE: usize = 14;
    pub const VLNEXT: usize = 15;
    pub const VEOL2: usize = 16;
    pub const NCCS: usize = 19;
    // TCFLSH arguments
    pub const TCIFLUSH: u64 = 0;
    pub const TCOFLUSH: u64 = 1;
    pub const TCIOFLUSH: u64 = 2;
    /// Linux's `INIT_C_CC`: the control characters of a new terminal.
    pub const INIT_C_CC: [u8; NCCS] = [3, 0o34, 0o177, 0o25, 4, 0, 1, 0, 0o21, 0o23, 0o32, 0, 0o22, 0o17, 0o27, 0o26, 0, 0, 0];
}

/// ELF auxiliary vector keys.
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_IGNORE: u64 = 1;
    pub const AT_EXECFD: u64 = 2;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_NOTELF: u64 = 10;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_BASE_PLATFORM: u64 = 24;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_SYSINFO_EHDR: u64 = 33;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}

/// getrandom(2) flags.
pub mod random {
    pub const GRND_NONBLOCK: u32 = 1;
    pub const GRND_RANDOM: u32 = 2;
    pub const GRND_INSECURE: u32 = 4;
}

/// clone(2) flags.
pub mod clone {
    pub const CSIGNAL: u64 = 0xff;
    pub const CLONE_VM: u64 = 0x100;
    pub const CLONE_FS: u64 = 0x200;
    pub const CLONE_FILES: u64 = 0x400;
    pub const CLONE_SIGHAND: u64 = 0x800;
    pub const CLONE_PIDFD: u64 = 0x1000;
    pub const CLONE_PTRACE: u64 = 0x2000;
    pub const CLONE_VFORK: u64 = 0x4000;
    pub const CLONE_PARENT: u64 = 0x8000;
    pub const CLONE_THREAD: u64 = 0x10000;
    pub const CLONE_NEWNS: u64 = 0x20000;
    pub const CLONE_SYSVSEM: u64 = 0x40000;
    pub const CLONE_SETTLS: u64 = 0x80000;
    pub const CLONE_PARENT_SETTID: u64 = 0x100000;
    pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
    pub const CLONE_DETACHED: u64 = 0x400000;
    pub const CLONE_UNTRACED: u64 = 0x800000;
    pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
    pub const CLONE_NEWCGROUP: u64 = 0x2000000;
    pub const CLONE_NEWUTS: u64 = 0x4000000;
    pub const CLONE_NEWIPC: u64 = 0x8000000;
    pub const CLONE_NEWUSER: u64 = 0x10000000;
    pub const CLONE_NEWPID: u64 = 0x20000000;
    pub const CLONE_NEWNET: u64 = 0x40000000;
    pub const CLONE_IO: u64 = 0x80000000;
}

/// wait4(2)/waitid(2) options.
pub mod wait {
    pub const WNOHANG: u32 = 1;
    pub const WUNTRACED: u32 = 2;
    pub const WSTOPPED: u32 = 2;
    pub const WEXITED: u32 = 4;
    pub const WCONTINUED: u32 = 8;
    pub const WNOWAIT: u32 = 0x0100_0000;
    pub const WNOTHREAD: u32 = 0x2000_0000;
    pub const WALL: u32 = 0x4000_0000;
    pub const WCLONE: u32 = 0x8000_0000;
}

/// mount(2) and umount2(2) flags.
pub mod mount {
    /// statfs `f_flags` bits for the per-mount flags (statvfs(3)'s ST_*).
    pub const ST_RDONLY: i64 = 1;
    pub const ST_NOSUID: i64 = 2;
    pub const ST_NODEV: i64 = 4;
    pub const ST_NOEXEC: i64 = 8;
    pub const ST_NOATIME: i64 = 1024;
    pub const ST_NODIRATIME: i64 = 2048;
    pub const ST_RELATIME: i64 = 4096;
    pub const MS_RDONLY: u64 = 1;
    pub const MS_NOSUID: u64 = 2;
    pub const MS_NODEV: u64 = 4;
    pub const MS_NOEXEC: u64 = 8;
    pub const MS_SYNCHRONOUS: u64 = 16;
    pub const MS_REMOUNT: u64 = 32;
    pub const MS_MANDLOCK: u64 = 64;
    pub const MS_DIRSYNC: u64 = 128;
    pub const MS_NOSYMFOLLOW: u64 = 256;
    pub const MS_NOATIME: u64 = 1024;
    pub const MS_NODIRATIME: u64 = 2048;
    pub const MS_BIND: u64 = 4096;
    pub const MS_MOVE: u64 = 8192;
    pub const MS_REC: u64 = 16384;
    pub const MS_SILENT: u64 = 32768;
    pub const MS_UNBINDABLE: u64 = 1 << 17;
    pub const MS_PRIVATE: u64 = 1 << 18;
    pub const MS_SLAVE: u64 = 1 << 19;
    pub const MS_SHARED: u64 = 1 << 20;
    pub const MS_RELATIME: u64 = 1 << 21;
    pub const MS_STRICTATIME: u64 = 1 << 24;
    pub const MS_LAZYTIME: u64 = 1 << 25;
    /// Old magic number in the top half of the flags (ignored).
    pub const MS_MGC_MSK: u64 = 0xffff_0000;
    pub const MS_MGC_VAL: u64 = 0xc0ed_0000;

    pub const MNT_FORCE: u32 = 1;
    pub const MNT_DETACH: u32 = 2;
    pub const MNT_EXPIRE: u32 = 4;
    pub const UMOUNT_NOFOLLOW: u32 = 8;
}

/// Filesystem magic numbers of statfs(2).
pub mod fsmagic {
    pub const TMPFS_MAGIC: i64 = 0x0102_1994;
    pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    pub const SYSFS_MAGIC: i64 = 0x6265_6572;
    pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    pub const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    pub const V9FS_MAGIC: i64 = 0x0102_1997;
}

/// Limits.
pub mod limits {
    pub const PATH_MAX: usize = 4096;
    pub const NAME_MAX: usize = 255;
    pub const PIPE_BUF: usize = 4096;
    pub const IOV_MAX: usize = 1024;
    pub const MAX_ARG_STRLEN: usize = 32 * 4096;
    pub const MAX_RW_COUNT: usize = 0x7fff_f000;
    pub const SYMLOOP_MAX: u32 = 40;
    pub const PAGE_SIZE: u64 = 4096;
}

/// poll(2) events.
pub mod poll {
    pub const POLLIN: u32 = 0x001;
    pub const POLLPRI: u32 = 0x002;
    pub const POLLOUT: u32 = 0x004;
    pub const POLLERR: u32 = 0x008;
    pub const POLLHUP: u32 = 0x010;
    pub const POLLNVAL: u32 = 0x020;
    pub const POLLRDNORM: u32 = 0x040;
    pub const POLLRDBAND: u32 = 0x080;
    pub const POLLWRNORM: u32 = 0x100;
    pub const POLLWRBAND: u32 = 0x200;
    pub const POLLMSG: u32 = 0x400;
    pub const POLLRDHUP: u32 = 0x2000;
}

/// futex(2) operations and flags.
pub mod futex {
    pub const FUTEX_WAIT: u32 = 0;
    pub const FUTEX_WAKE: u32 = 1;
    pub const FUTEX_FD: u32 = 2;
    pub const FUTEX_REQUEUE: u32 = 3;
    pub const FUTEX_CMP_REQUEUE: u32 = 4;
    pub const FUTEX_WAKE_OP: u32 = 5;
    pub const FUTEX_LOCK_PI: u32 = 6;
    pub const FUTEX_UNLOCK_PI: u32 = 7;
    pub const FUTEX_TRYLOCK_PI: u32 = 8;
    pub const FUTEX_WAIT_BITSET: u32 = 9;
    pub const FUTEX_WAKE_BITSET: u32 = 10;
    pub const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
    pub const FUTEX_CMP_REQUEUE_PI: u32 = 12;
    pub const FUTEX_LOCK_PI2: u32 = 13;
    pub const FUTEX_PRIVATE_FLAG: u32 = 128;
    pub const FUTEX_CLOCK_REALTIME: u32 = 256;
    pub const FUTEX_CMD_MASK: u32 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    pub const FUTEX_BITSET_MATCH_ANY: u32 = 0xffff_ffff;
    pub const FUTEX_WAITERS: u32 = 0x8000_0000;
    pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
}

/// Extended attributes (`<linux/xattr.h>`, `<linux/limits.h>`).
pub mod xattr {
    /// setxattr(2): fail if the attribute exists.
    pub const XATTR_CREATE: u32 = 0x1;
    /// setxattr(2): fail unless the attribute exists.
    pub const XATTR_REPLACE: u32 = 0x2;
    /// Longest attribute name.
    pub const XATTR_NAME_MAX: usize = 255;
    /// Largest attribute value.
    pub const XATTR_SIZE_MAX: usize = 65536;
    /// Largest list of names.
    pub const XATTR_LIST_MAX: usize = 65536;
    /// The namespace unprivileged programs may use on regular files and directories.
    pub const XATTR_USER_PREFIX: &[u8] = b"user.";
}

/// Capabilities (capabilities(7)): numbers, names, and the capget/capset ABI.
pub mod capability {
    pub const CAP_CHOWN: u32 = 0;
    pub const CAP_DAC_OVERRIDE: u32 = 1;
    pub const CAP_DAC_READ_SEARCH: u32 = 2;
    pub const CAP_FOWNER: u32 = 3;
    pub const CAP_FSETID: u32 = 4;
    pub const CAP_KILL: u32 = 5;
    pub const CAP_SETGID: u32 = 6;
    pub const CAP_SETUID: u32 = 7;
    pub const CAP_SETPCAP: u32 = 8;
    pub const CAP_SYS_ADMIN: u32 = 21;
    pub const CAP_SYS_RESOURCE: u32 = 24;
    pub const CAP_LINUX_IMMUTABLE: u32 = 9;
    pub const CAP_NET_BIND_SERVICE: u32 = 10;
    pub const CAP_NET_ADMIN: u32 = 12;
    pub const CAP_NET_RAW: u32 = 13;
    pub const CAP_SYS_CHROOT: u32 = 18;
    pub const CAP_MKNOD: u32 = 27;
    pub const CAP_MAC_OVERRIDE: u32 = 32;
    /// The highest capability number (CAP_CHECKPOINT_RESTORE).
    pub const CAP_LAST_CAP: u32 = 40;
    /// Names indexed by number.
    pub const CAP_NAMES: [&str; 41] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];
    /// Every capability.
    pub const CAP_FULL_SET: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;
    pub const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
    pub const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
    pub const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    pub const PR_CAPBSET_DROP: u32 = 24;
    pub const PR_CAP_AMBIENT: u32 = 47;
    pub const PR_CAP_AMBIENT_IS_SET: u64 = 1;
    pub const PR_CAP_AMBIENT_RAISE: u64 = 2;
    pub const PR_CAP_AMBIENT_LOWER: u64 = 3;
    pub const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
}

/// The OOM killer's per-process adjustment (/proc/PID/oom_score_adj).
pub mod oom {
    pub const OOM_SCORE_ADJ_MIN: i32 = -1000;
    pub const OOM_SCORE_ADJ_MAX: i32 = 1000;
}

/// Sockets (AF_UNIX): families, types, send/receive flags, SOL_SOCKET options and
/// control messages (x86_64 layout).
pub mod socket {
    pub const AF_UNSPEC: i32 = 0;
    pub const AF_UNIX: i32 = 1;
    pub const AF_INET: i32 = 2;
    pub const AF_INET6: i32 = 10;
    pub const AF_MAX: i32 = 46;
    pub const SOCK_STREAM: i32 = 1;
    pub const SOCK_DGRAM: i32 = 2;
    pub const SOCK_RAW: i32 = 3;
    pub const SOCK_SEQPACKET: i32 = 5;
    pub const SOCK_MAX: i32 = 11;
    pub const SOCK_TYPE_MASK: i32 = 0xf;

    pub const MSG_OOB: u32 = 0x1;
    pub const MSG_PEEK: u32 = 0x2;
    pub const MSG_CTRUNC: u32 = 0x8;
    pub const MSG_TRUNC: u32 = 0x20;
    pub const MSG_DONTWAIT: u32 = 0x40;
    pub const MSG_WAITALL: u32 = 0x100;
    pub const MSG_NOSIGNAL: u32 = 0x4000;
    pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

    pub const MSG_DONTROUTE: u32 = 0x4;
    pub const MSG_EOR: u32 = 0x80;
    pub const MSG_CONFIRM: u32 = 0x800;
    pub const MSG_ERRQUEUE: u32 = 0x2000;
    pub const MSG_MORE: u32 = 0x8000;
    pub const MSG_WAITFORONE: u32 = 0x10000;
    pub const MSG_FASTOPEN: u32 = 0x2000_0000;

    pub const AF_NETLINK: i32 = 16;
    pub const AF_PACKET: i32 = 17;

    pub const IPPROTO_IP: i32 = 0;
    pub const IPPROTO_ICMP: i32 = 1;
    pub const IPPROTO_TCP: i32 = 6;
    pub const IPPROTO_UDP: i32 = 17;
    pub const IPPROTO_IPV6: i32 = 41;
    pub const IPPROTO_ICMPV6: i32 = 58;
    pub const IPPROTO_RAW: i32 = 255;
    pub const SOL_IP: i32 = 0;
    pub const SOL_TCP: i32 = 6;
    pub const SOL_UDP: i32 = 17;
    pub const SOL_IPV6: i32 = 41;
    pub const SOL_ICMPV6: i32 = 58;
    pub const SOL_RAW: i32 = 255;
    pub const SOL_NETLINK: i32 = 270;

    pub const TCP_NODELAY: i32 = 1;
    pub const TCP_MAXSEG: i32 = 2;
    pub const TCP_CORK: i32 = 3;
    pub const TCP_KEEPIDLE: i32 = 4;
    pub const TCP_KEEPINTVL: i32 = 5;
    pub const TCP_KEEPCNT: i32 = 6;
    pub const TCP_SYNCNT: i32 = 7;
    pub const TCP_LINGER2: i32 = 8;
    pub const TCP_DEFER_ACCEPT: i32 = 9;
    pub const TCP_WINDOW_CLAMP: i32 = 10;
    pub const TCP_INFO: i32 = 11;
    pub const TCP_QUICKACK: i32 = 12;
    pub const TCP_CONGESTION: i32 = 13;
    pub const TCP_USER_TIMEOUT: i32 = 18;
    pub const TCP_FASTOPEN: i32 = 23;
    pub const TCP_NOTSENT_LOWAT: i32 = 25;

    pub const IP_TOS: i32 = 1;
    pub const IP_TTL: i32 = 2;
    pub const IP_HDRINCL: i32 = 3;
    pub const IP_OPTIONS: i32 = 4;
    pub const IP_RECVOPTS: i32 = 6;
    pub const IP_RETOPTS: i32 = 7;
    pub const IP_PKTINFO: i32 = 8;
    pub const IP_MTU_DISCOVER: i32 = 10;
    pub const IP_RECVERR: i32 = 11;
    pub const IP_RECVTTL: i32 = 12;
    pub const IP_RECVTOS: i32 = 13;
    pub const IP_MTU: i32 = 14;
    pub const IP_FREEBIND: i32 = 15;
    pub const IP_MULTICAST_IF: i32 = 32;
    pub const IP_MULTICAST_TTL: i32 = 33;
    pub const IP_MULTICAST_LOOP: i32 = 34;
    pub const IP_ADD_MEMBERSHIP: i32 = 35;
    pub const IP_DROP_MEMBERSHIP: i32 = 36;
    pub const IP_BIND_ADDRESS_NO_PORT: i32 = 24;

    pub const IPV6_UNICAST_HOPS: i32 = 16;
    pub const IPV6_MULTICAST_IF: i32 = 17;
    pub const IPV6_MULTICAST_HOPS: i32 = 18;
    pub const IPV6_MULTICAST_LOOP: i32 = 19;
    pub const IPV6_V6ONLY: i32 = 26;
    pub const IPV6_RECVPKTINFO: i32 = 49;
    pub const IPV6_PKTINFO: i32 = 50;
    pub const IPV6_RECVHOPLIMIT: i32 = 51;
    pub const IPV6_HOPLIMIT: i32 = 52;
    pub const IPV6_TCLASS: i32 = 67;
    pub const ICMP_FILTER: i32 = 1;
    pub const IP_RECVORIGDSTADDR: i32 = 20;
    pub const IP_MULTICAST_ALL: i32 = 49;
    pub const IPV6_ADD_MEMBERSHIP: i32 = 20;
    pub const IPV6_DROP_MEMBERSHIP: i32 = 21;
    pub const IPV6_MTU_DISCOVER: i32 = 23;
    pub const IPV6_MTU: i32 = 24;
    pub const IPV6_RECVERR: i32 = 25;
    pub const IPV6_RECVTCLASS: i32 = 66;
    pub const TCP_FASTOPEN_CONNECT: i32 = 30;
    pub const UDP_CORK: i32 = 1;
    pub const UDP_SEGMENT: i32 = 103;
    pub const UDP_GRO: i32 = 104;
    /// `sizeof(struct linger)`.
    pub const LINGER_SIZE: usize = 8;
    /// `TCP_CA_NAME_MAX`: the longest congestion-control name.
    pub const TCP_CA_NAME_MAX: usize = 16;
    /// `sizeof(struct in_pktinfo)`.
    pub const IN_PKTINFO_SIZE: usize = 12;
    /// `sizeof(struct in6_pktinfo)`.
    pub const IN6_PKTINFO_SIZE: usize = 20;
    /// SIOCATMARK (`<linux/sockios.h>`).
    pub const SIOCATMARK: u32 = 0x8905;

    pub const SO_REUSEPORT: i32 = 15;
    pub const SO_LINGER: i32 = 13;
    pub const SO_PRIORITY: i32 = 12;
    pub const SO_RCVLOWAT: i32 = 18;
    pub const SO_SNDLOWAT: i32 = 19;
    pub const SO_BINDTODEVICE: i32 = 25;
    pub const SO_TIMESTAMP: i32 = 29;
    pub const SO_SNDBUFFORCE: i32 = 32;
    pub const SO_RCVBUFFORCE: i32 = 33;
    pub const SO_MARK: i32 = 36;
    pub const SO_TIMESTAMPNS: i32 = 35;
    pub const SO_RXQ_OVFL: i32 = 40;
    pub const SO_BUSY_POLL: i32 = 46;
    pub const SO_INCOMING_CPU: i32 = 49;
    pub const SO_COOKIE: i32 = 57;
    pub const SO_ZEROCOPY: i32 = 60;

    /// `sizeof(struct sockaddr_in)`.
    pub const SOCKADDR_IN: u32 = 16;
    /// `sizeof(struct sockaddr_in6)`.
    pub const SOCKADDR_IN6: u32 = 28;
    /// `sizeof(struct sockaddr_nl)`.
    pub const SOCKADDR_NL: u32 = 12;
    /// `sizeof(struct mmsghdr)` (msghdr + `unsigned int msg_len`, padded).
    pub const MMSGHDR_SIZE: usize = 64;

    pub const SOL_SOCKET: i32 = 1;
    pub const SO_DEBUG: i32 = 1;
    pub const SO_REUSEADDR: i32 = 2;
    pub const SO_TYPE: i32 = 3;
    pub const SO_ERROR: i32 = 4;
    pub const SO_DONTROUTE: i32 = 5;
    pub const SO_BROADCAST: i32 = 6;
    pub const SO_SNDBUF: i32 = 7;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_KEEPALIVE: i32 = 9;
    pub const SO_OOBINLINE: i32 = 10;
    pub const SO_PASSCRED: i32 = 16;
    pub const SO_PEERCRED: i32 = 17;
    pub const SO_RCVTIMEO: i32 = 20;
    pub const SO_SNDTIMEO: i32 = 21;
    pub const SO_ACCEPTCONN: i32 = 30;
    pub const SO_PASSSEC: i32 = 34;
    pub const SO_PROTOCOL: i32 = 38;
    pub const SO_DOMAIN: i32 = 39;

    pub const SCM_RIGHTS: i32 = 1;
    pub const SCM_CREDENTIALS: i32 = 2;
    /// Most files one SCM_RIGHTS message may carry.
    pub const SCM_MAX_FD: usize = 253;

    /// `sizeof(struct sockaddr_storage)`.
    pub const SOCKADDR_STORAGE: u32 = 128;
    /// `sizeof(struct sockaddr_un)`.
    pub const SOCKADDR_UN: u32 = 110;
    /// `sizeof(struct msghdr)`.
    pub const MSGHDR_SIZE: usize = 56;
    /// `sizeof(struct cmsghdr)` (`cmsg_len: size_t`, `cmsg_level`, `cmsg_type`).
    pub const CMSGHDR_SIZE: usize = 16;
    /// `sizeof(struct ucred)` (pid, uid, gid).
    pub const UCRED_SIZE: usize = 12;

    /// `CMSG_ALIGN`: control message parts are aligned to `size_t`.
    pub const fn cmsg_align(len: usize) -> usize {
        (len + 7) & !7
    }
}

/// Network interface flags and ioctls (`<net/if.h>`, `<linux/sockios.h>`).
pub mod net_if {
    pub const IFF_UP: u32 = 0x1;
    pub const IFF_BROADCAST: u32 = 0x2;
    pub const IFF_LOOPBACK: u32 = 0x8;
    pub const IFF_POINTOPOINT: u32 = 0x10;
    pub const IFF_RUNNING: u32 = 0x40;
    pub const IFF_NOARP: u32 = 0x80;
    pub const IFF_PROMISC: u32 = 0x100;
    pub const IFF_MULTICAST: u32 = 0x1000;
    pub const IFF_LOWER_UP: u32 = 0x10000;
    /// `IFNAMSIZ`.
    pub const IFNAMSIZ: usize = 16;
    /// `sizeof(struct ifreq)`.
    pub const IFREQ_SIZE: usize = 40;

    pub const SIOCGIFNAME: u32 = 0x8910;
    pub const SIOCGIFCONF: u32 = 0x8912;
    pub const SIOCGIFFLAGS: u32 = 0x8913;
    pub const SIOCSIFFLAGS: u32 = 0x8914;
    pub const SIOCGIFADDR: u32 = 0x8915;
    pub const SIOCGIFDSTADDR: u32 = 0x8917;
    pub const SIOCGIFBRDADDR: u32 = 0x8919;
    pub const SIOCGIFNETMASK: u32 = 0x891b;
    pub const SIOCGIFMETRIC: u32 = 0x891d;
    pub const SIOCGIFMTU: u32 = 0x8921;
    pub const SIOCGIFHWADDR: u32 = 0x8927;
    pub const SIOCGIFINDEX: u32 = 0x8933;
    pub const SIOCGIFTXQLEN: u32 = 0x8942;
    pub const SIOCETHTOOL: u32 = 0x8946;
    pub const SIOCINQ: u32 = 0x541b;
    pub const SIOCOUTQ: u32 = 0x5411;
    pub const SIOCOUTQNSD: u32 = 0x894b;
    pub const SIOCGSTAMP: u32 = 0x8906;
    pub const SIOCGIFMAP: u32 = 0x8970;
    pub const SIOCGIFPFLAGS: u32 = 0x8935;
    /// Requests that change interfaces or routes (refused in the sandbox).
    pub const SIOCSETTERS: &[u32] = &[
        0x890b, 0x890c, 0x8914, 0x8916, 0x8918, 0x891a, 0x891c, 0x891e, 0x8922,
        0x8923, 0x8924, 0x8931, 0x8932, 0x8934, 0x8936, 0x8937, 0x8943, 0x8953, 0x8955, 0x8971,
    ];
    pub const ARPHRD_ETHER: u16 = 1;
    pub const ARPHRD_LOOPBACK: u16 = 772;
}
