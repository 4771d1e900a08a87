"""Energy and CO2 per phase and in total, from codecarbon's offline tracker (no network).

codecarbon measures the CPU through RAPL when the kernel exposes it, and otherwise estimates
it from the CPU's TDP and load; GPUs through NVML; RAM from its size. ``method`` says which, and
an estimate is labelled as one. The country for the carbon intensity is ``ROBUST_CO2_COUNTRY``
(ISO 3166 alpha-3, default USA).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass


@dataclass
class Energy:
    """Energy (kWh) and emissions (kg CO2-eq) of one interval."""

    kwh: float
    kg_co2: float


_CPU_MODES = {
    "intel_rapl": "RAPL",
    "cpu_load": "TDP estimate (TDP x CPU load)",
    "constant": "TDP estimate (constant)",
    "intel_power_gadget": "Intel Power Gadget",
    "apple_powermetrics": "powermetrics",
}


class EnergyMeter:
    """Wraps one ``OfflineEmissionsTracker``; phases are codecarbon tasks (not nestable).

    ``start`` returns at once: codecarbon's hardware probe (about 1.2 s, mostly waiting) runs
    in a thread, overlapping the tracking store's start-up; every other method waits for it.
    """

    def __init__(self) -> None:
        from codecarbon import OfflineEmissionsTracker  # its import sets its logger to INFO

        for name in ("codecarbon", "apscheduler"):
            logging.getLogger(name).setLevel(logging.ERROR)

        self._tracker = OfflineEmissionsTracker(
            country_iso_code=os.environ.get("ROBUST_CO2_COUNTRY", "USA"),
            save_to_file=False,
            log_level="error",
            tracking_mode="process",
            allow_multiple_runs=True,
        )

    def start(self) -> EnergyMeter:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="robust-energy", daemon=True)
        self._thread.start()
        return self

    def _start(self) -> None:
        try:
            self._tracker.start()
        except BaseException as exc:  # re-raised in the caller's thread by _ready
            self._error = exc

    def _ready(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    @property
    def method(self) -> str:
        """How each component was measured, e.g. ``cpu=TDP estimate ...; ram=estimate``."""
        self._ready()
        parts = []
        for hw in getattr(self._tracker, "_hardware", []):
            kind = type(hw).__name__
            if kind == "CPU":
                parts.append(f"cpu={_CPU_MODES.get(getattr(hw, '_mode', ''), 'estimate')}")
            elif kind == "GPU":
                parts.append("gpu=NVML")
            elif kind == "RAM":
                parts.append("ram=estimate from memory size")
        return "; ".join(parts) or "unknown"

    @property
    def is_estimate(self) -> bool:
        return "cpu=RAPL" not in self.method

    def begin(self, name: str) -> None:
        self._ready()
        self._tracker.start_task(name)

    def end(self) -> Energy:
        self._ready()
        data = self._tracker.stop_task()
        return Energy(float(data.energy_consumed), float(data.emissions))

    def stop(self) -> Energy:
        self._ready()
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        if data is None:
            return Energy(0.0, 0.0)
        return Energy(float(data.energy_consumed), float(data.emissions))
