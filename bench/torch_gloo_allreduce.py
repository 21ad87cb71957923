"""Peer for `moeflow bench transport`: PyTorch's gloo all-reduce (torch.distributed) of float32 tensors
over TCP loopback, the same sizes and iteration counts as the MoEFlow sweep. One process per rank;
`moeflow bench transport` starts them (each with --rank) and reads rank 0's lines.

Run by hand: for r in 0 1; do /usr/bin/python3 torch_gloo_allreduce.py --rank $r --ranks 2 --port 29511 &
done; wait. Prints one machine-readable line per size (rank 0):
  gloo-allreduce bytes=8 count=2 iters=1000 mean_us=250.1 p50_us=240.3 algbw_gbps=0.000 busbw_gbps=0.000
mean_us is averaged over ranks, p50_us is rank 0's median, busbw = algbw * 2(p-1)/p (nccl-tests).
Exit codes: 0 done, 2 bad arguments, 3 torch.distributed without gloo."""
import argparse
import ctypes
import datetime
import os
import signal
import sys
import time


def die_with_parent():
    """Linux: get SIGKILL when the process that started this one exits, so a killed benchmark leaves no rank."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def iterations_for(nbytes, iters):
    # the same rule as MoEFlow's TransportBenchConfig.iterationsFor / warmupFor
    n = iters if iters > 0 else max(20, min(1000, (256 << 20) // max(1, nbytes)))
    return n, max(5, n // 10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--port", type=int, required=True, help="TCP port of rank 0's rendezvous on 127.0.0.1")
    parser.add_argument("--min-bytes", type=int, default=8)
    parser.add_argument("--max-bytes", type=int, default=64 << 20)
    parser.add_argument("--iters", type=int, default=0, help="timed iterations per size; 0 = by size, as MoEFlow")
    parser.add_argument("--timeout", type=int, default=120, help="seconds any one collective may take")
    args = parser.parse_args()
    if not 0 <= args.rank < args.ranks or args.min_bytes < 4 or args.max_bytes < args.min_bytes:
        print("torch_gloo_allreduce: need 0 <= --rank < --ranks and 4 <= --min-bytes <= --max-bytes", file=sys.stderr)
        return 2
    die_with_parent()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    import torch.distributed as dist
    if not dist.is_available() or not dist.is_gloo_available():
        print("torch_gloo_allreduce: this torch has no gloo back-end", file=sys.stderr)
        return 3
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % args.port, rank=args.rank,
                            world_size=args.ranks, timeout=datetime.timedelta(seconds=args.timeout))
    p = args.ranks
    if args.rank == 0:
        print("gloo-version torch=%s ranks=%d" % (torch.__version__, p), flush=True)
    # warm up the connections and the allocator
    for _ in range(200):
        dist.all_reduce(torch.zeros(2))
    nbytes = args.min_bytes
    while nbytes <= args.max_bytes:
        n = nbytes // 4
        t = torch.zeros(n, dtype=torch.float32)  # zeros, as MoEFlow's sweep: sums stay finite
        iters, warmup = iterations_for(4 * n, args.iters)
        dist.barrier()
        for _ in range(warmup):
            dist.all_reduce(t)
        dist.barrier()
        samples = []
        for _ in range(iters):
            t0 = time.perf_counter_ns()
            dist.all_reduce(t)
            samples.append(time.perf_counter_ns() - t0)
        mean = torch.tensor([sum(samples) / len(samples) / 1e3], dtype=torch.float64)
        dist.all_reduce(mean)
        mean_us = mean.item() / p
        samples.sort()
        p50_us = samples[len(samples) // 2] / 1e3
        algbw = 4 * n / (mean_us * 1e3)  # bytes per ns = GB/s
        if args.rank == 0:
            print("gloo-allreduce bytes=%d count=%d iters=%d mean_us=%.2f p50_us=%.2f algbw_gbps=%.3f busbw_gbps=%.3f"
                  % (4 * n, n, iters, mean_us, p50_us, algbw, algbw * 2 * (p - 1) / p), flush=True)
        nbytes *= 2
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
