"""Acceptance workload for rvisor: threads, subprocess, multiprocessing, signals, fork.

Run as `python3 acceptance.py`, natively and in `rvisor do`; the test compares stdout and the
exit status. Every line is a deterministic fact (no pids, addresses or times).
"""

import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time


def say(*args):
    # Flushed at once: forked children must not inherit buffered output.
    print(*args, flush=True)


def square(x):
    return x * x


def threads_on_a_shared_queue():
    work, results = queue.Queue(), queue.Queue()

    def worker():
        done = 0
        while True:
            item = work.get()
            if item is None:
                work.task_done()
                results.put(("done", done))
                return
            results.put(("item", item * 2))
            done += 1
            work.task_done()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(1000):
        work.put(i)
    for _ in threads:
        work.put(None)
    work.join()
    for t in threads:
        t.join()
    total = processed = finished = 0
    while not results.empty():
        kind, value = results.get()
        if kind == "item":
            total += value
        else:
            processed += value
            finished += 1
    say("threads: workers finished:", finished, "items processed:", processed, "sum:", total)
    say("threads: all joined:", not any(t.is_alive() for t in threads))


def subprocess_run():
    r = subprocess.run(["sh", "-c", "echo hi"], capture_output=True)
    say("subprocess.run:", r.returncode, r.stdout, r.stderr)
    r = subprocess.run(["sh", "-c", "echo err >&2; exit 3"], capture_output=True)
    say("subprocess.run with stderr and status:", r.returncode, r.stdout, r.stderr)
    out = subprocess.check_output(["sh", "-c", "read x; echo got $x"], input=b"line\n")
    say("subprocess with stdin:", out)


def multiprocessing_pool():
    with multiprocessing.Pool(2) as pool:
        say("multiprocessing.Pool(2).map:", pool.map(square, range(10)))


def signal_to_self():
    got = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    os.kill(os.getpid(), signal.SIGUSR1)
    say("SIGUSR1 handler ran:", got == [signal.SIGUSR1])
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)


class Alarm(Exception):
    pass


def alarm_interrupts_sleep():
    def on_alarm(signum, frame):
        raise Alarm()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(1)
    start = time.monotonic()
    try:
        time.sleep(30)
        say("alarm: sleep was not interrupted")
    except Alarm:
        waited = time.monotonic() - start
        say("alarm: handler interrupted time.sleep:", 0.5 <= waited < 10)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def fork_and_waitpid():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    wpid, status = os.waitpid(pid, 0)
    say("fork: waitpid got the child:", wpid == pid, "exit code:", os.waitstatus_to_exitcode(status))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"from child")
        os._exit(0)
    os.close(w)
    data = os.read(r, 100)
    os.close(r)
    os.waitpid(pid, 0)
    say("fork: pipe from child:", data)


def main():
    threads_on_a_shared_queue()
    subprocess_run()
    multiprocessing_pool()
    signal_to_self()
    alarm_interrupts_sleep()
    fork_and_waitpid()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
