//! x86_64 syscall numbers (0..=462) and their names.
//!
//! Generated from the kernel's `arch/x86/entry/syscalls/syscall_64.tbl` (common and 64-bit
//! entries); the numbers 335..=423 are unused on x86_64.

/// The highest syscall number this ABI table knows.
pub const MAX_NR: usize = 462;

pub const READ: usize = 0;
pub const WRITE: usize = 1;
pub const OPEN: usize = 2;
pub const CLOSE: usize = 3;
pub const STAT: usize = 4;
pub const FSTAT: usize = 5;
pub const LSTAT: usize = 6;
pub const POLL: usize = 7;
pub const LSEEK: usize = 8;
pub const MMAP: usize = 9;
pub const MPROTECT: usize = 10;
pub const MUNMAP: usize = 11;
pub const BRK: usize = 12;
pub const RT_SIGACTION: usize = 13;
pub const RT_SIGPROCMASK: usize = 14;
pub const RT_SIGRETURN: usize = 15;
pub const IOCTL: usize = 16;
pub const PREAD64: usize = 17;
pub const PWRITE64: usize = 18;
pub const READV: usize = 19;
pub const WRITEV: usize = 20;
pub const ACCESS: usize = 21;
pub const PIPE: usize = 22;
pub const SELECT: usize = 23;
pub const SCHED_YIELD: usize = 24;
pub const MREMAP: usize = 25;
pub const MSYNC: usize = 26;
pub const MINCORE: usize = 27;
pub const MADVISE: usize = 28;
pub const SHMGET: usize = 29;
pub const SHMAT: usize = 30;
pub const SHMCTL: usize = 31;
pub const DUP: usize = 32;
pub const DUP2: usize = 33;
pub const PAUSE: usize = 34;
pub const NANOSLEEP: usize = 35;
pub const GETITIMER: usize = 36;
pub const ALARM: usize = 37;
pub const SETITIMER: usize = 38;
pub const GETPID: usize = 39;
pub const SENDFILE: usize = 40;
pub const SOCKET: usize = 41;
pub const CONNECT: usize = 42;
pub const ACCEPT: usize = 43;
pub const SENDTO: usize = 44;
pub const RECVFROM: usize = 45;
pub const SENDMSG: usize = 46;
pub const RECVMSG: usize = 47;
pub const SHUTDOWN: usize = 48;
pub const BIND: usize = 49;
pub const LISTEN: usize = 50;
pub const GETSOCKNAME: usize = 51;
pub const GETPEERNAME: usize = 52;
pub const SOCKETPAIR: usize = 53;
pub const SETSOCKOPT: usize = 54;
pub const GETSOCKOPT: usize = 55;
pub const CLONE: usize = 56;
pub const FORK: usize = 57;
pub const VFORK: usize = 58;
pub const EXECVE: usize = 59;
pub const EXIT: usize = 60;
pub const WAIT4: usize = 61;
pub const KILL: usize = 62;
pub const UNAME: usize = 63;
pub const SEMGET: usize = 64;
pub const SEMOP: usize = 65;
pub const SEMCTL: usize = 66;
pub const SHMDT: usize = 67;
pub const MSGGET: usize = 68;
pub const MSGSND: usize = 69;
pub const MSGRCV: usize = 70;
pub const MSGCTL: usize = 71;
pub const FCNTL: usize = 72;
pub const FLOCK: usize = 73;
pub const FSYNC: usize = 74;
pub const FDATASYNC: usize = 75;
pub const TRUNCATE: usize = 76;
pub const FTRUNCATE: usize = 77;
pub const GETDENTS: usize = 78;
pub const GETCWD: usize = 79;
pub const CHDIR: usize = 80;
pub const FCHDIR: usize = 81;
pub const RENAME: usize = 82;
pub const MKDIR: usize = 83;
pub const RMDIR: usize = 84;
pub const CREAT: usize = 85;
pub const LINK: usize = 86;
pub const UNLINK: usize = 87;
pub const SYMLINK: usize = 88;
pub const READLINK: usize = 89;
pub const CHMOD: usize = 90;
pub const FCHMOD: usize = 91;
pub const CHOWN: usize = 92;
pub const FCHOWN: usize = 93;
pub const LCHOWN: usize = 94;
pub const UMASK: usize = 95;
pub const GETTIMEOFDAY: usize = 96;
pub const GETRLIMIT: usize = 97;
pub const GETRUSAGE: usize = 98;
pub const SYSINFO: usize = 99;
pub const TIMES: usize = 100;
pub const PTRACE: usize = 101;
pub const GETUID: usize = 102;
pub const SYSLOG: usize = 103;
pub const GETGID: usize = 104;
pub const SETUID: usize = 105;
pub const SETGID: usize = 106;
pub const GETEUID: usize = 107;
pub const GETEGID: usize = 108;
pub const SETPGID: usize = 109;
pub const GETPPID: usize = 110;
pub const GETPGRP: usize = 111;
pub const SETSID: usize = 112;
pub const SETREUID: usize = 113;
pub const SETREGID: usize = 114;
pub const GETGROUPS: usize = 115;
pub const SETGROUPS: usize = 116;
pub const SETRESUID: usize = 117;
pub const GETRESUID: usize = 118;
pub const SETRESGID: usize = 119;
pub const GETRESGID: usize = 120;
pub const GETPGID: usize = 121;
pub const SETFSUID: usize = 122;
pub const SETFSGID: usize = 123;
pub const GETSID: usize = 124;
pub const CAPGET: usize = 125;
pub const CAPSET: usize = 126;
pub const RT_SIGPENDING: usize = 127;
pub const RT_SIGTIMEDWAIT: usize = 128;
pub const RT_SIGQUEUEINFO: usize = 129;
pub const RT_SIGSUSPEND: usize = 130;
pub const SIGALTSTACK: usize = 131;
pub const UTIME: usize = 132;
pub const MKNOD: usize = 133;
pub const USELIB: usize = 134;
pub const PERSONALITY: usize = 135;
pub const USTAT: usize = 136;
pub const STATFS: usize = 137;
pub const FSTATFS: usize = 138;
pub const SYSFS: usize = 139;
pub const GETPRIORITY: usize = 140;
pub const SETPRIORITY: usize = 141;
pub const SCHED_SETPARAM: usize = 142;
pub const SCHED_GETPARAM: usize = 143;
pub const SCHED_SETSCHEDULER: usize = 144;
pub const SCHED_GETSCHEDULER: usize = 145;
pub const SCHED_GET_PRIORITY_MAX: usize = 146;
pub const SCHED_GET_PRIORITY_MIN: usize = 147;
pub const SCHED_RR_GET_INTERVAL: usize = 148;
pub const MLOCK: usize = 149;
pub const MUNLOCK: usize = 150;
pub const MLOCKALL: usize = 151;
pub const MUNLOCKALL: usize = 152;
pub const VHANGUP: usize = 153;
pub const MODIFY_LDT: usize = 154;
pub const PIVOT_ROOT: usize = 155;
pub const _SYSCTL: usize = 156;
pub const PRCTL: usize = 157;
pub const ARCH_PRCTL: usize = 158;
pub const ADJTIMEX: usize = 159;
pub const SETRLIMIT: usize = 160;
pub const CHROOT: usize = 161;
pub const SYNC: usize = 162;
pub const ACCT: usize = 163;
pub const SETTIMEOFDAY: usize = 164;
pub const MOUNT: usize = 165;
pub const UMOUNT2: usize = 166;
pub const SWAPON: usize = 167;
pub const SWAPOFF: usize = 168;
pub const REBOOT: usize = 169;
pub const SETHOSTNAME: usize = 170;
pub const SETDOMAINNAME: usize = 171;
pub const IOPL: usize = 172;
pub const IOPERM: usize = 173;
pub const CREATE_MODULE: usize = 174;
pub const INIT_MODULE: usize = 175;
pub const DELETE_MODULE: usize = 176;
pub const GET_KERNEL_SYMS: usize = 177;
pub const QUERY_MODULE: usize = 178;
pub const QUOTACTL: usize = 179;
pub const NFSSERVCTL: usize = 180;
pub const GETPMSG: usize = 181;
pub const PUTPMSG: usize = 182;
pub const AFS_SYSCALL: usize = 183;
pub const TUXCALL: usize = 184;
pub const SECURITY: usize = 185;
pub const GETTID: usize = 186;
pub const READAHEAD: usize = 187;
pub const SETXATTR: usize = 188;
pub const LSETXATTR: usize = 189;
pub const FSETXATTR: usize = 190;
pub const GETXATTR: usize = 191;
pub const LGETXATTR: usize = 192;
pub const FGETXATTR: usize = 193;
pub const LISTXATTR: usize = 194;
pub const LLISTXATTR: usize = 195;
pub const FLISTXATTR: usize = 196;
pub const REMOVEXATTR: usize = 197;
pub const LREMOVEXATTR: usize = 198;
pub const FREMOVEXATTR: usize = 199;
pub const TKILL: usize = 200;
pub const TIME: usize = 201;
pub const FUTEX: usize = 202;
pub const SCHED_SETAFFINITY: usize = 203;
pub const SCHED_GETAFFINITY: usize = 204;
pub const SET_THREAD_AREA: usize = 205;
pub const IO_SETUP: usize = 206;
pub const IO_DESTROY: usize = 207;
pub const IO_GETEVENTS: usize = 208;
pub const IO_SUBMIT: usize = 209;
pub const IO_CANCEL: usize = 210;
pub const GET_THREAD_AREA: usize = 211;
pub const LOOKUP_DCOOKIE: usize = 212;
pub const EPOLL_CREATE: usize = 213;
pub const EPOLL_CTL_OLD: usize = 214;
pub const EPOLL_WAIT_OLD: usize = 215;
pub const REMAP_FILE_PAGES: usize = 216;
pub const GETDENTS64: usize = 217;
pub const SET_TID_ADDRESS: usize = 218;
pub const RESTART_SYSCALL: usize = 219;
pub const SEMTIMEDOP: usize = 220;
pub const FADVISE64: usize = 221;
pub const TIMER_CREATE: usize = 222;
pub const TIMER_SETTIME: usize = 223;
pub const TIMER_GETTIME: usize = 224;
pub const TIMER_GETOVERRUN: usize = 225;
pub const TIMER_DELETE: usize = 226;
pub const CLOCK_SETTIME: usize = 227;
pub const CLOCK_GETTIME: usize = 228;
pub const CLOCK_GETRES: usize = 229;
pub const CLOCK_NANOSLEEP: usize = 230;
pub const EXIT_GROUP: usize = 231;
pub const EPOLL_WAIT: usize = 232;
pub const EPOLL_CTL: usize = 233;
pub const TGKILL: usize = 234;
pub const UTIMES: usize = 235;
pub const VSERVER: usize = 236;
pub const MBIND: usize = 237;
pub const SET_MEMPOLICY: usize = 238;
pub const GET_MEMPOLICY: usize = 239;
pub const MQ_OPEN: usize = 240;
pub const MQ_UNLINK: usize = 241;
pub const MQ_TIMEDSEND: usize = 242;
pub const MQ_TIMEDRECEIVE: usize = 243;
pub const MQ_NOTIFY: usize = 244;
pub const MQ_GETSETATTR: usize = 245;
pub const KEXEC_LOAD: usize = 246;
pub const WAITID: usize = 247;
pub const ADD_KEY: usize = 248;
pub const REQUEST_KEY: usize = 249;
pub const KEYCTL: usize = 250;
pub const IOPRIO_SET: usize = 251;
pub const IOPRIO_GET: usize = 252;
pub const INOTIFY_INIT: usize = 253;
pub const INOTIFY_ADD_WATCH: usize = 254;
pub const INOTIFY_RM_WATCH: usize = 255;
pub const MIGRATE_PAGES: usize = 256;
pub const OPENAT: usize = 257;
pub const MKDIRAT: usize = 258;
pub const MKNODAT: usize = 259;
pub const FCHOWNAT: usize = 260;
pub const FUTIMESAT: usize = 261;
pub const NEWFSTATAT: usize = 262;
pub const UNLINKAT: usize = 263;
pub const RENAMEAT: usize = 264;
pub const LINKAT: usize = 265;
pub const SYMLINKAT: usize = 266;
pub const READLINKAT: usize = 267;
pub const FCHMODAT: usize = 268;
pub const FACCESSAT: usize = 269;
pub const PSELECT6: usize = 270;
pub const PPOLL: usize = 271;
pub const UNSHARE: usize = 272;
pub const SET_ROBUST_LIST: usize = 273;
pub const GET_ROBUST_LIST: usize = 274;
pub const SPLICE: usize = 275;
pub const TEE: usize = 276;
pub const SYNC_FILE_RANGE: usize = 277;
pub const VMSPLICE: usize = 278;
pub const MOVE_PAGES: usize = 279;
pub const UTIMENSAT: usize = 280;
pub const EPOLL_PWAIT: usize = 281;
pub const SIGNALFD: usize = 282;
pub const TIMERFD_CREATE: usize = 283;
pub const EVENTFD: usize = 284;
pub const FALLOCATE: usize = 285;
pub const TIMERFD_SETTIME: usize = 286;
pub const TIMERFD_GETTIME: usize = 287;
pub const ACCEPT4: usize = 288;
pub const SIGNALFD4: usize = 289;
pub const EVENTFD2: usize = 290;
pub const EPOLL_CREATE1: usize = 291;
pub const DUP3: usize = 292;
pub const PIPE2: usize = 293;
pub const INOTIFY_INIT1: usize = 294;
pub const PREADV: usize = 295;
pub const PWRITEV: usize = 296;
pub const RT_TGSIGQUEUEINFO: usize = 297;
pub const PERF_EVENT_OPEN: usize = 298;
pub const RECVMMSG: usize = 299;
pub const FANOTIFY_INIT: usize = 300;
pub const FANOTIFY_MARK: usize = 301;
pub const PRLIMIT64: usize = 302;
pub const NAME_TO_HANDLE_AT: usize = 303;
pub const OPEN_BY_HANDLE_AT: usize = 304;
pub const CLOCK_ADJTIME: usize = 305;
pub const SYNCFS: usize = 306;
pub const SENDMMSG: usize = 307;
pub const SETNS: usize = 308;
pub const GETCPU: usize = 309;
pub const PROCESS_VM_READV: usize = 310;
pub const PROCESS_VM_WRITEV: usize = 311;
pub const KCMP: usize = 312;
pub const FINIT_MODULE: usize = 313;
pub const SCHED_SETATTR: usize = 314;
pub const SCHED_GETATTR: usize = 315;
pub const RENAMEAT2: usize = 316;
pub const SECCOMP: usize = 317;
pub const GETRANDOM: usize = 318;
pub const MEMFD_CREATE: usize = 319;
pub const KEXEC_FILE_LOAD: usize = 320;
pub const BPF: usize = 321;
pub const EXECVEAT: usize = 322;
pub const USERFAULTFD: usize = 323;
pub const MEMBARRIER: usize = 324;
pub const MLOCK2: usize = 325;
pub const COPY_FILE_RANGE: usize = 326;
pub const PREADV2: usize = 327;
pub const PWRITEV2: usize = 328;
pub const PKEY_MPROTECT: usize = 329;
pub const PKEY_ALLOC: usize = 330;
pub const PKEY_FREE: usize = 331;
pub const STATX: usize = 332;
pub const IO_PGETEVENTS: usize = 333;
pub const RSEQ: usize = 334;
pub const PIDFD_SEND_SIGNAL: usize = 424;
pub const IO_URING_SETUP: usize = 425;
pub const IO_URING_ENTER: usize = 426;
pub const IO_URING_REGISTER: usize = 427;
pub const OPEN_TREE: usize = 428;
pub const MOVE_MOUNT: usize = 429;
pub const FSOPEN: usize = 430;
pub const FSCONFIG: usize = 431;
pub const FSMOUNT: usize = 432;
pub const FSPICK: usize = 433;
pub const PIDFD_OPEN: usize = 434;
pub const CLONE3: usize = 435;
pub const CLOSE_RANGE: usize = 436;
pub const OPENAT2: usize = 437;
pub const PIDFD_GETFD: usize = 438;
pub const FACCESSAT2: usize = 439;
pub const PROCESS_MADVISE: usize = 440;
pub const EPOLL_PWAIT2: usize = 441;
pub const MOUNT_SETATTR: usize = 442;
pub const QUOTACTL_FD: usize = 443;
pub const LANDLOCK_CREATE_RULESET: usize = 444;
pub const LANDLOCK_ADD_RULE: usize = 445;
pub const LANDLOCK_RESTRICT_SELF: usize = 446;
pub const MEMFD_SECRET: usize = 447;
pub const PROCESS_MRELEASE: usize = 448;
pub const FUTEX_WAITV: usize = 449;
pub const SET_MEMPOLICY_HOME_NODE: usize = 450;
pub const CACHESTAT: usize = 451;
pub const FCHMODAT2: usize = 452;
pub const MAP_SHADOW_STACK: usize = 453;
pub const FUTEX_WAKE: usize = 454;
pub const FUTEX_WAIT: usize = 455;
pub const FUTEX_REQUEUE: usize = 456;
pub const STATMOUNT: usize = 457;
pub const LISTMOUNT: usize = 458;
pub const LSM_GET_SELF_ATTR: usize = 459;
pub const LSM_SET_SELF_ATTR: usize = 460;
pub const LSM_LIST_MODULES: usize = 461;
pub const MSEAL: usize = 462;

/// Names indexed by number; `None` for unused numbers.
pub static NAMES: [Option<&str>; MAX_NR + 1] = [
    Some("read"),
    Some("write"),
    Some("open"),
    Some("close"),
    Some("stat"),
    Some("fstat"),
    Some("lstat"),
    Some("poll"),
    Some("lseek"),
    Some("mmap"),
    Some("mprotect"),
    Some("munmap"),
    Some("brk"),
    Some("rt_sigaction"),
    Some("rt_sigprocmask"),
    Some("rt_sigreturn"),
    Some("ioctl"),
    Some("pread64"),
    Some("pwrite64"),
    Some("readv"),
    Some("writev"),
    Some("access"),
    Some("pipe"),
    Some("select"),
    Some("sched_yield"),
    Some("mremap"),
    Some("msync"),
    Some("mincore"),
    Some("madvise"),
    Some("shmget"),
    Some("shmat"),
    Some("shmctl"),
    Some("dup"),
    Some("dup2"),
    Some("pause"),
    Some("nanosleep"),
    Some("getitimer"),
    Some("alarm"),
    Some("setitimer"),
    Some("getpid"),
    Some("sendfile"),
    Some("socket"),
    Some("connect"),
    Some("accept"),
    Some("sendto"),
    Some("recvfrom"),
    Some("sendmsg"),
    Some("recvmsg"),
    Some("shutdown"),
    Some("bind"),
    Some("listen"),
    Some("getsockname"),
    Some("getpeername"),
    Some("socketpair"),
    Some("setsockopt"),
    Some("getsockopt"),
    Some("clone"),
    Some("fork"),
    Some("vfork"),
    Some("execve"),
    Some("exit"),
    Some("wait4"),
    Some("kill"),
    Some("uname"),
    Some("semget"),
    Some("semop"),
    Some("semctl"),
    Some("shmdt"),
    Some("msgget"),
    Some("msgsnd"),
    Some("msgrcv"),
    Some("msgctl"),
    Some("fcntl"),
    Some("flock"),
    Some("fsync"),
    Some("fdatasync"),
    Some("truncate"),
    Some("ftruncate"),
    Some("getdents"),
    Some("getcwd"),
    Some("chdir"),
    Some("fchdir"),
    Some("rename"),
    Some("mkdir"),
    Some("rmdir"),
    Some("creat"),
    Some("link"),
    Some("unlink"),
    Some("symlink"),
    Some("readlink"),
    Some("chmod"),
    Some("fchmod"),
    Some("chown"),
    Some("fchown"),
    Some("lchown"),
    Some("umask"),
    Some("gettimeofday"),
    Some("getrlimit"),
    Some("getrusage"),
    Some("sysinfo"),
    Some("times"),
    Some("ptrace"),
    Some("getuid"),
    Some("syslog"),
    Some("getgid"),
    Some("setuid"),
    Some("setgid"),
    Some("geteuid"),
    Some("getegid"),
    Some("setpgid"),
    Some("getppid"),
    Some("getpgrp"),
    Some("setsid"),
    Some("setreuid"),
    Some("setregid"),
    Some("getgroups"),
    Some("setgroups"),
    Some("setresuid"),
    Some("getresuid"),
    Some("setresgid"),
    Some("getresgid"),
    Some("getpgid"),
    Some("setfsuid"),
    Some("setfsgid"),
    Some("getsid"),
    Some("capget"),
    Some("capset"),
    Some("rt_sigpending"),
    Some("rt_sigtimedwait"),
    Some("rt_sigqueueinfo"),
    Some("rt_sigsuspend"),
    Some("sigaltstack"),
    Some("utime"),
    Some("mknod"),
    Some("uselib"),
    Some("personality"),
    Some("ustat"),
    Some("statfs"),
    Some("fstatfs"),
    Some("sysfs"),
    Some("getpriority"),
    Some("setpriority"),
    Some("sched_setparam"),
    Some("sched_getparam"),
    Some("sched_setscheduler"),
    Some("sched_getscheduler"),
    Some("sched_get_priority_max"),
    Some("sched_get_priority_min"),
    Some("sched_rr_get_interval"),
    Some("mlock"),
    Some("munlock"),
    Some("mlockall"),
    Some("munlockall"),
    Some("vhangup"),
    Some("modify_ldt"),
    Some("pivot_root"),
    Some("_sysctl"),
    Some("prctl"),
    Some("arch_prctl"),
    Some("adjtimex"),
    Some("setrlimit"),
    Some("chroot"),
    Some("sync"),
    Some("acct"),
    Some("settimeofday"),
    Some("mount"),
    Some("umount2"),
    Some("swapon"),
    Some("swapoff"),
    Some("reboot"),
    Some("sethostname"),
    Some("setdomainname"),
    Some("iopl"),
    Some("ioperm"),
    Some("create_module"),
    Some("init_module"),
    Some("delete_module"),
    Some("get_kernel_syms"),
    Some("query_module"),
    Some("quotactl"),
    Some("nfsservctl"),
    Some("getpmsg"),
    Some("putpmsg"),
    Some("afs_syscall"),
    Some("tuxcall"),
    Some("security"),
    Some("gettid"),
    Some("readahead"),
    Some("setxattr"),
    Some("lsetxattr"),
    Some("fsetxattr"),
    Some("getxattr"),
    Some("lgetxattr"),
    Some("fgetxattr"),
    Some("listxattr"),
    Some("llistxattr"),
    Some("flistxattr"),
    Some("removexattr"),
    Some("lremovexattr"),
    Some("fremovexattr"),
    Some("tkill"),
    Some("time"),
    Some("futex"),
    Some("sched_setaffinity"),
    Some("sched_getaffinity"),
    Some("set_thread_area"),
    Some("io_setup"),
    Some("io_destroy"),
    Some("io_getevents"),
    Some("io_submit"),
    Some("io_cancel"),
    Some("get_thread_area"),
    Some("lookup_dcookie"),
    Some("epoll_create"),
    Some("epoll_ctl_old"),
    Some("epoll_wait_old"),
    Some("remap_file_pages"),
    Some("getdents64"),
    Some("set_tid_address"),
    Some("restart_syscall"),
    Some("semtimedop"),
    Some("fadvise64"),
    Some("timer_create"),
    Some("timer_settime"),
    Some("timer_gettime"),
    Some("timer_getoverrun"),
    Some("timer_delete"),
    Some("clock_settime"),
    Some("clock_gettime"),
    Some("clock_getres"),
    Some("clock_nanosleep"),
    Some("exit_group"),
    Some("epoll_wait"),
    Some("epoll_ctl"),
    Some("tgkill"),
    Some("utimes"),
    Some("vserver"),
    Some("mbind"),
    Some("set_mempolicy"),
    Some("get_mempolicy"),
    Some("mq_open"),
    Some("mq_unlink"),
    Some("mq_timedsend"),
    Some("mq_timedreceive"),
    Some("mq_notify"),
    Some("mq_getsetattr"),
    Some("kexec_load"),
    Some("waitid"),
    Some("add_key"),
    Some("request_key"),
    Some("keyctl"),
    Some("ioprio_set"),
    Some("ioprio_get"),
    Some("inotify_init"),
    Some("inotify_add_watch"),
    Some("inotify_rm_watch"),
    Some("migrate_pages"),
    Some("openat"),
    Some("mkdirat"),
    Some("mknodat"),
    Some("fchownat"),
    Some("futimesat"),
    Some("newfstatat"),
    Some("unlinkat"),
    Some("renameat"),
    Some("linkat"),
    Some("symlinkat"),
    Some("readlinkat"),
    Some("fchmodat"),
    Some("faccessat"),
    Some("pselect6"),
    Some("ppoll"),
    Some("unshare"),
    Some("set_robust_list"),
    Some("get_robust_list"),
    Some("splice"),
    Some("tee"),
    Some("sync_file_range"),
    Some("vmsplice"),
    Some("move_pages"),
    Some("utimensat"),
    Some("epoll_pwait"),
    Some("signalfd"),
    Some("timerfd_create"),
    Some("eventfd"),
    Some("fallocate"),
    Some("timerfd_settime"),
    Some("timerfd_gettime"),
    Some("accept4"),
    Some("signalfd4"),
    Some("eventfd2"),
    Some("epoll_create1"),
    Some("dup3"),
    Some("pipe2"),
    Some("inotify_init1"),
    Some("preadv"),
    Some("pwritev"),
    Some("rt_tgsigqueueinfo"),
    Some("perf_event_open"),
    Some("recvmmsg"),
    Some("fanotify_init"),
    Some("fanotify_mark"),
    Some("prlimit64"),
    Some("name_to_handle_at"),
    Some("open_by_handle_at"),
    Some("clock_adjtime"),
    Some("syncfs"),
    Some("sendmmsg"),
    Some("setns"),
    Some("getcpu"),
    Some("process_vm_readv"),
    Some("process_vm_writev"),
    Some("kcmp"),
    Some("finit_module"),
    Some("sched_setattr"),
    Some("sched_getattr"),
    Some("renameat2"),
    Some("seccomp"),
    Some("getrandom"),
    Some("memfd_create"),
    Some("kexec_file_load"),
    Some("bpf"),
    Some("execveat"),
    Some("userfaultfd"),
    Some("membarrier"),
    Some("mlock2"),
    Some("copy_file_range"),
    Some("preadv2"),
    Some("pwritev2"),
    Some("pkey_mprotect"),
    Some("pkey_alloc"),
    Some("pkey_free"),
    Some("statx"),
    Some("io_pgetevents"),
    Some("rseq"),
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    Some("pidfd_send_signal"),
    Some("io_uring_setup"),
    Some("io_uring_enter"),
    Some("io_uring_register"),
    Some("open_tree"),
    Some("move_mount"),
    Some("fsopen"),
    Some("fsconfig"),
    Some("fsmount"),
    Some("fspick"),
    Some("pidfd_open"),
    Some("clone3"),
    Some("close_range"),
    Some("openat2"),
    Some("pidfd_getfd"),
    Some("faccessat2"),
    Some("process_madvise"),
    Some("epoll_pwait2"),
    Some("mount_setattr"),
    Some("quotactl_fd"),
    Some("landlock_create_ruleset"),
    Some("landlock_add_rule"),
    Some("landlock_restrict_self"),
    Some("memfd_secret"),
    Some("process_mrelease"),
    Some("futex_waitv"),
    Some("set_mempolicy_home_node"),
    Some("cachestat"),
    Some("fchmodat2"),
    Some("map_shadow_stack"),
    Some("futex_wake"),
    Some("futex_wait"),
    Some("futex_requeue"),
    Some("statmount"),
    Some("listmount"),
    Some("lsm_get_self_attr"),
    Some("lsm_set_self_attr"),
    Some("lsm_list_modules"),
    Some("mseal"),
];

/// The name of syscall `nr`, if `nr` is a known x86_64 syscall.
pub fn name(nr: u64) -> Option<&'static str> {
    NAMES.get(usize::try_from(nr).ok()?).copied().flatten()
}

/// The number of the syscall called `name`.
pub fn number(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_numbers_match_names() {
        assert_eq!(name(0), Some("read"));
        assert_eq!(name(GETPPID as u64), Some("getppid"));
        assert_eq!(name(462), Some("mseal"));
        assert_eq!(name(400), None);
        assert_eq!(name(u64::MAX), None);
        assert_eq!(number("execve"), Some(59));
    }
}
