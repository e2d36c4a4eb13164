"""Which machine a figure came from: every benchmark prints this beside its numbers (a speed measured
on one CPU is not a fact about another)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu() -> dict[str, object]:
    """The CPU's model name, family and model numbers (as lscpu shows them) and the CPUs this process
    may use."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("model name", "cpu family", "model") and key.strip() not in fields:
                fields[key.strip()] = value.strip()
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def cpu_name() -> str:
    """One line: ``AMD EPYC (family 25 model 17), 2 CPUs``."""
    c = cpu()
    numbers = f" (family {c['family']} model {c['model_number']})" if c["family"] else ""
    return f"{c['model']}{numbers}, {c['cpus']} CPUs"
