//! Futexes: the kernel-wide table of tasks waiting on guest memory words, and the
//! operations of futex(2) on it, plus what thread exit needs (the clear_child_tid wake and
//! the robust-list walk).
//!
//! # Model
//! A [`FutexTable`] maps a futex key (which word of which memory: private futexes are
//! per address space and address, shared ones per backing object and offset; the MM
//! computes it) to a FIFO of waiters. Each waiter has its own [`Waker`] (the blocked
//! task's), the bitset it waits with, and a `woken` flag that wakers set under the table
//! lock, so FUTEX_WAKE wakes exactly the waiters it counts and a waiter that timed out or
//! was interrupted after being woken still reports the wake-up (as Linux does).
//!
//! Guest words are read and changed through [`FutexMemory`] while the table lock is held,
//! so FUTEX_WAIT's compare-and-sleep is atomic with respect to every waker; the MM gives a
//! real atomic on the word's memory-file page, so FUTEX_WAKE_OP's read-modify-write and the
//! robust-list OWNER_DIED update are atomic against guest threads as well.
//! Lock order: the futex table, then the address space (never the reverse).
//!
//! One lock guards the whole table; Linux hashes keys to buckets with one lock each. A
//! sharded table can replace it without changing the interface.
//!
//! Priority-inheritance futexes (FUTEX_LOCK_PI and friends) are not implemented: the
//! syscall returns ENOSYS for them, which glibc's PI mutexes report as an error.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rvisor_syscalls::flags::futex::{FUTEX_BITSET_MATCH_ANY, FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS};
use rvisor_syscalls::Errno;

use super::wait::{block_on, current_waker, Waker};
use crate::mm::MemoryManager;

/// The most robust-list entries walked at thread exit (Linux's ROBUST_LIST_LIMIT), so a
/// circular list cannot hang the exit.
pub const ROBUST_LIST_LIMIT: usize = 2048;

/// What the futex code needs from an address space.
pub trait FutexMemory {
    /// Identifies a futex word: equal keys are the same word.
    type Key: Eq + Hash + Clone + Send;

    /// The key of the 4-byte-aligned word at `addr` (EFAULT if it is not mapped).
    fn futex_key(&self, addr: u64, private: bool) -> Result<Self::Key, Errno>;

    /// Runs `f` on the word at `addr` as an atomic (EFAULT if not readable, or not writable
    /// when `write`).
    fn atomic_u32<R>(&self, addr: u64, write: bool, f: impl FnOnce(&AtomicU32) -> R) -> Result<R, Errno>;

    /// Reads a 64-bit word (robust-list pointers).
    fn read_u64(&self, addr: u64) -> Result<u64, Errno>;
}

// ---------------------------------------------------------------------------------------
// The memory manager's side: keys (private: address space and address; shared: where the
// word lives in the memory file) and real atomics on the memory-file mapping, so
// FUTEX_WAKE_OP and the robust-list update are atomic against guest threads too.

impl FutexMemory for MemoryManager {
    type Key = crate::mm::FutexKey;

    fn futex_key(&self, addr: u64, private: bool) -> Result<crate::mm::FutexKey, Errno> {
        MemoryManager::futex_key(self, addr, private)
    }

    fn atomic_u32<R>(&self, addr: u64, write: bool, f: impl FnOnce(&AtomicU32) -> R) -> Result<R, Errno> {
        MemoryManager::atomic_u32(self, addr, write, f)
    }

    fn read_u64(&self, addr: u64) -> Result<u64, Errno> {
        self.read_obj(addr)
    }
}

/// The table type the kernel holds (`Kernel::futex`).
pub type KernelFutexTable = FutexTable<<MemoryManager as FutexMemory>::Key>;

/// The sandbox's futex table (one per [`Kernel`](super::Kernel)).
pub fn table_of(k: &super::Kernel) -> &KernelFutexTable {
    &k.futex
}

// ---------------------------------------------------------------------------------------
// The table.

struct Waiter<K> {
    waker: Arc<Waker>,
    bitset: u32,
    /// Set (under the table lock) by whoever removed this waiter to wake it.
    woken: AtomicBool,
    /// The key this waiter is queued under (changes on requeue); only touched with the
    /// table lock held.
    key: Mutex<K>,
}

impl<K> Waiter<K> {
    fn key(&self) -> MutexGuard<'_, K> {
        self.key.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every futex waiter of the sandbox.
pub struct FutexTable<K> {
    queues: Mutex<HashMap<K, VecDeque<Arc<Waiter<K>>>>>,
}

impl<K: Eq + Hash + Clone> Default for FutexTable<K> {
    fn default() -> Self {
        FutexTable { queues: Mutex::new(HashMap::new()) }
    }
}

/// One decoded FUTEX_WAKE_OP operation (the `val3` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeOp {
    op: u32,
    cmp: u32,
    oparg: u32,
    cmparg: i32,
}

/// FUTEX_OP_* and FUTEX_OP_CMP_* (linux/futex.h).
pub mod wake_op {
    pub const FUTEX_OP_SET: u32 = 0;
    pub const FUTEX_OP_ADD: u32 = 1;
    pub const FUTEX_OP_OR: u32 = 2;
    pub const FUTEX_OP_ANDN: u32 = 3;
    pub const FUTEX_OP_XOR: u32 = 4;
    /// Flag on `op`: use `1 << oparg` as the operand.
    pub const FUTEX_OP_OPARG_SHIFT: u32 = 8;
    pub const FUTEX_OP_CMP_EQ: u32 = 0;
    pub const FUTEX_OP_CMP_NE: u32 = 1;
    pub const FUTEX_OP_CMP_LT: u32 = 2;
    pub const FUTEX_OP_CMP_LE: u32 = 3;
    pub const FUTEX_OP_CMP_GT: u32 = 4;
    pub const FUTEX_OP_CMP_GE: u32 = 5;

    /// `FUTEX_OP(op, oparg, cmp, cmparg)`.
    pub const fn encode(op: u32, oparg: u32, cmp: u32, cmparg: u32) -> u32 {
        ((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff)
    }
}

/// Sign-extends the low 12 bits.
fn sext12(v: u32) -> i32 {
    ((v << 20) as i32) >> 20
}

impl WakeOp {
    /// Decodes `val3` like Linux: ENOSYS for an unknown operation; an out-of-range shift
    /// is masked to 0..=31 (Linux warns and does the same).
    pub fn decode(encoded: u32) -> Result<WakeOp, Errno> {
        use wake_op::*;
        let shift = (encoded >> 28) & FUTEX_OP_OPARG_SHIFT != 0;
        let op = (encoded >> 28) & 7;
        let cmp = (encoded >> 24) & 15;
        let mut oparg = sext12(encoded >> 12) as u32;
        let cmparg = sext12(encoded);
        if shift {
            oparg = 1u32 << (oparg & 31);
        }
        if op > FUTEX_OP_XOR {
            return Err(Errno::ENOSYS);
        }
        Ok(WakeOp { op, cmp, oparg, cmparg })
    }

    /// The new value of a word holding `old`.
    fn apply(&self, old: u32) -> u32 {
        use wake_op::*;
        match self.op {
            FUTEX_OP_SET => self.oparg,
            FUTEX_OP_ADD => old.wrapping_add(self.oparg),
            FUTEX_OP_OR => old | self.oparg,
            FUTEX_OP_ANDN => old & !self.oparg,
            _ => old ^ self.oparg,
        }
    }

    /// Whether the old value passes the comparison (ENOSYS for an unknown comparison,
    /// reported after the operation was applied, as in Linux).
    fn compare(&self, old: u32) -> Result<bool, Errno> {
        use wake_op::*;
        let (a, b) = (old as i32, self.cmparg);
        Ok(match self.cmp {
            FUTEX_OP_CMP_EQ => a == b,
            FUTEX_OP_CMP_NE => a != b,
            FUTEX_OP_CMP_LT => a < b,
            FUTEX_OP_CMP_LE => a <= b,
            FUTEX_OP_CMP_GT => a > b,
            FUTEX_OP_CMP_GE => a >= b,
            _ => return Err(Errno::ENOSYS),
        })
    }
}

fn check_aligned(addr: u64) -> Result<(), Errno> {
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl<K: Eq + Hash + Clone> FutexTable<K> {
    pub fn new() -> FutexTable<K> {
        FutexTable::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, VecDeque<Arc<Waiter<K>>>>> {
        // The map stays structurally valid if a holder panicked.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes and wakes up to `n` waiters of `key` whose bitset meets `bitset`.
    fn wake_locked(map: &mut HashMap<K, VecDeque<Arc<Waiter<K>>>>, key: &K, n: usize, bitset: u32) -> usize {
        let Some(q) = map.get_mut(key) else { return 0 };
        let mut woken = 0;
        let mut i = 0;
        while i < q.len() && woken < n {
            if q[i].bitset & bitset == 0 {
                i += 1;
                continue;
            }
            if let Some(w) = q.remove(i) {
                w.woken.store(true, Ordering::SeqCst);
                w.waker.wake();
                woken += 1;
            }
        }
        if q.is_empty() {
            map.remove(key);
        }
        woken
    }

    /// FUTEX_WAIT / FUTEX_WAIT_BITSET: sleeps while the word at `addr` holds `val` until a
    /// wake whose bitset meets `bitset`, the deadline (ETIMEDOUT) or a signal
    /// (ERESTARTSYS). EAGAIN if the word does not hold `val`; EINVAL for an unaligned
    /// address or an empty bitset; EFAULT for an unreadable word.
    pub fn wait<M: FutexMemory<Key = K>>(&self, mem: &M, addr: u64, private: bool, val: u32, bitset: u32, deadline: Option<Instant>) -> Result<(), Errno> {
        check_aligned(addr)?;
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let key = mem.futex_key(addr, private)?;
        let w = Arc::new(Waiter { waker: current_waker(), bitset, woken: AtomicBool::new(false), key: Mutex::new(key.clone()) });
        {
            let mut map = self.lock();
            let cur = mem.atomic_u32(addr, false, |a| a.load(Ordering::SeqCst))?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            map.entry(key).or_default().push_back(w.clone());
        }
        let r = block_on(&[], deadline, || w.woken.load(Ordering::SeqCst).then_some(Ok(())));
        if r.is_ok() {
            return Ok(());
        }
        let mut map = self.lock();
        if w.woken.load(Ordering::SeqCst) {
            // Woken just as the wait ended: the wake counted us, so report it.
            return Ok(());
        }
        let key = w.key().clone();
        if let Some(q) = map.get_mut(&key) {
            q.retain(|x| !Arc::ptr_eq(x, &w));
            if q.is_empty() {
                map.remove(&key);
            }
        }
        r
    }

    /// FUTEX_WAKE / FUTEX_WAKE_BITSET: wakes up to `n` waiters on `addr` whose bitset meets
    /// `bitset`; returns how many. EINVAL for an unaligned address or an empty bitset.
    pub fn wake<M: FutexMemory<Key = K>>(&self, mem: &M, addr: u64, private: bool, n: usize, bitset: u32) -> Result<usize, Errno> {
        check_aligned(addr)?;
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let key = mem.futex_key(addr, private)?;
        Ok(Self::wake_locked(&mut self.lock(), &key, n, bitset))
    }

    /// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `nr_wake` waiters on `addr` and moves
    /// up to `nr_requeue` of the rest to `addr2`. With `cmp`, EAGAIN unless the word at
    /// `addr` holds it. Returns the number woken plus the number moved.
    #[allow(clippy::too_many_arguments)]
    pub fn requeue<M: FutexMemory<Key = K>>(&self, mem: &M, addr: u64, addr2: u64, private: bool, nr_wake: usize, nr_requeue: usize, cmp: Option<u32>) -> Result<usize, Errno> {
        check_aligned(addr)?;
        check_aligned(addr2)?;
        let key1 = mem.futex_key(addr, private)?;
        let key2 = mem.futex_key(addr2, private)?;
        let mut map = self.lock();
        if let Some(expected) = cmp {
            let cur = mem.atomic_u32(addr, false, |a| a.load(Ordering::SeqCst))?;
            if cur != expected {
                return Err(Errno::EAGAIN);
            }
        }
        let woken = Self::wake_locked(&mut map, &key1, nr_wake, FUTEX_BITSET_MATCH_ANY);
        if key1 == key2 || nr_requeue == 0 {
            // Requeueing onto the same word changes nothing Linux-visible.
            let moved = if key1 == key2 { map.get(&key1).map_or(0, |q| q.len().min(nr_requeue)) } else { 0 };
            return Ok(woken + moved);
        }
        let mut moved = Vec::new();
        if let Some(q) = map.get_mut(&key1) {
            let k = q.len().min(nr_requeue);
            moved.extend(q.drain(..k));
            if q.is_empty() {
                map.remove(&key1);
            }
        }
        let count = moved.len();
        if count > 0 {
            for w in &moved {
                *w.key() = key2.clone();
            }
            map.entry(key2).or_default().extend(moved);
        }
        Ok(woken + count)
    }

    /// FUTEX_WAKE_OP: atomically applies `encoded_op` (the guest's `val3`, see [`WakeOp`];
    /// ENOSYS if it names no operation) to the word at `addr2`, wakes up to `nr_wake`
    /// waiters on `addr` and, if the old value of the word at `addr2` passes the
    /// comparison, up to `nr_wake2` waiters on `addr2`. Returns the total woken.
    #[allow(clippy::too_many_arguments)]
    pub fn wake_op<M: FutexMemory<Key = K>>(&self, mem: &M, addr: u64, addr2: u64, private: bool, nr_wake: usize, nr_wake2: usize, encoded_op: u32) -> Result<usize, Errno> {
        check_aligned(addr)?;
        check_aligned(addr2)?;
        let key1 = mem.futex_key(addr, private)?;
        let key2 = mem.futex_key(addr2, private)?;
        let op = WakeOp::decode(encoded_op)?;
        let mut map = self.lock();
        let old = mem.atomic_u32(addr2, true, |a| {
            match a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(op.apply(v))) {
                Ok(v) | Err(v) => v,
            }
        })?;
        let pass = op.compare(old)?;
        let mut woken = Self::wake_locked(&mut map, &key1, nr_wake, FUTEX_BITSET_MATCH_ANY);
        if pass {
            woken += Self::wake_locked(&mut map, &key2, nr_wake2, FUTEX_BITSET_MATCH_ANY);
        }
        Ok(woken)
    }

    /// Waiters queued on `key` (for tests and diagnostics).
    pub fn waiters(&self, key: &K) -> usize {
        self.lock().get(key).map_or(0, |q| q.len())
    }
}

/// The number of waiters a FUTEX_WAKE-style count from the guest wakes: Linux counts the
/// first wake before comparing, so 0 and negative counts wake one.
pub fn guest_wake_count(val: u32) -> usize {
    (val as i32).max(1) as usize
}

/// Wakes up to `n` waiters on the word at `addr` (any bitset); for thread exit's
/// CLONE_CHILD_CLEARTID (store 0, then wake 1). Linux does that wake as a *shared* futex
/// operation (`private = false`), and glibc's pthread_join waits with a shared wait to
/// match. Errors (a bad address) are ignored, like Linux.
pub fn wake_address<M: FutexMemory>(table: &FutexTable<M::Key>, mem: &M, addr: u64, private: bool, n: usize) -> usize {
    table.wake(mem, addr, private, n, FUTEX_BITSET_MATCH_ANY).unwrap_or(0)
}

/// One robust-list entry: the pointer with its PI flag (bit 0) split off.
fn fetch_robust_entry<M: FutexMemory>(mem: &M, addr: u64) -> Result<(u64, bool), Errno> {
    let v = mem.read_u64(addr)?;
    Ok((v & !1, v & 1 != 0))
}

/// Linux's handle_futex_death: the futex word at `uaddr` was held by the exiting `tid`.
/// Err stops the walk (a bad pointer).
fn futex_death<M: FutexMemory>(table: &FutexTable<M::Key>, mem: &M, uaddr: u64, tid: u32, pi: bool, pending: bool) -> Result<(), Errno> {
    check_aligned(uaddr)?;
    let uval = mem.atomic_u32(uaddr, false, |a| a.load(Ordering::SeqCst))?;
    // An unlock interrupted between releasing the word and waking: the word is 0 but a
    // waiter may sleep; wake one so it can take the lock.
    if pending && !pi && uval == 0 {
        let _ = table.wake(mem, uaddr, false, 1, FUTEX_BITSET_MATCH_ANY);
        return Ok(());
    }
    if uval & FUTEX_TID_MASK != tid {
        return Ok(());
    }
    // Set OWNER_DIED (keeping WAITERS) if the word is still ours.
    let prev = mem.atomic_u32(uaddr, true, |a| {
        a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| (v & FUTEX_TID_MASK == tid).then_some((v & FUTEX_WAITERS) | FUTEX_OWNER_DIED))
    })?;
    if let Ok(prev) = prev {
        // Wake even if OWNER_DIED was already set (recursive owner death). PI futexes
        // would be handed over by the PI code, which does not exist.
        if !pi && prev & FUTEX_WAITERS != 0 {
            let _ = table.wake(mem, uaddr, false, 1, FUTEX_BITSET_MATCH_ANY);
        }
    }
    Ok(())
}

/// Walks the robust futex list of an exiting thread (`head`: its `struct robust_list_head`
/// as set_robust_list registered it; `tid`: its thread id as the guest sees it). Every
/// futex still owned by `tid` gets FUTEX_OWNER_DIED and one waiter woken (as a shared
/// futex, like Linux; glibc's robust mutexes use shared futex operations for that reason).
/// At most [`ROBUST_LIST_LIMIT`] entries are visited; a bad pointer ends the walk quietly.
pub fn handle_robust_list<M: FutexMemory>(table: &FutexTable<M::Key>, mem: &M, head: u64, tid: u32) {
    // struct robust_list_head { struct robust_list list; long futex_offset;
    //                           struct robust_list *list_op_pending; }
    let Ok((mut entry, mut pi)) = fetch_robust_entry(mem, head) else { return };
    let Ok(offset) = mem.read_u64(head.wrapping_add(8)) else { return };
    let Ok((pending, pending_pi)) = fetch_robust_entry(mem, head.wrapping_add(16)) else { return };
    let futex_of = |e: u64| e.wrapping_add(offset);
    let mut limit = ROBUST_LIST_LIMIT;
    while entry != head {
        // Fetch the next entry first: the futex update may let another thread free it.
        let next = fetch_robust_entry(mem, entry);
        if entry != pending && futex_death(table, mem, futex_of(entry), tid, pi, false).is_err() {
            return;
        }
        let Ok((n, npi)) = next else { return };
        entry = n;
        pi = npi;
        limit -= 1;
        if limit == 0 {
            break;
        }
    }
    if pending != 0 {
        let _ = futex_death(table, mem, futex_of(pending), tid, pending_pi, true);
    }
}


#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use rvisor_syscalls::flags::mman::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

    use super::wake_op::*;
    use super::*;
    use crate::mm::testutil::new_mm;

    type Table = KernelFutexTable;

    struct Fixture {
        mm: Arc<MemoryManager>,
        table: Arc<Table>,
        base: u64,
    }

    fn fixture() -> Fixture {
        let (mm, _, _) = new_mm();
        let base = mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, None).unwrap();
        Fixture { mm: Arc::new(mm), table: Arc::new(Table::new()), base }
    }

    impl Fixture {
        fn set(&self, addr: u64, v: u32) {
            self.mm.write_obj(addr, &v).unwrap();
        }

        fn get(&self, addr: u64) -> u32 {
            self.mm.read_obj(addr).unwrap()
        }

        fn key(&self, addr: u64, private: bool) -> <MemoryManager as FutexMemory>::Key {
            FutexMemory::futex_key(&*self.mm, addr, private).unwrap()
        }

        /// A thread that waits on `addr` for `val` with `bitset`; it first sends its waker.
        fn waiter(&self, addr: u64, val: u32, bitset: u32, timeout: Option<Duration>) -> (Arc<Waker>, JoinHandle<Result<(), Errno>>) {
            let (mm, table) = (self.mm.clone(), self.table.clone());
            let (tx, rx) = mpsc::channel();
            let h = std::thread::spawn(move || {
                tx.send(current_waker()).unwrap();
                table.wait(&*mm, addr, true, val, bitset, timeout.map(|d| Instant::now() + d))
            });
            (rx.recv().unwrap(), h)
        }

        /// Waits (without sleeping blindly) until `n` tasks are queued on `addr`.
        fn until_queued(&self, addr: u64, n: usize) {
            let key = self.key(addr, true);
            let give_up = Instant::now() + Duration::from_secs(10);
            while self.table.waiters(&key) != n {
                assert!(Instant::now() < give_up, "waiters never queued");
                std::thread::yield_now();
            }
        }
    }

    #[test]
    fn wait_with_a_stale_value_is_eagain_and_does_not_block() {
        let f = fixture();
        f.set(f.base, 5);
        assert_eq!(f.table.wait(&*f.mm, f.base, true, 4, FUTEX_BITSET_MATCH_ANY, None), Err(Errno::EAGAIN));
        assert_eq!(f.table.waiters(&f.key(f.base, true)), 0);
    }

    #[test]
    fn bad_arguments_are_einval_or_efault() {
        let f = fixture();
        let any = FUTEX_BITSET_MATCH_ANY;
        assert_eq!(f.table.wait(&*f.mm, f.base + 2, true, 0, any, None), Err(Errno::EINVAL), "unaligned");
        assert_eq!(f.table.wake(&*f.mm, f.base + 1, true, 1, any), Err(Errno::EINVAL), "unaligned");
        assert_eq!(f.table.wait(&*f.mm, f.base, true, 0, 0, None), Err(Errno::EINVAL), "empty bitset");
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 1, 0), Err(Errno::EINVAL), "empty bitset");
        assert_eq!(f.table.wait(&*f.mm, 0x1000, true, 0, any, None), Err(Errno::EFAULT), "unmapped");
        let op = encode(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0);
        assert_eq!(f.table.wake_op(&*f.mm, f.base, 0x1000, true, 1, 1, op), Err(Errno::EFAULT));
        assert_eq!(f.table.wake_op(&*f.mm, f.base, f.base + 4, true, 1, 1, encode(7, 0, 0, 0)), Err(Errno::ENOSYS));
        assert_eq!(f.get(f.base + 4), 0, "an unknown operation changes nothing");
        assert_eq!(WakeOp::decode(encode(6, 0, 0, 0)), Err(Errno::ENOSYS), "unknown op");
    }

    #[test]
    fn wake_wakes_exactly_n_waiters_and_reports_the_count() {
        let f = fixture();
        let hs: Vec<_> = (0..3).map(|_| f.waiter(f.base, 0, FUTEX_BITSET_MATCH_ANY, None).1).collect();
        f.until_queued(f.base, 3);
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 2, FUTEX_BITSET_MATCH_ANY), Ok(2));
        assert_eq!(f.table.waiters(&f.key(f.base, true)), 1);
        assert_eq!(f.table.wake(&*f.mm, f.base, true, usize::MAX, FUTEX_BITSET_MATCH_ANY), Ok(1));
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 5, FUTEX_BITSET_MATCH_ANY), Ok(0));
        for h in hs {
            assert_eq!(h.join().unwrap(), Ok(()));
        }
        assert_eq!(guest_wake_count(0), 1, "Linux wakes one for a count of 0");
        assert_eq!(guest_wake_count(u32::MAX), 1, "and for a negative count");
        assert_eq!(guest_wake_count(i32::MAX as u32), i32::MAX as usize);
    }

    #[test]
    fn wake_bitset_wakes_only_waiters_whose_bitset_meets_it() {
        let f = fixture();
        let (_, a) = f.waiter(f.base, 0, 0b01, None);
        f.until_queued(f.base, 1);
        let (_, b) = f.waiter(f.base, 0, 0b10, None);
        f.until_queued(f.base, 2);
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 10, 0b100), Ok(0));
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 10, 0b10), Ok(1));
        assert_eq!(b.join().unwrap(), Ok(()));
        assert_eq!(f.table.waiters(&f.key(f.base, true)), 1);
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 10, FUTEX_BITSET_MATCH_ANY), Ok(1));
        assert_eq!(a.join().unwrap(), Ok(()));
    }

    #[test]
    fn a_wait_past_its_deadline_is_etimedout_and_leaves_the_queue() {
        let f = fixture();
        let start = Instant::now();
        let r = f.table.wait(&*f.mm, f.base, true, 0, FUTEX_BITSET_MATCH_ANY, Some(start + Duration::from_millis(30)));
        assert_eq!(r, Err(Errno::ETIMEDOUT));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(f.table.waiters(&f.key(f.base, true)), 0);
        assert_eq!(f.table.wake(&*f.mm, f.base, true, 1, FUTEX_BITSET_MATCH_ANY), Ok(0));
    }

    #[test]
    fn an_interrupted_wait_is_erestartsys() {
        let f = fixture();
        let (waker, h) = f.waiter(f.base, 0, FUTEX_BITSET_MATCH_ANY, None);
        f.until_queued(f.base, 1);
        waker.interrupt();
        assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
        assert_eq!(f.table.waiters(&f.key(f.base, true)), 0);
    }

    #[test]
    fn requeue_wakes_some_and_moves_the_rest_to_the_second_word() {
        let f = fixture();
        let (a1, a2) = (f.base, f.base + 64);
        let hs: Vec<_> = (0..4).map(|_| f.waiter(a1, 0, FUTEX_BITSET_MATCH_ANY, None).1).collect();
        f.until_queued(a1, 4);
        f.set(a1, 7);
        assert_eq!(f.table.requeue(&*f.mm, a1, a2, true, 1, 2, Some(8)), Err(Errno::EAGAIN), "CMP_REQUEUE value mismatch");
        assert_eq!(f.table.requeue(&*f.mm, a1, a2, true, 1, 2, Some(7)), Ok(3));
        assert_eq!(f.table.waiters(&f.key(a1, true)), 1);
        assert_eq!(f.table.waiters(&f.key(a2, true)), 2);
        // The moved waiters now answer wakes on the second word only.
        assert_eq!(f.table.wake(&*f.mm, a2, true, 10, FUTEX_BITSET_MATCH_ANY), Ok(2));
        assert_eq!(f.table.requeue(&*f.mm, a1, a2, true, 0, 10, None), Ok(1));
        assert_eq!(f.table.wake(&*f.mm, a2, true, 10, FUTEX_BITSET_MATCH_ANY), Ok(1));
        for h in hs {
            assert_eq!(h.join().unwrap(), Ok(()));
        }
    }

    #[test]
    fn a_requeued_waiter_that_times_out_leaves_its_new_queue() {
        let f = fixture();
        let (a1, a2) = (f.base, f.base + 8);
        let (waker, h) = f.waiter(a1, 0, FUTEX_BITSET_MATCH_ANY, None);
        f.until_queued(a1, 1);
        assert_eq!(f.table.requeue(&*f.mm, a1, a2, true, 0, 1, None), Ok(1));
        waker.interrupt();
        assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
        assert_eq!(f.table.waiters(&f.key(a2, true)), 0);
    }

    #[test]
    fn wake_op_decodes_and_applies_every_operation() {
        let cases = [
            (FUTEX_OP_SET, 9, 5, 9),
            (FUTEX_OP_ADD, 3, 5, 8),
            (FUTEX_OP_ADD, 0xfff, 5, 4), // oparg -1
            (FUTEX_OP_OR, 0b1010, 0b0101, 0b1111),
            (FUTEX_OP_ANDN, 0b0110, 0b0111, 0b0001),
            (FUTEX_OP_XOR, 0b0110, 0b0101, 0b0011),
            (FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 4, 0, 16),
            (FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 31, 1, 0x8000_0001),
        ];
        for (op, oparg, old, new) in cases {
            let w = WakeOp::decode(encode(op, oparg, FUTEX_OP_CMP_EQ, 0)).unwrap();
            assert_eq!(w.apply(old), new, "op {op} oparg {oparg}");
        }
        let cmp = |c, arg, old| WakeOp::decode(encode(FUTEX_OP_SET, 0, c, arg)).unwrap().compare(old);
        assert_eq!(cmp(FUTEX_OP_CMP_EQ, 3, 3), Ok(true));
        assert_eq!(cmp(FUTEX_OP_CMP_NE, 3, 3), Ok(false));
        assert_eq!(cmp(FUTEX_OP_CMP_LT, 0, u32::MAX), Ok(true), "signed: -1 < 0");
        assert_eq!(cmp(FUTEX_OP_CMP_LE, 0xfff, u32::MAX), Ok(true), "cmparg -1");
        assert_eq!(cmp(FUTEX_OP_CMP_GT, 1, 2), Ok(true));
        assert_eq!(cmp(FUTEX_OP_CMP_GE, 2, 1), Ok(false));
        assert_eq!(cmp(9, 0, 0), Err(Errno::ENOSYS));
    }

    #[test]
    fn wake_op_changes_the_second_word_and_wakes_it_only_if_the_comparison_holds() {
        let f = fixture();
        let (a1, a2) = (f.base, f.base + 4);
        let (_, h1) = f.waiter(a1, 0, FUTEX_BITSET_MATCH_ANY, None);
        f.until_queued(a1, 1);
        let (_, h2) = f.waiter(a2, 0, FUTEX_BITSET_MATCH_ANY, None);
        f.until_queued(a2, 1);
        // old value 0 > 0 fails: only the first word's waiter wakes.
        let op = encode(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_GT, 0);
        assert_eq!(f.table.wake_op(&*f.mm, a1, a2, true, 1, 1, op), Ok(1));
        assert_eq!(f.get(a2), 5);
        assert_eq!(h1.join().unwrap(), Ok(()));
        assert_eq!(f.table.waiters(&f.key(a2, true)), 1);
        // old value 5 > 0 holds: the second word's waiter wakes too.
        assert_eq!(f.table.wake_op(&*f.mm, a1, a2, true, 1, 1, op), Ok(1));
        assert_eq!(f.get(a2), 10);
        assert_eq!(h2.join().unwrap(), Ok(()));
    }

    #[test]
    fn wake_address_wakes_a_shared_waiter_after_the_word_is_cleared() {
        let f = fixture();
        f.set(f.base, 42);
        let (mm, table, addr) = (f.mm.clone(), f.table.clone(), f.base);
        let (tx, rx) = mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            tx.send(()).unwrap();
            table.wait(&*mm, addr, false, 42, FUTEX_BITSET_MATCH_ANY, None)
        });
        rx.recv().unwrap();
        let key = f.key(addr, false);
        while f.table.waiters(&key) != 1 {
            std::thread::yield_now();
        }
        f.set(addr, 0);
        assert_eq!(wake_address(&f.table, &*f.mm, addr, false, 1), 1);
        assert_eq!(h.join().unwrap(), Ok(()));
        assert_eq!(wake_address(&f.table, &*f.mm, 0x1000, false, 1), 0, "bad addresses are ignored");
    }

    #[test]
    fn robust_list_marks_owned_futexes_owner_died_and_wakes_their_waiters() {
        let f = fixture();
        const TID: u32 = 77;
        // head at base; three entries at base+0x100, +0x200, +0x300 with the futex word at
        // entry + 16 (futex_offset); the second is owned by someone else, the third is the
        // pending one (also on the list) and only processed once.
        let head = f.base;
        let e = [f.base + 0x100, f.base + 0x200, f.base + 0x300];
        let off = 16u64;
        f.mm.write_obj(head, &e[0]).unwrap();
        f.mm.write_obj(head + 8, &off).unwrap();
        f.mm.write_obj(head + 16, &e[2]).unwrap();
        f.mm.write_obj(e[0], &e[1]).unwrap();
        f.mm.write_obj(e[1], &e[2]).unwrap();
        f.mm.write_obj(e[2], &head).unwrap();
        f.set(e[0] + off, TID | FUTEX_WAITERS);
        f.set(e[1] + off, 5 | FUTEX_WAITERS);
        f.set(e[2] + off, TID);
        // A shared waiter on the first futex.
        let (mm, table, w) = (f.mm.clone(), f.table.clone(), e[0] + off);
        let h = std::thread::spawn(move || table.wait(&*mm, w, false, TID | FUTEX_WAITERS, FUTEX_BITSET_MATCH_ANY, None));
        let key = f.key(w, false);
        while f.table.waiters(&key) != 1 {
            std::thread::yield_now();
        }
        handle_robust_list(&f.table, &*f.mm, head, TID);
        assert_eq!(h.join().unwrap(), Ok(()));
        assert_eq!(f.get(e[0] + off), FUTEX_OWNER_DIED | FUTEX_WAITERS);
        assert_eq!(f.get(e[1] + off), 5 | FUTEX_WAITERS, "not ours: untouched");
        assert_eq!(f.get(e[2] + off), FUTEX_OWNER_DIED, "pending entry handled once");
    }

    #[test]
    fn robust_list_walk_is_bounded_and_tolerates_bad_pointers() {
        let f = fixture();
        // A cycle that never returns to the head: the walk stops at the limit.
        let head = f.base;
        let a = f.base + 0x100;
        f.mm.write_obj(head, &a).unwrap();
        f.mm.write_obj(head + 8, &8u64).unwrap();
        f.mm.write_obj(head + 16, &0u64).unwrap();
        f.mm.write_obj(a, &a).unwrap();
        f.set(a + 8, 3);
        handle_robust_list(&f.table, &*f.mm, head, 3);
        assert_eq!(f.get(a + 8), FUTEX_OWNER_DIED);
        // A pointer into unmapped memory ends the walk quietly; so does a bad head.
        f.mm.write_obj(a, &0xdead_0000u64).unwrap();
        handle_robust_list(&f.table, &*f.mm, head, 3);
        handle_robust_list(&f.table, &*f.mm, 0x10, 3);
    }
}
