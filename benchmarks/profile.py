"""Summarise a py-spy collapsed-stack file (`make bench` with BENCH_PROFILE=DIR).

python -m benchmarks.profile FILE [N]: the N functions (default 30) with the largest share of
samples, inclusive (on the stack at all) and by self time (at the top of the stack). Idle
samples — a thread waiting in select/epoll, a lock or a queue — are counted apart, so the
shares are of CPU, not of wall time.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# Frames at the top of a waiting thread's stack: py-spy counts a thread blocked in a socket read
# as active, but waiting for the API server is not work.
IDLE = ("select (selectors.py", "poll (selectors.py", "wait (threading.py", "_worker (concurrent",
        "get (queue.py", "_wait_for_tstate_lock", "sleep (", "SSLSocket.read (ssl.py",
        "poll_wait_for_socket.<locals>.do_poll")  # fmt: skip


def main(argv: list[str]) -> int:
    path, top = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 30
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or any(frames[-1].startswith(i) for i in IDLE):
            idle += count
            continue
        busy += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{busy} busy samples, {idle} idle")
    for title, counter in (("inclusive", inclusive), ("self", self_time)):
        print(f"-- {title}")
        for frame, count in counter.most_common(top):
            print(f"{count / max(busy, 1):6.1%}  {frame[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
