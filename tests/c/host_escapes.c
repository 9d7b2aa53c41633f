/*
 * A hostile guest's attempts to reach the host, one per line: "name: OUTCOME", where the
 * outcome is the errno's name ("ok" if the call succeeded) or "killed by SIGxxx" when the
 * attempt, made in a forked child, killed that child. Run ONLY inside rvisor by
 * tests/tests/host_escapes.rs (natively, as root, most of these would succeed: never run it
 * on the host).
 *
 * usage: host_escapes [SECTION...]
 * It prints "ready", reads one line "HOSTPID" from stdin (the host pid of the sandbox's
 * `rvisor boot` process, which the guest could not learn by itself) and runs the sections
 * named on the command line (syscalls, legacy, files, nodes). Then it prints "done" and waits for
 * stdin to close, so that the test can look at the host while the sandbox still runs.
 */
#include "rvtest.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>

static long host_pid = -1;

/* What to print for a raw syscall's return value. */
static const char *res(long r) {
    return r < 0 ? err(errno) : "ok";
}

/*
 * Runs `attempt` in a forked child, which prints "name: OUTCOME" itself; if the child dies
 * of a signal instead, the parent prints "name: killed by SIGxxx".
 */
static void attempt(const char *name, const char *(*fn)(void)) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const char *o = fn();
        out("%s: %s\n", name, o);
        _exit(0);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st))
        out("%s: killed by SIG%s\n", name, signame(WTERMSIG(st)));
    else if (WEXITSTATUS(st) != 0)
        out("%s: exit %d\n", name, WEXITSTATUS(st));
}

/* ---- raw syscalls that only the host kernel could honour ---- */

static const char *ptrace_attach_host(void) { return res(syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, host_pid, 0, 0)); }
static const char *ptrace_seize_host(void) { return res(syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, host_pid, 0, 0)); }
static const char *ptrace_attach_1(void) { return res(syscall(SYS_ptrace, 16, 1L, 0, 0)); }
static const char *ptrace_seize_1(void) { return res(syscall(SYS_ptrace, 0x4206, 1L, 0, 0)); }
static const char *kexec_load(void) { return res(syscall(SYS_kexec_load, 0L, 0L, 0L, 0L)); }
static const char *kexec_file_load(void) { return res(syscall(SYS_kexec_file_load, -1L, -1L, 0L, "", 0L)); }

static const char *init_module(void) {
    /* An ELF header is all a module loader looks at first. */
    static const char image[64] = "\177ELF\2\1\1";
    return res(syscall(SYS_init_module, image, sizeof image, ""));
}

static const char *finit_module(void) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err(errno);
    return res(syscall(SYS_finit_module, fd, "", 0));
}

static const char *delete_module(void) { return res(syscall(SYS_delete_module, "overlay", O_NONBLOCK)); }

/* Same inode and device as the guest's own root: what a bind of "/" may show at most. */
static const char *same_as_root(const char *path, const char *yes) {
    struct stat a, b;
    if (stat(path, &a) < 0 || stat("/", &b) < 0)
        return err(errno);
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev ? yes : "SOMEWHERE ELSE";
}

static const char *mount_bind_root(void) {
    mkdir("/tmp/rvisor-escape-mnt", 0700);
    if (syscall(SYS_mount, "/", "/tmp/rvisor-escape-mnt", 0L, (long)(MS_BIND | MS_REC), 0L) < 0)
        return err(errno);
    return same_as_root("/tmp/rvisor-escape-mnt", "bound the guest's root");
}

/* A proc mount would show the host's pids if it were the host's. */
static const char *mount_proc_host_pid(void) {
    mkdir("/tmp/rvisor-escape-proc", 0700);
    if (syscall(SYS_mount, "proc", "/tmp/rvisor-escape-proc", "proc", 0L, 0L) < 0)
        return err(errno);
    char path[64];
    snprintf(path, sizeof path, "/tmp/rvisor-escape-proc/%ld/status", host_pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? (errno == ENOENT ? "mounted, no host pid" : err(errno)) : "HOST PID VISIBLE";
}

/* A sysfs mount would have the host kernel's knobs if it were the host's. */
static const char *mount_sysfs(void) {
    mkdir("/tmp/rvisor-escape-sys", 0700);
    if (syscall(SYS_mount, "sysfs", "/tmp/rvisor-escape-sys", "sysfs", 0L, 0L) < 0)
        return err(errno);
    return access("/tmp/rvisor-escape-sys/kernel/uevent_helper", F_OK) < 0 && errno == ENOENT
               ? "mounted, no uevent_helper"
               : "HOST SYSFS";
}

/* Only the Ctrl-Alt-Del behaviour: harmless even if it reached the host. */
static const char *reboot_cad_off(void) {
    return res(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, 0L));
}

static const char *swapon(void) { return res(syscall(SYS_swapon, "/dev/sda", 0L)); }
static const char *swapoff(void) { return res(syscall(SYS_swapoff, "/dev/sda")); }

static const char *pivot_root(void) {
    mkdir("/tmp/rvisor-escape-old", 0700);
    return res(syscall(SYS_pivot_root, "/tmp", "/tmp/rvisor-escape-old"));
}

static const char *unshare_user_net(void) { return res(syscall(SYS_unshare, (long)(CLONE_NEWUSER | CLONE_NEWNET))); }

static const char *setns_net_of_1(void) {
    int fd = open("/proc/1/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err(errno);
    return res(syscall(SYS_setns, fd, (long)CLONE_NEWNET));
}

/* The "shocker" escape: a file handle for inode 2 (a root directory) of the mount. */
static const char *try_open_by_handle(void) {
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } h = {8, 1 /* FILEID_INO32_GEN */, {2, 0, 0, 0, 0, 0, 0, 0}};
    return res(syscall(SYS_open_by_handle_at, AT_FDCWD, &h, (long)O_RDONLY));
}

static const char *try_name_to_handle(void) {
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[128];
    } h = {128, 0, {0}};
    int mount_id;
    return res(syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mount_id, 0L));
}

static const char *iopl(void) { return res(syscall(SYS_iopl, 3L)); }
static const char *ioperm(void) { return res(syscall(SYS_ioperm, 0x70L, 2L, 1L)); }

static const char *perf_event_open(void) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    return res(syscall(SYS_perf_event_open, &a, 0L, -1L, -1L, 0L));
}

/* BPF_PROG_LOAD of a socket filter that is `r0 = 0; exit`. */
static const char *bpf_prog_load(void) {
    struct bpf_insn insns[2];
    memset(insns, 0, sizeof insns);
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
    insns[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (uintptr_t)insns;
    a.insn_cnt = 2;
    a.license = (uintptr_t) "GPL";
    return res(syscall(SYS_bpf, (long)BPF_PROG_LOAD, &a, (long)sizeof a));
}

static const char *bpf_map_create(void) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    return res(syscall(SYS_bpf, (long)BPF_MAP_CREATE, &a, (long)sizeof a));
}

static const char *add_key(void) {
    return res(syscall(SYS_add_key, "user", "rvisor-escape", "x", 1L, -3L /* KEY_SPEC_SESSION_KEYRING */));
}

static const char *keyctl(void) {
    return res(syscall(SYS_keyctl, 0L /* KEYCTL_GET_KEYRING_ID */, -4L /* KEY_SPEC_USER_KEYRING */, 1L));
}

static const char *userfaultfd(void) { return res(syscall(SYS_userfaultfd, (long)O_CLOEXEC)); }

static char vm_buf[16] = "rvisor-escape";

static const char *vm_read(long pid) {
    char dst[16];
    struct iovec local = {dst, sizeof dst}, remote = {vm_buf, sizeof vm_buf};
    return res(syscall(SYS_process_vm_readv, pid, &local, 1L, &remote, 1L, 0L));
}

static const char *vm_write(long pid) {
    struct iovec local = {vm_buf, sizeof vm_buf}, remote = {vm_buf, sizeof vm_buf};
    return res(syscall(SYS_process_vm_writev, pid, &local, 1L, &remote, 1L, 0L));
}

static const char *vm_readv_1(void) { return vm_read(1); }
static const char *vm_writev_1(void) { return vm_write(1); }
static const char *vm_readv_host(void) { return vm_read(host_pid); }
static const char *vm_writev_host(void) { return vm_write(host_pid); }
static const char *kill_host(void) { return res(syscall(SYS_kill, host_pid, (long)SIGKILL)); }
static const char *kcmp_host(void) { return res(syscall(SYS_kcmp, host_pid, 1L, 0L, 0L, 0L)); }
static const char *pidfd_open_host(void) { return res(syscall(SYS_pidfd_open, host_pid, 0L)); }
static const char *nr_451(void) { return res(syscall(451, 0L, 0L, 0L)); }
static const char *nr_512(void) { return res(syscall(512, 1L, (long)vm_buf, 1L)); }
static const char *nr_1000(void) { return res(syscall(1000, 0L)); }
static const char *nr_x32_write(void) { return res(syscall(0x40000000L | 1, 1L, (long)vm_buf, 1L)); }
static const char *nr_minus_1(void) { return res(syscall(-1L)); }
static const char *nr_huge(void) { return res(syscall(0x7fffffffL)); }

/* The host's LDT would give the guest 32-bit or call-gate segments. */
static const char *modify_ldt(void) {
    struct {
        unsigned int entry_number, base_addr, limit, flags;
    } d = {0, 0, 0xfffff, 0x51 /* seg_32bit, limit_in_pages, useable */};
    return res(syscall(SYS_modify_ldt, 1L, &d, (long)sizeof d));
}

static const char *set_thread_area(void) {
    struct {
        unsigned int entry_number, base_addr, limit, flags;
    } d = {(unsigned)-1, 0, 0xfffff, 0x51};
    return res(syscall(SYS_set_thread_area, &d));
}

/* The host's clock, set to what it already is (harmless if it got through). */
static const char *clock_settime_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return res(syscall(SYS_clock_settime, (long)CLOCK_REALTIME, &ts));
}

static const char *syslog_read(void) {
    char buf[256];
    return res(syscall(SYS_syslog, 3L /* SYSLOG_ACTION_READ_ALL */, buf, (long)sizeof buf));
}

static const char *fsopen_proc(void) { return res(syscall(SYS_fsopen, "proc", 0L)); }
static const char *open_tree_root(void) { return res(syscall(SYS_open_tree, AT_FDCWD, "/", 1L /* OPEN_TREE_CLONE */)); }
static const char *fanotify_init(void) { return res(syscall(SYS_fanotify_init, 0L, (long)O_RDONLY)); }
static const char *try_acct(void) { return res(syscall(SYS_acct, "/tmp/rvisor-escape-acct")); }
static const char *quotactl(void) { return res(syscall(SYS_quotactl, 0x800007L /* Q_SYNC */, 0L, 0L, 0L)); }
static const char *try_vhangup(void) { return res(syscall(SYS_vhangup)); }

static void syscalls_section(void) {
    attempt("ptrace(PTRACE_ATTACH, sentry host pid)", ptrace_attach_host);
    attempt("ptrace(PTRACE_SEIZE, sentry host pid)", ptrace_seize_host);
    attempt("ptrace(PTRACE_ATTACH, 1)", ptrace_attach_1);
    attempt("ptrace(PTRACE_SEIZE, 1)", ptrace_seize_1);
    attempt("kexec_load", kexec_load);
    attempt("kexec_file_load", kexec_file_load);
    attempt("init_module", init_module);
    attempt("finit_module", finit_module);
    attempt("delete_module", delete_module);
    attempt("mount / MS_BIND|MS_REC", mount_bind_root);
    attempt("mount proc", mount_proc_host_pid);
    attempt("mount sysfs", mount_sysfs);
    attempt("reboot(CAD_OFF)", reboot_cad_off);
    attempt("swapon", swapon);
    attempt("swapoff", swapoff);
    attempt("pivot_root", pivot_root);
    attempt("unshare(CLONE_NEWUSER|CLONE_NEWNET)", unshare_user_net);
    attempt("setns(/proc/1/ns/net)", setns_net_of_1);
    attempt("open_by_handle_at", try_open_by_handle);
    attempt("name_to_handle_at", try_name_to_handle);
    attempt("iopl(3)", iopl);
    attempt("ioperm", ioperm);
    attempt("perf_event_open", perf_event_open);
    attempt("bpf(BPF_PROG_LOAD)", bpf_prog_load);
    attempt("bpf(BPF_MAP_CREATE)", bpf_map_create);
    attempt("add_key", add_key);
    attempt("keyctl", keyctl);
    attempt("userfaultfd", userfaultfd);
    attempt("process_vm_readv(1)", vm_readv_1);
    attempt("process_vm_writev(1)", vm_writev_1);
    attempt("process_vm_readv(sentry host pid)", vm_readv_host);
    attempt("process_vm_writev(sentry host pid)", vm_writev_host);
    attempt("kill(sentry host pid, SIGKILL)", kill_host);
    attempt("kcmp(sentry host pid)", kcmp_host);
    attempt("pidfd_open(sentry host pid)", pidfd_open_host);
    attempt("modify_ldt", modify_ldt);
    attempt("set_thread_area", set_thread_area);
    attempt("clock_settime(CLOCK_REALTIME)", clock_settime_now);
    attempt("syslog(READ_ALL)", syslog_read);
    attempt("fsopen(proc)", fsopen_proc);
    attempt("open_tree(/, CLONE)", open_tree_root);
    attempt("fanotify_init", fanotify_init);
    attempt("acct", try_acct);
    attempt("quotactl", quotactl);
    attempt("vhangup", try_vhangup);
    attempt("syscall 451", nr_451);
    attempt("syscall 512", nr_512);
    attempt("syscall 1000", nr_1000);
    attempt("syscall x32 write", nr_x32_write);
    attempt("syscall -1", nr_minus_1);
    attempt("syscall 0x7fffffff", nr_huge);
}

/* ---- legacy entries: int 0x80, sysenter, the vsyscall page ---- */

static const char *int80_write(void) {
    static const char msg[] = "int80 write reached fd 1\n";
    long r;
    /* i386 write(1, msg, len): eax 4, ebx fd, ecx buf, edx len (buf is below 4 GiB: static). */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(4L), "b"(1L), "c"(msg), "d"(sizeof msg - 1) : "memory");
    return r < 0 ? err((int)-r) : "ok";
}

static const char *int80_getpid(void) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    return r < 0 ? err((int)-r) : "ok";
}

/* i386 exit(42) by int 0x80: 64-bit exit is 60, so a native-looking 42 is the i386 table. */
static const char *int80_exit(void) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(1L), "b"(42L) : "memory");
    return r < 0 ? err((int)-r) : "ok";
}

/*
 * sysenter does not return to the next instruction (the kernel returns to the 32-bit vDSO),
 * so the outcome is whatever the child prints if it does, or the signal that ends it.
 */
static const char *sysenter_getpid(void) {
    long r;
    __asm__ volatile("mov %%rsp, %%rbp\n\tsysenter\n\t" : "=a"(r) : "a"(20L) : "rbp", "rcx", "r11", "memory");
    return r < 0 ? err((int)-r) : "ok";
}

typedef long (*vgtod_fn)(struct timeval *, void *);
typedef long (*vtime_fn)(long *);

static const char *vsyscall_gettimeofday(void) {
    struct timeval tv = {0, 0};
    long r = ((vgtod_fn)0xffffffffff600000UL)(&tv, NULL);
    if (r < 0)
        return err((int)-r);
    return labs(tv.tv_sec - time(NULL)) <= 5 ? "ok" : "wrong time";
}

static const char *vsyscall_time(void) {
    long t = 0;
    long r = ((vtime_fn)0xffffffffff600400UL)(&t);
    if (r < 0)
        return err((int)-r);
    return labs(r - time(NULL)) <= 5 && r == t ? "ok" : "wrong time";
}

static const char *vsyscall_middle(void) {
    ((void (*)(void))0xffffffffff600010UL)();
    return "returned";
}

static void legacy_section(void) {
    attempt("int 0x80 write", int80_write);
    attempt("int 0x80 getpid", int80_getpid);
    attempt("int 0x80 exit(42)", int80_exit);
    attempt("sysenter getpid", sysenter_getpid);
    attempt("vsyscall gettimeofday", vsyscall_gettimeofday);
    attempt("vsyscall time", vsyscall_time);
    attempt("vsyscall non-entry address", vsyscall_middle);
}

/* ---- host files: procfs, devices, sysfs, cgroups ---- */

/* Opens `path` with `flags`; when it opens, reads (or writes `data`) once. */
static const char *touch(const char *path, int flags, const char *data) {
    int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return err(errno);
    char buf[64];
    ssize_t n = data ? write(fd, data, strlen(data)) : read(fd, buf, sizeof buf);
    if (n < 0)
        return data ? "opened, write failed" : "opened, read failed";
    return data ? "WRITTEN" : "READ";
}

static char path_buf[128];

static const char *host_pid_path(const char *rest) {
    snprintf(path_buf, sizeof path_buf, "/proc/%ld/%s", host_pid, rest);
    return path_buf;
}

static const char *proc_host_mem(void) { return touch(host_pid_path("mem"), O_RDWR, NULL); }
static const char *proc_host_root_shadow(void) { return touch(host_pid_path("root/etc/shadow"), O_RDONLY, NULL); }
static const char *proc_host_environ(void) { return touch(host_pid_path("environ"), O_RDONLY, NULL); }
/* The guest's own init's root, twice, then "..": still the guest's root. */
static const char *proc_1_root_dotdot(void) {
    return same_as_root("/proc/1/root/proc/1/root/..", "the guest's root");
}
static const char *sysrq_trigger(void) { return touch("/proc/sysrq-trigger", O_WRONLY, "h"); }
static const char *core_pattern(void) { return touch("/proc/sys/kernel/core_pattern", O_WRONLY, "|/tmp/rvisor-escape-core"); }
static const char *modprobe_path(void) { return touch("/proc/sys/kernel/modprobe", O_WRONLY, "/tmp/rvisor-escape-modprobe"); }
static const char *proc_kcore(void) { return touch("/proc/kcore", O_RDONLY, NULL); }
static const char *dev_mem(void) { return touch("/dev/mem", O_RDONLY, NULL); }
static const char *dev_kmem(void) { return touch("/dev/kmem", O_RDONLY, NULL); }
static const char *dev_port(void) { return touch("/dev/port", O_RDONLY, NULL); }
static const char *dev_kmsg_read(void) { return touch("/dev/kmsg", O_RDONLY, NULL); }
static const char *dev_kmsg_write(void) { return touch("/dev/kmsg", O_WRONLY, "rvisor-escape-kmsg-marker\n"); }
static const char *sys_uevent_helper(void) { return touch("/sys/kernel/uevent_helper", O_WRONLY, "/tmp/rvisor-escape-uevent"); }
static const char *sys_kexec_loaded(void) { return touch("/sys/kernel/kexec_loaded", O_RDONLY, NULL); }
static const char *sys_thp(void) { return touch("/sys/kernel/mm/transparent_hugepage/enabled", O_WRONLY, "never"); }
static const char *cgroup_procs(void) { return touch("/sys/fs/cgroup/cgroup.procs", O_WRONLY, "1"); }
static const char *cgroup_subtree(void) { return touch("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY, "+pids"); }
static const char *cgroup_release_agent(void) { return touch("/sys/fs/cgroup/release_agent", O_WRONLY, "/tmp/rvisor-escape-agent"); }
static const char *cgroup_new_file(void) {
    return touch("/sys/fs/cgroup/rvisor-escape-file", O_WRONLY | O_CREAT, "x");
}
static const char *cgroup_mkdir(void) { return res(mkdir("/sys/fs/cgroup/rvisor-escape-dir", 0755)); }

/* A block device node for the host's first disk (8,0), then reading its first sector. */
static const char *mknod_sda(const char *path) {
    if (mknod(path, S_IFBLK | 0600, makedev(8, 0)) < 0)
        return err(errno);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err(errno);
    char sector[512];
    ssize_t n = read(fd, sector, sizeof sector);
    return n < 0 ? err(errno) : "READ THE DISK";
}
static const char *mknod_sda_tmp(void) { return mknod_sda("/tmp/rvisor-escape-sda"); }
static const char *mknod_sda_dev(void) { return mknod_sda("/dev/rvisor-escape-sda"); }
static const char *mknod_mem(void) {
    if (mknod("/tmp/rvisor-escape-mem", S_IFCHR | 0600, makedev(1, 1)) < 0)
        return err(errno);
    return touch("/tmp/rvisor-escape-mem", O_RDONLY, NULL);
}

static void files_section(void) {
    attempt("open /proc/HOSTPID/mem", proc_host_mem);
    attempt("open /proc/HOSTPID/root/etc/shadow", proc_host_root_shadow);
    attempt("open /proc/HOSTPID/environ", proc_host_environ);
    attempt("/proc/1/root/proc/1/root/..", proc_1_root_dotdot);
    attempt("write /proc/sysrq-trigger", sysrq_trigger);
    attempt("write /proc/sys/kernel/core_pattern", core_pattern);
    attempt("write /proc/sys/kernel/modprobe", modprobe_path);
    attempt("read /proc/kcore", proc_kcore);
    attempt("read /dev/mem", dev_mem);
    attempt("read /dev/kmem", dev_kmem);
    attempt("read /dev/port", dev_port);
    attempt("read /dev/kmsg", dev_kmsg_read);
    attempt("write /dev/kmsg", dev_kmsg_write);
    attempt("write /sys/kernel/uevent_helper", sys_uevent_helper);
    attempt("read /sys/kernel/kexec_loaded", sys_kexec_loaded);
    attempt("write /sys/kernel/mm/transparent_hugepage/enabled", sys_thp);
    attempt("write /sys/fs/cgroup/cgroup.procs", cgroup_procs);
    attempt("write /sys/fs/cgroup/cgroup.subtree_control", cgroup_subtree);
    attempt("write /sys/fs/cgroup/release_agent", cgroup_release_agent);
    attempt("create /sys/fs/cgroup/rvisor-escape-file", cgroup_new_file);
    attempt("mkdir /sys/fs/cgroup/rvisor-escape-dir", cgroup_mkdir);
    attempt("mknod /tmp block 8:0 and read", mknod_sda_tmp);
    attempt("mknod /dev block 8:0 and read", mknod_sda_dev);
    attempt("mknod /tmp char 1:1 and read", mknod_mem);
}

/*
 * Device nodes that the container's root itself holds (put there by the test, as an image
 * could): the host's first disk, /dev/mem and /dev/kmsg. Only with --rootfs of such a tree.
 */
static const char *node_disk(void) { return touch("/nodes/disk", O_RDONLY, NULL); }
static const char *node_disk_write(void) { return touch("/nodes/disk", O_WRONLY, "x"); }
static const char *node_mem(void) { return touch("/nodes/mem", O_RDONLY, NULL); }
static const char *node_kmsg_read(void) { return touch("/nodes/kmsg", O_RDONLY, NULL); }
static const char *node_kmsg_write(void) { return touch("/nodes/kmsg", O_WRONLY, "rvisor-escape-kmsg-marker\n"); }

static void nodes_section(void) {
    attempt("read the root's disk node", node_disk);
    attempt("write the root's disk node", node_disk_write);
    attempt("read the root's mem node", node_mem);
    attempt("read the root's kmsg node", node_kmsg_read);
    attempt("write the root's kmsg node", node_kmsg_write);
}

int main(int argc, char **argv) {
    out("ready\n");
    char line[32];
    ssize_t n = read(0, line, sizeof line - 1);
    REQUIRE(n > 0);
    line[n] = 0;
    host_pid = strtol(line, NULL, 10);
    REQUIRE(host_pid > 1);

    static const struct section sections[] = {
        {"syscalls", syscalls_section},
        {"legacy", legacy_section},
        {"files", files_section},
        {"nodes", nodes_section},
    };
    int rc = run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
    out("done\n");
    /* Wait for the test to close stdin: it looks at the host while the sandbox runs. */
    while (read(0, line, sizeof line) > 0) {
    }
    return rc;
}
