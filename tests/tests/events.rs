//! Event and channel files: epoll, eventfd and AF_UNIX socket pairs, compared with native.

use rvisor_tests::*;

#[test]
fn epoll_level_edge_oneshot_nesting_and_eventfd_match_native() {
    assert_same(&Cmd::new(progs::EPOLL));
}

#[test]
fn unix_socketpair_streams_datagrams_and_seqpackets_match_native() {
    assert_same(&Cmd::new(progs::SOCKETPAIR));
}

#[test]
fn python_asyncio_runs_on_epoll_and_a_socketpair() {
    require_program("/usr/bin/python3", "python3");
    let (native, _) = assert_same(
        &Cmd::new("/usr/bin/python3").args(["-c", "import asyncio; print(asyncio.run(asyncio.sleep(0.01, result=5)))"]),
    );
    assert_eq!(native.stdout_str(), "5\n", "{}", native.dump());
}
