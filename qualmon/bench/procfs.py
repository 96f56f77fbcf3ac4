"""What /proc tells of a process (RSS, CPU, fds, children, environment) and of the machine
(CPU), and a free loopback port: the benches' probes."""

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


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`, by pid (a scan of /proc: no kernel option
    needed, as /proc/<pid>/task/<tid>/children would)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:  # ppid: field 4 of stat, 2 after the ")" split
            found.append(int(entry))
    return sorted(found)


def environ_of(pid: int) -> dict[str, str]:
    """A process's environment as it started (readable for one's own processes)."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot, summed over cores:
    busy is user + nice + system + irq + softirq; stolen is what a VM's host gave others."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS
