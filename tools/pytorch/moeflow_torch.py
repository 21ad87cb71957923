"""Loads a MoEFlow checkpoint into the equivalent PyTorch module.

The module below has exactly the parameter names and shapes of MoEFlow's model.h5 (PyTorch names, [out, in]
row-major), so `load_state_dict(..., strict=True)` takes the file as it is. Its forward computes what MoEFlow's
MoeModel.logits computes (pre-LayerNorm blocks, exact-erf GELU, top-k routing on score + expert_bias with gates from
the unbiased scores, dropless), so the two agree to float rounding.

Usage:
  python3 moeflow_torch.py CHECKPOINT_DIR PROMPT            # prints the next-token logits after PROMPT as JSON
  python3 moeflow_torch.py CHECKPOINT_DIR PROMPT --greedy N # prints PROMPT continued by N greedy bytes
Needs: python3-torch, python3-h5py (Debian).
"""
import json
import math
import os
import sys
import zlib

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_config(f):
    """The model_config attribute: 'vocabSize=256 seqLen=64 ...'."""
    text = f.attrs["model_config"]
    text = text.decode() if isinstance(text, bytes) else text
    return dict(pair.split("=", 1) for pair in text.split())


class Expert(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.w1 = nn.Linear(c, hidden)
        self.w2 = nn.Linear(hidden, c)

    def forward(self, x):
        return self.w2(F.gelu(self.w1(x)))  # exact erf GELU, as MoEFlow


class MoE(nn.Module):
    def __init__(self, c, experts, shared, hidden, top_k, score):
        super().__init__()
        self.router = nn.Linear(c, experts, bias=False)
        self.router.register_buffer("expert_bias", torch.zeros(experts))
        self.experts = nn.ModuleList(Expert(c, hidden) for _ in range(experts))
        self.shared = nn.ModuleList(Expert(c, hidden) for _ in range(shared))
        self.top_k, self.score = top_k, score

    def forward(self, x):  # x: [N, C]
        logits = self.router(x)
        s = logits.softmax(-1) if self.score == "SOFTMAX" else logits.sigmoid()
        _, chosen = (s + self.router.expert_bias).topk(self.top_k, dim=-1)  # selection uses the bias
        gates = s.gather(-1, chosen)                                         # gates use the unbiased scores
        if self.top_k > 1:
            gates = gates / (gates.sum(-1, keepdim=True) + 1e-20)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = (chosen == e).nonzero(as_tuple=True)
            if token.numel():
                out.index_add_(0, token, expert(x[token]) * gates[token, slot, None])
        for expert in self.shared:
            out = out + expert(x)
        return out


class Attention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.heads = heads

    def forward(self, x):  # x: [B, T, C]
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, 2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = int(cfg["channels"])
        self.ln1 = nn.LayerNorm(c)
        self.attn = Attention(c, int(cfg["heads"]))
        self.ln2 = nn.LayerNorm(c)
        self.moe = MoE(c, int(cfg["experts"]), int(cfg["sharedExperts"]), int(cfg["expertHidden"]),
                       int(cfg["topK"]), cfg["routerScore"])

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        b, t, c = x.shape
        return x + self.moe(self.ln2(x).reshape(-1, c)).reshape(b, t, c)


class MoEFlowGPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v, t, c = int(cfg["vocabSize"]), int(cfg["seqLen"]), int(cfg["channels"])
        self.wte = nn.Embedding(v, c)
        self.wpe = nn.Embedding(t, c)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(int(cfg["layers"])))
        self.lnf = nn.LayerNorm(c)
        self.head = nn.Linear(c, v, bias=False)

    def forward(self, idx):  # idx: [B, T] -> logits [B, T, V]
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.lnf(x))


def model_files(checkpoint_dir):
    """model.h5 of a checkpoint, or of every rank part of a sharded one (a directory with metadata.txt)."""
    metadata = os.path.join(checkpoint_dir, "metadata.txt")
    if not os.path.exists(metadata):
        return [os.path.join(checkpoint_dir, "model.h5")]
    with open(metadata, encoding="utf-8") as m:
        world = int(next(line.split()[1] for line in m if line.startswith("world_size ")))
    return [os.path.join(checkpoint_dir, f"rank-{rank:05d}", "model.h5") for rank in range(world)]


def load(checkpoint_dir):
    """The model of a checkpoint directory (runs/<name>/checkpoints/step-N), every dataset's CRC-32 checked.
    A sharded checkpoint's parts each hold some of the tensors (each tensor in exactly one part): they are merged."""
    cfg = None
    state = {}
    for path in model_files(checkpoint_dir):
        with h5py.File(path, "r") as f:
            if cfg is None:
                cfg = read_config(f)
            for name in f:
                data = f[name][()]
                raw = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
                if zlib.crc32(raw) != int(f[name].attrs["crc32"]):
                    raise ValueError(f"{path}: dataset {name} fails its CRC-32")
                state[name] = torch.from_numpy(np.array(data))
    model = MoEFlowGPT(cfg)
    model.load_state_dict(state, strict=True)
    return model.eval()


def main():
    model = load(sys.argv[1])
    tokens = list(sys.argv[2].encode("utf-8"))
    with torch.no_grad():
        if len(sys.argv) > 4 and sys.argv[3] == "--greedy":
            for _ in range(int(sys.argv[4])):
                window = tokens[-model.wpe.num_embeddings:]
                tokens.append(int(model(torch.tensor([window]))[0, -1].argmax()))
            print(bytes(tokens).decode("utf-8", "replace"))
        else:
            print(json.dumps({"logits": model(torch.tensor([tokens]))[0, -1].tolist()}))


if __name__ == "__main__":
    main()
