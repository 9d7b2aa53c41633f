//! Random syscalls from a guest: the sentry must neither panic nor hang, and the guest's
//! processes must only die of the signals bad memory accesses deserve.

use rvisor_tests::*;

#[test]
fn random_syscalls_with_hostile_arguments_do_not_break_the_sentry() {
    for seed in ["1", "7", "4242"] {
        let o = run_rvisor_do(&[], &["--cwd", "/"], &Cmd::new(progs::FUZZ).args(["40", seed]));
        assert!(!looks_like_panic(&o.stderr), "seed {seed}: {}", o.dump());
        o.assert_code(0);
        assert_eq!(o.stdout_str(), "batches done: 40, odd deaths: 0\n", "seed {seed}: {}", o.dump());
    }
}
