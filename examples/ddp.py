"""PyTorch DDP over gloo: every rank adds its number; all ranks print the same sum.

cloudml train --backend kubernetes --framework pytorch --workers 2 examples/ddp.py --wait
"""

import socket

import torch
import torch.distributed as dist

dist.init_process_group("gloo", init_method="env://")  # RANK, WORLD_SIZE, MASTER_* from cloudml
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
print(f"rank {rank}/{world} on {socket.gethostname()}: all_reduce -> {value.item():g}", flush=True)
dist.destroy_process_group()
