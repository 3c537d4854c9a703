"""Google AI Platform machine types and accelerators as `Resources` (the documented table).

Both spellings AI Platform accepts: its legacy names (`standard`, `complex_model_m_p100`, ...),
each mapped to the Compute Engine machine Google documents as its equivalent, and Compute
Engine names (`n1-standard-8`, `n1-highmem-16`, `e2-highcpu-4`, `a2-highgpu-1g`, ...), whose
vCPUs and memory follow from the family. GPUs of the legacy `_gpu`/`_p100`/`_v100` names and
of the `a2`/`g2` machines come with the machine; others from `acceleratorConfig`.
"""

from __future__ import annotations

import re

from ..exceptions import InvalidSpec
from ..models import Resources

#: Legacy name -> (Compute Engine equivalent, GPUs, GPU type).
LEGACY_MACHINES: dict[str, tuple[str, int, str | None]] = {
    "standard": ("n1-standard-4", 0, None),
    "large_model": ("n1-highmem-8", 0, None),
    "complex_model_s": ("n1-highcpu-8", 0, None),
    "complex_model_m": ("n1-highcpu-16", 0, None),
    "complex_model_l": ("n1-highcpu-32", 0, None),
    "standard_gpu": ("n1-standard-8", 1, "k80"),
    "complex_model_m_gpu": ("n1-standard-16", 4, "k80"),
    "complex_model_l_gpu": ("n1-standard-32", 8, "k80"),
    "standard_p100": ("n1-standard-8", 1, "p100"),
    "complex_model_m_p100": ("n1-standard-16", 4, "p100"),
    "standard_v100": ("n1-standard-8", 1, "v100"),
    "large_model_v100": ("n1-highmem-8", 1, "v100"),
    "complex_model_m_v100": ("n1-standard-16", 4, "v100"),
    "complex_model_l_v100": ("n1-standard-32", 8, "v100"),
}
#: GB of memory per vCPU of each Compute Engine family and kind.
MEMORY_PER_CPU = {
    ("n1", "standard"): 3.75,
    ("n1", "highmem"): 6.5,
    ("n1", "highcpu"): 0.9,
    ("n2", "standard"): 4.0,
    ("n2", "highmem"): 8.0,
    ("n2", "highcpu"): 1.0,
    ("e2", "standard"): 4.0,
    ("e2", "highmem"): 8.0,
    ("e2", "highcpu"): 1.0,
    ("c2", "standard"): 4.0,
}
#: Accelerator-optimised machines: name -> (vCPUs, memory GB, GPUs, GPU type).
GPU_MACHINES: dict[str, tuple[int, float, int, str]] = {
    "a2-highgpu-1g": (12, 85, 1, "a100-40gb"),
    "a2-highgpu-2g": (24, 170, 2, "a100-40gb"),
    "a2-highgpu-4g": (48, 340, 4, "a100-40gb"),
    "a2-highgpu-8g": (96, 680, 8, "a100-40gb"),
    "a2-megagpu-16g": (96, 1360, 16, "a100-40gb"),
    "a2-ultragpu-1g": (12, 170, 1, "a100-80gb"),
    "a2-ultragpu-2g": (24, 340, 2, "a100-80gb"),
    "a2-ultragpu-4g": (48, 680, 4, "a100-80gb"),
    "a2-ultragpu-8g": (96, 1360, 8, "a100-80gb"),
    "g2-standard-4": (4, 16, 1, "l4"),
    "g2-standard-8": (8, 32, 1, "l4"),
    "g2-standard-12": (12, 48, 1, "l4"),
    "g2-standard-16": (16, 64, 1, "l4"),
    "g2-standard-24": (24, 96, 2, "l4"),
    "g2-standard-32": (32, 128, 1, "l4"),
    "g2-standard-48": (48, 192, 4, "l4"),
    "g2-standard-96": (96, 384, 8, "l4"),
}
#: AI Platform's accelerator types -> the short GPU names `--gpu-type` takes.
ACCELERATORS = {
    "NVIDIA_TESLA_K80": "k80",
    "NVIDIA_TESLA_P4": "p4",
    "NVIDIA_TESLA_P100": "p100",
    "NVIDIA_TESLA_V100": "v100",
    "NVIDIA_TESLA_T4": "t4",
    "NVIDIA_TESLA_A100": "a100-40gb",
    "NVIDIA_A100_80GB": "a100-80gb",
    "NVIDIA_L4": "l4",
    "NVIDIA_H100_80GB": "h100",
}
#: Accelerators no backend here has.
TPU_ACCELERATORS = ("TPU_V2", "TPU_V3", "TPU_V4_POD", "TPU_V5_LITEPOD")
_ENGINE_NAME = re.compile(r"^(n1|n2|e2|c2)-(standard|highmem|highcpu)-(\d+)$")


def machine_resources(name: str) -> Resources:
    """The CPUs, memory and built-in GPUs of machine type `name`; InvalidSpec when unknown."""
    if name == "cloud_tpu" or name.startswith(("cloud_tpu", "tpu")):
        raise InvalidSpec(f"{name!r} is a TPU machine, and there are no TPUs here")
    if name in LEGACY_MACHINES:
        engine, gpus, gpu_type = LEGACY_MACHINES[name]
        return _with_gpus(machine_resources(engine), gpus, gpu_type)
    if name in GPU_MACHINES:
        cpu, memory, gpus, gpu_type = GPU_MACHINES[name]
        return Resources(cpu=cpu, memory=memory_quantity(memory), gpus=gpus, gpu_type=gpu_type)
    match = _ENGINE_NAME.match(name)
    if match and (match[1], match[2]) in MEMORY_PER_CPU:
        cpu = int(match[3])
        memory = cpu * MEMORY_PER_CPU[(match[1], match[2])]
        return Resources(cpu=cpu, memory=memory_quantity(memory))
    known = ", ".join([*LEGACY_MACHINES, "n1-standard-N", "n1-highmem-N", "n1-highcpu-N"])
    raise InvalidSpec(f"unknown machine type {name!r} (known: {known}, e2-/n2-/c2-..., a2-, g2-)")


def accelerator_gpu_type(kind: str) -> str:
    """The `--gpu-type` of an AI Platform accelerator type; InvalidSpec for TPUs and others."""
    if kind in TPU_ACCELERATORS:
        raise InvalidSpec(f"{kind} is a TPU, and there are no TPUs here")
    if kind not in ACCELERATORS:
        raise InvalidSpec(f"unknown accelerator type {kind!r} (known: {', '.join(ACCELERATORS)})")
    return ACCELERATORS[kind]


def _with_gpus(res: Resources, gpus: int, gpu_type: str | None) -> Resources:
    return Resources(cpu=res.cpu, memory=res.memory, gpus=gpus, gpu_type=gpu_type if gpus else None)


def memory_quantity(gigabytes: float) -> str:
    """`15Gi`, or `14746Mi` for 14.4 GB (Google's GB are binary gigabytes)."""
    mebibytes = round(gigabytes * 1024)
    return f"{mebibytes // 1024}Gi" if mebibytes % 1024 == 0 else f"{mebibytes}Mi"
