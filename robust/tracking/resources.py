"""Per-process CPU %, peak RSS and GPU utilisation/memory, sampled in a background thread.

MLflow's own system metrics (also enabled) are machine-wide; these are for this process, so
two stages sharing a machine do not see each other's load. CPU % follows psutil's convention:
100 means one core fully busy, so a 2-core machine tops out at 200, and it is exact (CPU
seconds over wall seconds). Peak RSS is exact on Linux: the kernel's high-water mark
(``VmHWM``), read and reset at window boundaries; elsewhere it falls back to sampling, which
can miss peaks shorter than the interval.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Usage:
    """What one interval cost: wall seconds, CPU %, peak RSS, and GPU figures when present."""

    wall_s: float
    cpu_percent: float
    peak_rss_mb: float
    gpu_utilization_percent: float | None = None
    gpu_peak_memory_mb: float | None = None


@dataclass
class _Window:
    t0: float
    cpu0: float
    peak_rss: int
    gpu_util: list[float] = field(default_factory=list)
    gpu_mem: float = 0.0


class _Gpu:
    """NVML handles of the visible GPUs; absent GPU or driver is not an error."""

    def __init__(self) -> None:
        self.handles = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception:
            self.handles = []

    def sample(self) -> tuple[float, float] | None:
        """Mean utilisation % and total used memory (MB) over the visible GPUs."""
        if not self.handles:
            return None
        util = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
        mem = [self._nvml.nvmlDeviceGetMemoryInfo(h).used for h in self.handles]
        return sum(util) / len(util), sum(mem) / 2**20


class ResourceMonitor:
    """Samples RSS (and GPUs) every ``interval`` seconds; ``begin``/``end`` bracket intervals.

    Several windows may be open at once (the whole stage and one phase).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._proc = psutil.Process()
        self._gpu = _Gpu()
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="robust-resources", daemon=True)

    @property
    def has_gpu(self) -> bool:
        return bool(self._gpu.handles)

    def start(self) -> ResourceMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval + 1)

    @staticmethod
    def _hwm() -> int:
        """The kernel's peak RSS (bytes) since the last reset, or 0 where unavailable."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def _reset_hwm() -> None:
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    def _fold_hwm(self) -> None:
        """Fold the high-water mark into every open window (call with the lock held)."""
        hwm = self._hwm()
        for w in self._windows.values():
            w.peak_rss = max(w.peak_rss, hwm)

    def _cpu_seconds(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def _rss(self) -> int:
        try:
            return self._proc.memory_info().rss
        except psutil.Error:
            return 0

    def _sample(self) -> None:
        rss = self._rss()
        gpu = self._gpu.sample()
        with self._lock:
            for w in self._windows.values():
                w.peak_rss = max(w.peak_rss, rss)
                if gpu is not None:
                    w.gpu_util.append(gpu[0])
                    w.gpu_mem = max(w.gpu_mem, gpu[1])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def begin(self, name: str) -> None:
        """Open the window ``name``."""
        with self._lock:
            self._fold_hwm()
            self._reset_hwm()
            self._windows[name] = _Window(time.perf_counter(), self._cpu_seconds(), self._rss())
        self._sample()

    def end(self, name: str) -> Usage:
        """Close the window ``name`` and return what it used."""
        self._sample()
        with self._lock:
            self._fold_hwm()
            w = self._windows.pop(name)
        wall = max(time.perf_counter() - w.t0, 1e-9)
        cpu = 100.0 * (self._cpu_seconds() - w.cpu0) / wall
        usage = Usage(wall, cpu, w.peak_rss / 2**20)
        if self.has_gpu and w.gpu_util:
            usage.gpu_utilization_percent = sum(w.gpu_util) / len(w.gpu_util)
            usage.gpu_peak_memory_mb = w.gpu_mem
        return usage
