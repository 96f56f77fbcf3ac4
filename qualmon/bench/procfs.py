"""What /proc tells of a process (RSS, CPU, fds), and a free loopback port: the benches' probes."""

from __future__ import annotations

import os
import socket

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; after the ")" split, 12 and 13.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
