// Capabilities of a root process: capget/capset, the bounding and ambient sets through
// prctl, what execve and setuid do to the sets, and how the file checks behave for root
// once CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_CHOWN, CAP_FOWNER or CAP_SYS_ADMIN are
// gone. Run as root: `caps BASE` works in the folder BASE. Masks are printed restricted to
// the capabilities below, so a host whose bounding set lacks others gives the same output.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIT(c) (1ULL << (c))
// The capabilities this test looks at.
#define SEEN (BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_FOWNER) | \
              BIT(CAP_FSETID) | BIT(CAP_KILL) | BIT(CAP_SETGID) | BIT(CAP_SETUID) | BIT(CAP_SETPCAP) | \
              BIT(CAP_SYS_ADMIN) | BIT(CAP_SYS_CHROOT))

struct sets {
    unsigned long long eff, prm, inh;
};

static int get(struct sets *s) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    s->eff = d[0].effective | (unsigned long long)d[1].effective << 32;
    s->prm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
    s->inh = d[0].inheritable | (unsigned long long)d[1].inheritable << 32;
    return 0;
}

static int set(const struct sets *s) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(unsigned)s->eff, (unsigned)s->prm, (unsigned)s->inh},
        {(unsigned)(s->eff >> 32), (unsigned)(s->prm >> 32), (unsigned)(s->inh >> 32)},
    };
    return syscall(SYS_capset, &h, d);
}

static void show(const char *what) {
    struct sets s;
    if (get(&s) != 0) {
        printf("%s: capget errno %d\n", what, errno);
        return;
    }
    printf("%s: eff %llx prm %llx inh %llx\n", what, s.eff & SEEN, s.prm & SEEN, s.inh & SEEN);
}

static void result(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void drop_effective(unsigned long long mask) {
    struct sets s;
    get(&s);
    s.eff &= ~mask;
    result("  capset drop effective", set(&s));
}

static void status_line(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            printf("%s", line);
    if (f)
        fclose(f);
}

// Runs `fn` in a child so that the parent keeps its capabilities.
static void in_child(const char *name, void (*fn)(const char *), const char *arg) {
    printf("== %s\n", name);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        printf("child status %x\n", st);
}

static void versions(const char *unused) {
    struct __user_cap_header_struct h = {0x12345678, 0};
    struct __user_cap_data_struct d[2];
    result("bad version", syscall(SYS_capget, &h, d));
    printf("version written back %x\n", h.version);
    h.version = 0x12345678;
    result("bad version, null data", syscall(SYS_capget, &h, NULL));
    h.version = _LINUX_CAPABILITY_VERSION_1;
    result("v1", syscall(SYS_capget, &h, d));
    printf("v1 eff %llx\n", d[0].effective & SEEN);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = -1;
    result("negative pid", syscall(SYS_capget, &h, d));
    h.pid = getppid();
    result("capset of another process", syscall(SYS_capset, &h, d));
    show("start");
}

static void capset_rules(const char *unused) {
    struct sets s, orig;
    get(&orig);
    s = orig;
    s.eff = s.prm = orig.prm & ~BIT(CAP_KILL);
    result("drop CAP_KILL from permitted", set(&s));
    s.eff |= BIT(CAP_KILL);
    result("effective beyond permitted", set(&s));
    s.eff = s.prm;
    s.prm |= BIT(CAP_KILL);
    result("raise permitted again", set(&s));
    s.prm &= ~BIT(CAP_KILL);
    s.inh = BIT(CAP_KILL);
    result("inheritable CAP_KILL with CAP_SETPCAP", set(&s));
    s.inh = 0;
    s.eff &= ~BIT(CAP_SETPCAP);
    result("drop CAP_SETPCAP from effective", set(&s));
    s.inh = BIT(CAP_KILL);
    result("inheritable CAP_KILL without CAP_SETPCAP", set(&s));
    s.inh = BIT(CAP_CHOWN);
    result("inheritable CAP_CHOWN (permitted)", set(&s));
    show("after");
}

static void bounding(const char *unused) {
    result("read CAP_CHOWN", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
    result("read 64", prctl(PR_CAPBSET_READ, 64, 0, 0, 0));
    result("read -1", prctl(PR_CAPBSET_READ, -1L, 0, 0, 0));
    result("drop CAP_SYS_CHROOT", prctl(PR_CAPBSET_DROP, CAP_SYS_CHROOT, 0, 0, 0));
    result("read CAP_SYS_CHROOT", prctl(PR_CAPBSET_READ, CAP_SYS_CHROOT, 0, 0, 0));
    result("drop 99", prctl(PR_CAPBSET_DROP, 99, 0, 0, 0));
    show("permitted keeps it");
    drop_effective(BIT(CAP_SETPCAP));
    result("drop without CAP_SETPCAP", prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0));
    result("read CAP_KILL", prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0));
}

static void ambient(const char *unused) {
    result("is set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
    result("raise without inheritable", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
    struct sets s;
    get(&s);
    s.inh = BIT(CAP_CHOWN) | BIT(CAP_KILL);
    result("capset inheritable", set(&s));
    result("raise", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
    result("raise CAP_KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
    result("is set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
    result("lower", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_CHOWN, 0, 0));
    result("is set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
    result("bad cap", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 77, 0, 0));
    result("bad op", prctl(PR_CAP_AMBIENT, 9, CAP_CHOWN, 0, 0));
    result("clear all with an argument", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
    // Leaving inheritable drops the capability from ambient too.
    s.inh = BIT(CAP_CHOWN);
    result("capset inheritable without CAP_KILL", set(&s));
    result("is set CAP_KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
    result("clear all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    status_line("CapAmb");
}

static void files(const char *base) {
    char f[512], secret[512], dir[512], inner[512];
    snprintf(f, sizeof f, "%s/theirs", base);
    snprintf(secret, sizeof secret, "%s/secret", base);
    snprintf(dir, sizeof dir, "%s/private", base);
    snprintf(inner, sizeof inner, "%s/private/x", base);
    close(open(f, O_CREAT | O_WRONLY, 0600));
    close(open(secret, O_CREAT | O_WRONLY, 0000));
    mkdir(dir, 0700);
    close(open(inner, O_CREAT | O_WRONLY, 0644));
    result("chown theirs", chown(f, 1000, 1000));
    result("chown private", chown(dir, 1000, 1000));
    result("open secret as root", open(secret, O_RDWR) >= 0 ? 0 : -1);
    drop_effective(BIT(CAP_DAC_OVERRIDE));
    result("  read secret (read-search)", open(secret, O_RDONLY) >= 0 ? 0 : -1);
    result("  write secret", open(secret, O_WRONLY));
    result("  write theirs", open(f, O_WRONLY));
    result("  look in private", open(inner, O_RDONLY) >= 0 ? 0 : -1);
    result("  create in private", open(inner, O_CREAT | O_WRONLY, 0644));
    drop_effective(BIT(CAP_DAC_READ_SEARCH));
    result("  read secret", open(secret, O_RDONLY));
    result("  read theirs", open(f, O_RDONLY));
    result("  look in private", open(inner, O_RDONLY));
    result("  access(R_OK) secret", access(secret, R_OK));
    result("  chmod theirs", chmod(f, 0644));
    drop_effective(BIT(CAP_FOWNER));
    result("  chmod theirs", chmod(f, 0644));
    result("  chmod secret (own)", chmod(secret, 0400));
    result("  chown theirs to 0", chown(f, 0, 0));
    drop_effective(BIT(CAP_CHOWN));
    result("  chown secret to 1000", chown(secret, 1000, -1));
    result("  chown secret to itself", chown(secret, 0, 0));
    result("  chown theirs", chown(f, 1000, 1000));
    struct sets s;
    get(&s);
    s.eff = s.prm;
    result("capset raise effective again", set(&s));
    result("write secret", open(secret, O_WRONLY) >= 0 ? 0 : -1);
    result("chown theirs", chown(f, 1000, 1000));
    unlink(inner);
    rmdir(dir);
    unlink(f);
    unlink(secret);
}

static void privileged_calls(const char *base) {
    drop_effective(BIT(CAP_SYS_ADMIN));
    result("  mount", mount("none", base, "tmpfs", 0, NULL));
    drop_effective(BIT(CAP_SETUID) | BIT(CAP_SETGID));
    result("  setresuid", setresuid(1000, 1000, 1000));
    result("  setuid", setuid(1000));
    result("  setgid", setgid(1000));
    gid_t g = 0;
    result("  setgroups", setgroups(1, &g));
}

static void setuid_drops(const char *unused) {
    result("setresuid 0 1000 0", setresuid(0, 1000, 0));
    show("effective uid 1000");
    result("setresuid -1 0 -1", setresuid(-1, 0, -1));
    show("back to 0");
    result("setfsuid 1000", setfsuid(1000));
    show("fsuid 1000");
    setfsuid(0);
    show("fsuid 0");
    result("setresuid 1000 1000 1000", setresuid(1000, 1000, 1000));
    show("uid 1000");
    result("setuid 0", setuid(0));
}

static const char *self;

static void exec_transforms(const char *unused) {
    drop_effective(BIT(CAP_KILL) | BIT(CAP_FOWNER));
    result("bounding drop CAP_CHOWN", prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0));
    fflush(stdout);
    execl(self, self, "--after-exec", (char *)NULL);
    printf("exec failed %d\n", errno);
}

static void nnp(const char *unused) {
    result("get", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    status_line("NoNewPrivs");
    result("set 2", prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0));
    result("set", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    result("get", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    status_line("NoNewPrivs");
    status_line("Seccomp:");
}

int main(int argc, char **argv) {
    self = argv[0];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc > 1 && strcmp(argv[1], "--after-exec") == 0) {
        show("after exec");
        result("read CAP_CHOWN", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: caps BASE\n");
        return 2;
    }
    in_child("versions", versions, NULL);
    in_child("capset", capset_rules, NULL);
    in_child("bounding", bounding, NULL);
    in_child("ambient", ambient, NULL);
    in_child("files", files, argv[1]);
    in_child("privileged", privileged_calls, argv[1]);
    in_child("setuid", setuid_drops, NULL);
    in_child("exec", exec_transforms, NULL);
    in_child("no_new_privs", nnp, NULL);
    return 0;
}
