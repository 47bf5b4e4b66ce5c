"""Accuracy of grid subnets, and the tables / plots that show them."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .models import HarNet, resize


@torch.no_grad()
def predict(model: HarNet, X: torch.Tensor, width: float, resolution: int, batch: int = 512) -> torch.Tensor:
    model.eval()
    model.set_subnet(width, resolution)
    outs = [model(resize(X[i:i + batch], resolution)) for i in range(0, len(X), batch)]
    return torch.cat(outs).argmax(1)


def accuracy(model: HarNet, X: torch.Tensor, y: torch.Tensor, width: float, resolution: int) -> float:
    return (predict(model, X, width, resolution) == y).double().mean().item()


def evaluate_grid(model: HarNet, X: torch.Tensor, y: torch.Tensor, subnets=None, progress: bool = False) -> list[dict]:
    subnets = model.spec.subnets if subnets is None else subnets
    rows = []
    for w, r in tqdm(subnets, desc="evaluate", unit="subnet", disable=not progress, leave=False):
        rows.append({"width": w, "resolution": r, "accuracy": accuracy(model, X, y, w, r), **model.cost(w, r)})
    return rows


def grid_table(rows: list[dict], widths=None, fmt=lambda a: f"{100 * a:6.2f}") -> str:
    """Paper-style table: one row per width, one column per resolution, accuracy in %."""
    res = sorted({r["resolution"] for r in rows}, reverse=True)
    ws = sorted({r["width"] for r in rows}, reverse=True) if widths is None else widths
    acc = {(r["width"], r["resolution"]): r["accuracy"] for r in rows}
    head = "| width \\ T' | " + " | ".join(str(r) for r in res) + " |"
    lines = [head, "|" + "---|" * (len(res) + 1)]
    for w in ws:
        cells = [fmt(acc[(w, r)]) if (w, r) in acc else "" for r in res]
        lines.append(f"| {w:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_front(rows: list[dict]) -> list[dict]:
    """Subnets no other subnet beats on both accuracy and MACs, by increasing MACs."""
    front, best = [], -1.0
    for r in sorted(rows, key=lambda r: (r["macs"], -r["accuracy"])):
        if r["accuracy"] > best:
            front.append(r)
            best = r["accuracy"]
    return front


def pareto_plot(rows: list[dict], path, title: str = "") -> None:
    from slimhar.extras import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    sc = ax.scatter([r["macs"] / 1e6 for r in rows], [100 * r["accuracy"] for r in rows],
                    c=[r["width"] for r in rows], cmap="viridis", s=14)
    front = pareto_front(rows)
    ax.plot([r["macs"] / 1e6 for r in front], [100 * r["accuracy"] for r in front], "r-", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per window (millions, log)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "accuracy vs MACs, every width x resolution subnet")
    fig.colorbar(sc, ax=ax, label="width")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
