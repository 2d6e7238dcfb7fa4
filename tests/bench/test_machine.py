"""taskgraph.bench.device_name: the CPU's model and torch's CPU capability, or CUDA's name."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from taskgraph.bench import device_name
from taskgraph.bench.machine import cpu_model


def test_the_cpus_model_comes_from_cpuinfo(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)  Platinum 8480+\n\n")
    assert cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+"


def test_without_cpuinfo_the_name_is_platforms(tmp_path: Path):
    assert cpu_model(tmp_path / "missing") == (platform.processor() or platform.machine())
    (tmp_path / "blank").write_text("processor\t: 0\nmodel name\t:\n")
    assert cpu_model(tmp_path / "blank") == (platform.processor() or platform.machine())


def test_a_cpu_name_carries_the_instruction_set_torch_dispatches_to():
    name = device_name("cpu")
    assert name == f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"
    assert device_name(torch.device("cpu")) == name
