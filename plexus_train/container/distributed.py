"""Data-parallel training over several processes and hosts (torch DistributedDataParallel).

Which launcher. SageMaker's own (the estimator's `distribution`: `torch_distributed`, which runs torchrun on
every host, or `pytorchddp`, which runs mpirun) is documented for GPU and Trainium instances only
(https://docs.aws.amazon.com/sagemaker/latest/dg/distributed-training-options.html,
https://sagemaker.readthedocs.io/en/stable/frameworks/pytorch/using_pytorch.html#distributed-pytorch-training),
while plexus trains on CPU instances (ml.m5) as often as on GPU ones. So the entry script launches torch's elastic
runner itself (`python -m torch.distributed.run`, static rendezvous) on every host, from what the training
toolkit sets on all instance types: SM_HOSTS (the master is the first host), SM_CURRENT_HOST (this node's rank)
and SM_NUM_GPUS (one process per GPU, else one; `training.processes_per_host` overrides it). The master port is
7777, the one the toolkit's own launchers use. gloo on CPU, nccl on GPU. One mechanism on every instance type,
and local mode runs exactly it (two "hosts" as two processes of this machine, over 127.0.0.1).

The `train` channel stays FullyReplicated (every host gets all the data); each rank takes its own share of
every batch (`shard`), so each example is seen once per epoch across the ranks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

MASTER_PORT = 7777  # the training toolkit's launchers' master port
# Local mode: every "host" is this machine, reached at this address and a free port (platforms.local_job).
MASTER_ADDR_ENV, MASTER_PORT_ENV = "PLEXUS_MASTER_ADDR", "PLEXUS_MASTER_PORT"

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """+ hosts: SM_HOSTS; + node_rank: this host's place in it; + per_host: processes on each host"""

    hosts: tuple[str, ...]
    node_rank: int
    per_host: int
    master_addr: str
    master_port: int

    @property
    def world_size(self) -> int:
        return len(self.hosts) * self.per_host


def launch_plan(environ: Mapping[str, str], processes_per_host: int = 0) -> Launch:
    """How many processes train, from the toolkit's variables (pure). `processes_per_host` 0: one per GPU, else 1.

    Example: SM_HOSTS ["algo-1","algo-2"], SM_CURRENT_HOST algo-2, no GPU → node_rank 1, world_size 2
    """
    hosts = tuple(json.loads(environ.get("SM_HOSTS") or '["algo-1"]'))
    current = environ.get("SM_CURRENT_HOST") or hosts[0]
    gpus = int(environ.get("SM_NUM_GPUS") or 0)
    per_host = processes_per_host if processes_per_host > 0 else max(1, gpus)
    return Launch(
        hosts=hosts,
        node_rank=hosts.index(current),
        per_host=per_host,
        master_addr=environ.get(MASTER_ADDR_ENV) or hosts[0],
        master_port=int(environ.get(MASTER_PORT_ENV) or MASTER_PORT),
    )


def is_worker(environ: Mapping[str, str]) -> bool:
    """Whether this process is one torchrun started (it sets RANK, LOCAL_RANK and WORLD_SIZE)."""
    return all(name in environ for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def torchrun_command(launch: Launch, script: str) -> list[str]:
    """torchrun for this host: every host runs it, the first one's rendezvous (static) serves them all."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={len(launch.hosts)}",
        f"--node_rank={launch.node_rank}",
        f"--nproc_per_node={launch.per_host}",
        f"--master_addr={launch.master_addr}",
        f"--master_port={launch.master_port}",
        script,
    ]


def run_workers(launch: Launch, script: str) -> int:
    """Run this host's workers under torchrun; its exit code (non-zero when any worker failed)."""
    print(
        f"distributed: {launch.world_size} processes ({len(launch.hosts)} hosts × {launch.per_host}), this is "
        f"{launch.hosts[launch.node_rank]}, master {launch.master_addr}:{launch.master_port}",
        flush=True,
    )
    return subprocess.call(torchrun_command(launch, script))


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; the default is training alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0 alone evaluates, reports, checkpoints and saves."""
        return self.rank == 0

    def device(self) -> Any:
        import torch

        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank if self.distributed else 0)
        return torch.device("cpu")


def join(environ: Mapping[str, str]) -> World:
    """Join the process group torchrun set up (env:// rendezvous): nccl on GPU, gloo on CPU."""
    import torch
    import torch.distributed as dist

    world = World(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ["LOCAL_RANK"]))
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world


def leave(world: World) -> None:
    """After a successful run: wait for every rank (rank 0 saves while the others are done), then leave the group;
    a rank that tore the group down while another still used it would abort that one. A failed rank does not
    call this: it exits, and torchrun stops the others."""
    import torch.distributed as dist

    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(chunk: Sequence[T], world: World) -> list[T]:
    """This rank's share of one batch: every `size`-th text from its rank on, so the ranks together see each text
    of the batch once. Example: `shard([0, 1, 2, 3, 4], World(1, 2)) == [1, 3]`"""
    return list(chunk[world.rank :: world.size])


def summed(values: Sequence[float], world: World) -> list[float]:
    """`values` added up over every rank (all-reduce); as they are when training alone."""
    if not world.distributed:
        return list(values)
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(list(values), dtype=torch.float64, device=world.device())
    dist.all_reduce(tensor)
    return tensor.tolist()


def from_main(value: T, world: World) -> T:
    """Rank 0's `value`, on every rank (broadcast)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gathered(value: T, world: World) -> list[T]:
    """Every rank's `value`, in rank order, on every rank."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    box: list[Any] = [None] * world.size
    dist.all_gather_object(box, value)
    return box
