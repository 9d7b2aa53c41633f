"""Two processes increment one counter row of a SQLite database 200 times each, every
increment in its own write transaction, waiting for each other through SQLite's busy
timeout (file locks). Prints the journal mode, the final count and whether both children
succeeded: `sqlite_counter.py DIR MODE` (MODE: delete or wal)."""
import os
import sqlite3
import sys

folder, mode = sys.argv[1], sys.argv[2]
path = os.path.join(folder, "counter-%s.db" % mode)
for suffix in ("", "-wal", "-shm", "-journal"):
    try:
        os.unlink(path + suffix)
    except FileNotFoundError:
        pass
c = sqlite3.connect(path, timeout=120)
got_mode = c.execute("pragma journal_mode=%s" % mode).fetchone()[0]
c.execute("create table t(k integer primary key, v integer)")
c.execute("insert into t values(1, 0)")
c.commit()
c.close()

pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            w = sqlite3.connect(path, timeout=120, isolation_level=None)
            for _ in range(200):
                w.execute("begin immediate")
                w.execute("update t set v = v + 1 where k = 1")
                w.execute("commit")
            w.close()
        except Exception as e:  # reported through the exit status and stderr
            sys.stderr.write("child: %r\n" % (e,))
            status = 1
        os._exit(status)
    pids.append(pid)
ok = all(os.waitpid(p, 0)[1] == 0 for p in pids)
c = sqlite3.connect(path)
print(got_mode, c.execute("select v from t").fetchone()[0], "children ok" if ok else "children FAILED")
c.close()
