"""Train the built-in digits models offline and write ``digits_cnn.npz`` / ``digits_mlp.npz``.

Run once, from a checkout, with torch and scikit-learn installed::

    pip install scikit-learn 'torch>=2.4,<2.15'
    python -m tpegen.sw.models.train_digits            # writes sw/models/*.npz

Data: scikit-learn's bundled ``load_digits`` (no download), pixels / 16 -> [0, 1], NCHW
(N, 1, 8, 8); a stratified 75/25 train/test split (``random_state=0``). Training: Adam, fixed
seeds, deterministic single-threaded torch, so a rerun reproduces the weights on the same torch
build. After training, the graph built from the written weights (numpy only,
:func:`tpegen.sw.models.load_builtin`) must reproduce torch's test predictions, and its float32
top-1 must reach 95%; otherwise nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tpegen.sw.graph import run_graph
from tpegen.sw.models import DATA_DIR, build_graph

SEED = 0
TEST_SIZE = 0.25
MIN_TOP1 = 0.95


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test): the stratified split every built-in model uses."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)


def _modules():
    import torch.nn as nn

    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 10),
    )  # fmt: skip
    mlp = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    return {"digits_cnn": cnn, "digits_mlp": mlp}


def _weights(name: str, module) -> dict[str, np.ndarray]:
    """The module's parameters under the graph's names, linear weights transposed to (K, N)."""
    layers = [m for m in module if hasattr(m, "weight")]
    names = ["conv1", "conv2", "fc1", "fc2"] if name == "digits_cnn" else ["fc1", "fc2", "fc3"]
    out = {}
    for layer_name, layer in zip(names, layers, strict=True):
        w = layer.weight.detach().numpy().astype(np.float32)
        out[f"{layer_name}.weight"] = w.T.copy() if w.ndim == 2 else w
        out[f"{layer_name}.bias"] = layer.bias.detach().numpy().astype(np.float32)
    return out


def train(module, x: np.ndarray, y: np.ndarray, *, epochs: int = 60, batch: int = 64) -> None:
    """Adam with a step learning-rate decay; mini-batches shuffled by a seeded generator."""
    import torch

    opt = torch.optim.Adam(module.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(SEED)
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
    module.eval()


def main(argv: list[str] | None = None) -> int:
    """Train both models, check them through the numpy graph, write the .npz files."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, x_test, y_train, y_test = load_split()
    print(f"train {len(y_train)}, test {len(y_test)} (torch {torch.__version__})")
    for name, module in _modules().items():
        torch.manual_seed(SEED)
        for m in module:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        train(module, x_train, y_train)
        with torch.no_grad():
            torch_pred = module(torch.from_numpy(x_test)).argmax(1).numpy()
        weights = _weights(name, module)
        logits = run_graph(build_graph(name, weights), {"x": x_test})["logits"]
        pred = logits.argmax(1)
        top1 = float((pred == y_test).mean())
        print(f"{name}: float32 top-1 {top1:.4f} (torch {float((torch_pred == y_test).mean()):.4f})")
        if not np.array_equal(pred, torch_pred) or top1 < MIN_TOP1:
            print(f"{name}: the numpy graph disagrees with torch or misses {MIN_TOP1:.0%}", file=sys.stderr)
            return 1
        path = args.out_dir / f"{name}.npz"
        np.savez_compressed(path, x_test=x_test, y_test=y_test, **weights)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
