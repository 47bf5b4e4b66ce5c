"""Run alone or under torchrun: one collaborative step on a fixed global batch of 16 real
BasicMotions windows; rank 0 saves the accumulated gradients to argv[1]."""
import sys

import torch

from slimhar.train.collab import collab_step, draw_subnets
from slimhar.train.config import load_config
from slimhar.train.trainer import load_data, new_model, normalization, setup_distributed, teardown_distributed, to_input

cfg = load_config("basicmotions_cnn")
data = load_data(cfg)
mean, std = normalization(data)
X, y = to_input(data.train.X, mean, std)[:16], torch.from_numpy(data.train.y[:16])
dev, rank, world = setup_distributed("cpu")
model = new_model(cfg, data)
ddp = None
if world > 1:
    from torch.nn.parallel import DistributedDataParallel
    ddp = DistributedDataParallel(model, broadcast_buffers=False)
opt = torch.optim.SGD(model.parameters(), lr=0.0)          # keep the gradients, change nothing
draws = draw_subnets(torch.Generator().manual_seed(5), cfg["width_range"], model.spec.resolutions, 6)
local = torch.tensor_split(torch.arange(16), world)[rank]
collab_step(model, opt, X[local], y[local], 1.0, draws, ddp=ddp, loss_scale=len(local) * world / 16)
if rank == 0:
    torch.save({n: p.grad.clone() for n, p in model.named_parameters()}, sys.argv[1])
teardown_distributed(world)
