//! Loading a program into a task: executable lookup, `#!` scripts and the ELF image.

use std::sync::Arc;

use rvisor_syscalls::flags::mode::S_IFREG;
use rvisor_syscalls::flags::open::O_RDONLY;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use rvisor_platform::Regs;

use super::task::{Creds, FsContext, Task};
use super::Kernel;
use crate::loader::{self, ExecArgs};
use crate::mm::{FileSource, MemoryManager};
use crate::vfs::file::source_of_impl;
use crate::vfs::{Dentry, FileImpl, Lookup};

/// How many `#!` interpreters may chain (Linux allows 4 levels of binfmt recursion).
const MAX_INTERP_DEPTH: usize = 4;
/// The PATH used when the environment has none (the one runc/Docker set).
pub const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves `path` from the filesystem context, following a final symlink; with `creds`,
/// every directory crossed must be searchable by them.
fn resolve(k: &Kernel, fs: &FsContext, creds: Option<&Creds>, path: &[u8]) -> Result<Arc<Dentry>, Errno> {
    k.vfs.resolve(&Lookup { root: &fs.root, start: &fs.cwd, follow_last: true, creds }, path)
}

/// Finds `name` like execvp(3): names with a `/` are paths, others are searched in `path`.
/// The kernel's own lookup (for the init process): see [`find_executable_as`] without
/// credentials.
pub fn find_executable(k: &Kernel, fs: &FsContext, name: &[u8], path: Option<&[u8]>) -> Result<(Arc<Dentry>, Vec<u8>), Errno> {
    find_executable_as(k, fs, None, name, path)
}

/// Finds `name` like execvp(3) as `creds` would (every folder crossed searchable by them):
/// a PATH entry that is not a regular file they may execute is skipped, and EACCES is the
/// answer if nothing better was found. Without `creds` no search permission is checked and
/// any execute bit will do. [`load_image`] checks the file found again.
pub fn find_executable_as(k: &Kernel, fs: &FsContext, creds: Option<&Creds>, name: &[u8], path: Option<&[u8]>) -> Result<(Arc<Dentry>, Vec<u8>), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.contains(&b'/') {
        return Ok((resolve(k, fs, creds, name)?, name.to_vec()));
    }
    let mut last = Errno::ENOENT;
    for dir in path.unwrap_or(DEFAULT_PATH).split(|&b| b == b':') {
        let mut full = if dir.is_empty() { b".".to_vec() } else { dir.to_vec() };
        full.push(b'/');
        full.extend_from_slice(name);
        let found = resolve(k, fs, creds, &full).and_then(|d| {
            match creds {
                Some(c) => check_executable(k, c, &d, &d.inode().stat()?)?,
                None if d.inode().file_type() != S_IFREG || d.inode().stat()?.st_mode & 0o111 == 0 => return Err(Errno::EACCES),
                None => {}
            }
            Ok(d)
        });
        match found {
            Ok(d) => return Ok((d, full)),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {}
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Whether `creds` may execute the file (Linux's `do_open_execat`): a regular file with an
/// execute bit they are allowed (root needs any execute bit), on a mount without `noexec`.
/// EACCES otherwise. Also applies to `#!` and ELF interpreters. `st`: the file's attributes.
fn check_executable(k: &Kernel, creds: &Creds, d: &Arc<Dentry>, st: &Stat) -> Result<(), Errno> {
    crate::vfs::permission::may_exec(creds, st)?;
    if crate::vfs::permission::on_noexec_mount(&k.vfs, d) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// A new process image, ready to be installed in a task.
pub struct Image {
    pub mm: Arc<MemoryManager>,
    pub regs: Regs,
    /// The new comm: the last component of the executed path.
    pub comm: Vec<u8>,
    /// The executable file (for a `#!` script, its interpreter): /proc/pid/exe.
    pub exe: Option<Arc<Dentry>>,
    /// Where argv and envp lie on the new stack.
    pub args: super::task::ArgRanges,
}

/// Builds the memory image of the program at `dentry` (execve's core): `#!` scripts are
/// followed to their interpreter, ELF files are loaded into a new address space.
/// `execfn` is the path as given; `argv`/`envp` are the new process's.
pub fn load_image(k: &Arc<Kernel>, fs: &FsContext, creds: &Creds, dentry: Arc<Dentry>, execfn: Vec<u8>, mut argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> Result<Image, Errno> {
    let mut dentry = dentry;
    let mut script_path = execfn.clone();
    for _ in 0..=MAX_INTERP_DEPTH {
        check_executable(k, creds, &dentry, &dentry.inode().stat()?)?;
        let file = dentry.inode().open(O_RDONLY)?;
        let mut head = [0u8; 256];
        let n = read_full(&*file, &mut head)?;
        if let Some((interp, arg)) = loader::parse_shebang(&head[..n]) {
            // argv becomes: interp [arg] script-path original-argv[1..]
            let mut new_argv = vec![interp.clone()];
            new_argv.extend(arg);
            new_argv.push(script_path.clone());
            new_argv.extend(argv.into_iter().skip(1));
            argv = new_argv;
            dentry = resolve(k, fs, Some(creds), &interp)?;
            script_path = interp;
            continue;
        }
        let mut image = load_elf(k, fs, creds, source_of_impl(file)?, execfn, argv, envp)?;
        image.exe = Some(dentry);
        return Ok(image);
    }
    Err(Errno::ELOOP)
}

fn read_full(f: &dyn FileImpl, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let n = f.read(&mut buf[done..], done as u64, 0)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

fn load_elf(k: &Arc<Kernel>, fs: &FsContext, creds: &Creds, exe: Arc<dyn FileSource>, execfn: Vec<u8>, argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> Result<Image, Errno> {
    let as_ = k.platform.new_address_space().map_err(|e| {
        tracing::error!(error = %e, "cannot create an address space");
        Errno::ENOMEM
    })?;
    let mm = Arc::new(MemoryManager::new(k.memory.clone(), as_, k.platform.max_user_address()));
    let comm = execfn.rsplit(|&b| b == b'/').next().unwrap_or_default().iter().copied().take(15).collect();
    let args = ExecArgs {
        argv,
        envp,
        execfn,
        uid: creds.uid,
        euid: creds.euid,
        gid: creds.gid,
        egid: creds.egid,
        secure: false,
    };
    let mut open_interp = |path: &[u8]| -> Result<Arc<dyn FileSource>, Errno> {
        let d = resolve(k, fs, Some(creds), path)?;
        // The dynamic loader is checked against the attributes its lookup just cached: no
        // extra gofer round trip per exec.
        check_executable(k, creds, &d, &d.inode().cached_stat()?)?;
        let f = d.inode().open(O_RDONLY)?;
        source_of_impl(f)
    };
    let image = loader::load(&mm, exe, &args, &mut open_interp).map_err(|e| {
        tracing::debug!(error = %e, "exec failed");
        e.errno()
    })?;
    let args = super::task::ArgRanges { arg_start: image.arg_start, arg_end: image.arg_end, env_start: image.env_start, env_end: image.env_end };
    Ok(Image { mm, regs: initial_regs(image.entry, image.stack_pointer), comm, exe: None, args })
}

impl Task {
    /// Installs a new process image (the point of no return of execve).
    pub fn install_image(&mut self, image: Image) {
        // The old address space (and the host process that ran it) goes away now; a vfork
        // child gets a host process of its own and is measured from here on.
        let tg = self.tg().clone();
        if tg.cpu_untracked.swap(false, std::sync::atomic::Ordering::Relaxed) {
            // Nothing measured yet: the parent's host process was running it.
        } else {
            tg.fold_cpu_time();
        }
        self.mm = image.mm;
        self.regs = image.regs;
        self.comm = image.comm;
        self.handle.update_proc_info(|p| {
            p.exe = image.exe;
            p.args = image.args;
        });
        self.publish_proc_info();
        let closed = self.fds().close_on_exec();
        for f in &closed {
            crate::vfs::lock::posix_fd_closed(self.tgid(), f);
        }
        // Handlers are reset by exec; ignored signals stay ignored (signal(7)). The table is
        // unshared from any process that shared it through CLONE_SIGHAND.
        let tg = self.tg().clone();
        let old = *tg.handlers().lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = [rvisor_syscalls::types::SigAction::default(); 64];
        for (new, old) in fresh.iter_mut().zip(old.iter()) {
            if old.handler == rvisor_syscalls::flags::signal::SIG_IGN {
                new.handler = old.handler;
            }
        }
        *tg.handlers.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(std::sync::Mutex::new(fresh));
        self.altstack = rvisor_syscalls::types::SigAltStack { ss_flags: rvisor_syscalls::flags::signal::SS_DISABLE, ..Default::default() };
        self.robust_list = (0, 0);
        tg.self_exec_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A vfork parent waits for this moment.
        tg.lock().vfork_done = true;
        tg.state_events.notify_all();
    }

    /// Makes the caller the only thread of its group before an exec: the others exit, and
    /// the caller takes the group leader's id.
    pub fn become_sole_thread(&mut self) -> Result<(), Errno> {
        let tg = self.tg().clone();
        let others: Vec<_> = tg.lock().threads.iter().filter(|h| !Arc::ptr_eq(h, &self.handle)).cloned().collect();
        if others.is_empty() {
            return Ok(());
        }
        for h in &others {
            h.exit_requested.store(true, std::sync::atomic::Ordering::SeqCst);
            h.kick();
        }
        loop {
            let r = super::wait::block_on(&[&tg.state_events], None, || {
                let g = tg.lock();
                if !matches!(g.state, super::thread_group::TgState::Running) {
                    return Some(Err(Errno::EINTR));
                }
                (g.threads.len() == 1).then_some(Ok(()))
            });
            match r {
                Ok(()) => break,
                Err(Errno::ERESTARTSYS) => {
                    // Only a kill of the group ends this wait; other signals wait for later.
                    super::wait::current_waker().clear_interrupt();
                    if tg.exit_status().is_some() {
                        return Err(Errno::EINTR);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        super::wait::current_waker().interrupt();
        let old_tid = self.tid();
        if old_tid != tg.tgid {
            let mut tables = self.kernel.tables();
            tables.tasks.remove(&old_tid);
            self.handle.set_tid(tg.tgid);
            tables.tasks.insert(tg.tgid, self.handle.clone());
        }
        Ok(())
    }
}

/// Registers at process entry: everything zero but the entry point, stack and the user
/// code/stack segments.
pub fn initial_regs(entry: u64, sp: u64) -> Regs {
    // SAFETY: user_regs_struct is a plain struct of integers; all-zero is valid.
    let mut r: Regs = unsafe { std::mem::zeroed() };
    r.rip = entry;
    r.rsp = sp;
    r.cs = 0x33; // __USER_CS
    r.ss = 0x2b; // __USER_DS
    r.eflags = 0x202; // IF
    r
}
