"""One time-boxed run of one way to a new painting, for ``benchmarks/new_style.py``:
``python benchmarks/new_style_runs.py WAY PAINTING OUT --minutes 10 --save 2,5,10``.

WAY: ``scratch`` (the cpu recipe from a random network), ``finetune:NAME`` (the cpu recipe from a
shipped single-style network, as ``--init-from NAME``: its 30-step warm-up; ``--trainable`` and
``--norm-lr`` for variants that learn only some weights), ``add-to`` (a new
slot of the shipped ``paintings``, only its ``gamma``, ``beta`` learned at
:data:`~perceptual_utils.style.add_style.ADD_TO_LR`, as ``--add-to paintings``), or
``add-to+unfreeze`` (the same for ``--stage1`` of the time, then every weight at ``--lr2``; the
other paintings of the network then change too).

The cpu recipe's settings (batch 4, 128 px crops cut from photos scaled to 256 px, then 256 px
crops for the last 15%, cosine decay to 0.1x, grid jitter 8, style weight 2, the painting at
384 px), with one difference: the schedule runs on *time*, not on a planned step count. The clock:

- ``--step-seconds S128,S256`` (how ``benchmarks/results/new_style.json`` was made): each step
  counts the seconds a step of its crop size takes with 2 threads on an idle machine, measured
  beforehand, so two runs sharing the machine one thread each are timed as if each had both cores;
- else, with ``--threads 1``, this process's CPU time (``time.process_time``), so a machine shared
  with other work slows the run down without cutting its training short;
- else wall time (with ``--threads 2``, on an otherwise idle machine). The network is saved at each
``--save`` minute mark (``model_<M>min.safetensors``), so one run gives every duration; decoding
the photos (once per file) is not counted. ``log.json`` records steps, CPU seconds and the losses.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from perceptual_utils.images import load_image
from perceptual_utils.losses import PerceptualLoss
from perceptual_utils.model_io import atomic_write, save_model
from perceptual_utils.shipped_models import load_model
from perceptual_utils.style.add_style import (ADD_TO_LR, NewStyleLoss, added_style_info, extend_network,
                                              freeze_all_but_style, load_multi_style_source, style_parameters)
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.objective import StyleTransferLoss
from perceptual_utils.style.training import STYLE_RECIPES
from perceptual_utils.training_data import ImageFolderDataset

RECIPE = STYLE_RECIPES["cpu"]
FINE_TUNE_WARMUP = 30  # perceptual_utils.training.settings.FINE_TUNE_WARMUP_STEPS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("way")
    p.add_argument("painting", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path, default=Path("data/train/coco_mini"))
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--save", default="2,5,10", help="minute marks at which to save the network")
    p.add_argument("--stage1", type=float, default=0.2, help="add-to+unfreeze: share of the time for gamma, beta alone")
    p.add_argument("--lr2", type=float, default=1e-4, help="add-to+unfreeze: learning rate of every weight after that")
    p.add_argument("--threads", type=int, default=1,
                   help="threads; with more than one the clock is wall time (run it on an otherwise idle machine)")
    p.add_argument("--step-seconds", metavar="S128,S256",
                   help="a clock in steps: each 128 px step counts S128 seconds and each 256 px step S256 (e.g. the "
                        "step times measured with 2 threads on an idle machine), so that runs sharing a machine "
                        "one thread each are timed as if each had it to itself")
    p.add_argument("--lr", type=float, help="learning rate (default: the way's own: the cpu recipe's, or ADD_TO_LR)")
    p.add_argument("--norm-lr", type=float, help="finetune: a learning rate of its own for the instance norms' "
                                                 "scale and shift (the rest keeps --lr)")
    p.add_argument("--trainable", choices=("all", "norms", "norms+output"), default="all",
                   help="finetune: which weights learn (norms: the instance norms' scale and shift; +output: and the "
                        "last convolution, the only one no normalisation follows); the rest stays frozen")
    p.add_argument("--start", type=Path, help="add-to+unfreeze: go on from this network of an add-to run "
                                              "(saved at the end of --stage1), at its step and CPU time")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    timer = time.process_time if args.threads == 1 else time.perf_counter
    clock_name = ("process CPU time, 1 thread" if args.threads == 1
                  else f"wall time, {args.threads} threads, idle machine")
    step_seconds = None
    if args.step_seconds:
        s128, s256 = (float(v) for v in args.step_seconds.split(","))
        step_seconds = {RECIPE["image_size"]: s128, RECIPE["fine_tune_size"]: s256}
        clock_name = f"steps, {s128:g} s per 128 px step and {s256:g} s per 256 px step"
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = RECIPE["loss"]
    perceptual = PerceptualLoss.from_weights(weights)
    perceptual.set_style(load_image(args.painting, size=384, long_side=True))
    info = {"task": "style_transfer", "recipe": "cpu", "style": str(args.painting.resolve()),
            "style_name": args.painting.stem, "style_size": 384, **weights.as_dict(),
            "content_layer": perceptual.content_layer, "style_layers": list(perceptual.style_layers), "way": args.way}
    kind, _, source = args.way.partition(":")
    model: nn.Module
    if kind == "scratch":
        net = StyleTransferNet(variant="modern")
        model, lr, warmup = net, RECIPE["lr"], 0
        params = list(net.parameters())
    elif kind == "finetune":
        net = load_model(source, kind="style_transfer").float()
        model, lr, warmup = net, RECIPE["lr"], FINE_TUNE_WARMUP
        params = list(net.parameters())
        norms = {id(q) for m in net.modules() if isinstance(m, nn.InstanceNorm2d) for q in m.parameters()}
        if args.trainable != "all":
            keep = set(norms)
            if args.trainable == "norms+output":
                keep |= {id(q) for q in net.output.parameters()}
            for q in params:
                q.requires_grad_(id(q) in keep)
            params = [q for q in params if id(q) in keep]
            info["trainable"] = args.trainable
    elif kind in ("add-to", "add-to+unfreeze"):
        src, path = load_multi_style_source("paintings")
        net = extend_network(src)
        index = src.num_styles
        info |= added_style_info(src, path, args.painting.resolve(), weights.style_weight)
        hooks = freeze_all_but_style(net, index)
        model, lr, warmup = net, ADD_TO_LR, 0
        if args.start is not None:  # the same network after its gamma, beta stage: only stage 2 is new
            saved_net = load_model(args.start, kind="style_transfer").float()
            net.load_state_dict(saved_net.state_dict())
            start_step, start_clock = int(saved_net.training_info["steps_done"]), float(
                saved_net.training_info["train_seconds"])
        params = style_parameters(net)
    else:
        raise SystemExit(f"error: unknown way {args.way!r}")
    if args.lr is not None:
        lr = args.lr
    info["lr"] = lr
    if args.norm_lr is not None:
        info["norm_lr"] = args.norm_lr
    info["run_minutes"] = args.minutes  # the schedule's length (its cosine decay ends there)
    loss_fn = NewStyleLoss(perceptual, index, RECIPE["grid_jitter"]) if kind.startswith("add-to") else \
        StyleTransferLoss(perceptual, RECIPE["grid_jitter"])
    opt = torch.optim.Adam(params, lr=lr)
    groups = [lr]
    if kind == "finetune" and args.norm_lr is not None:
        opt = torch.optim.Adam([{"params": [q for q in params if id(q) not in norms]},
                                {"params": [q for q in params if id(q) in norms]}], lr=lr)
        groups = [lr, args.norm_lr]
    data = {s: ImageFolderDataset(args.data, size=s, resize_short=RECIPE["resize_short"], seed=0)
            for s in (RECIPE["image_size"], RECIPE["fine_tune_size"])}
    budget, marks = 60 * args.minutes, sorted(60 * float(m) for m in args.save.split(","))
    clock, step, log, saved, unfrozen = 0.0, 0, [], [], False
    if args.start is not None:
        clock, step = start_clock, start_step
        marks = [m for m in marks if m > clock]
    net.train()
    while clock < budget:
        frac = clock / budget
        if kind == "add-to+unfreeze" and frac >= args.stage1 and not unfrozen:
            unfrozen = True
            for h in hooks:
                h.remove()
            for q in net.parameters():
                q.requires_grad_(True)
            norms = {id(q) for q in params}
            # the new gamma, beta go on at a tenth of their rate; the shared weights start low
            opt = torch.optim.Adam([{"params": [q for q in net.parameters() if id(q) not in norms]},
                                    {"params": params}], lr=args.lr2)
            groups = [args.lr2, ADD_TO_LR / 10]
        size = RECIPE["fine_tune_size"] if frac >= 1 - RECIPE["fine_tune_fraction"] else RECIPE["image_size"]
        batch = torch.stack([data[size][step * RECIPE["batch_size"] + i] for i in range(RECIPE["batch_size"])])
        t0 = timer()
        decay = RECIPE_FINAL + 0.5 * (1 - RECIPE_FINAL) * (1 + math.cos(math.pi * frac))
        warm = min((step + 1) / (warmup + 1), 1.0) if warmup else 1.0
        for group, base in zip(opt.param_groups, groups):
            group["lr"] = base * decay * warm
        opt.zero_grad(set_to_none=True)
        terms = loss_fn(model, batch)
        terms["total"].backward()
        opt.step()
        step += 1
        clock += step_seconds[size] if step_seconds else timer() - t0
        log.append([step, round(clock, 2), size, round(float(terms["total"].detach()), 5)])
        if step % 20 == 0:
            print(f"step {step}: {clock:.0f} s CPU, {size} px, loss {log[-1][-1]:.3f}", flush=True)
        while marks and clock >= marks[0]:
            minutes = marks.pop(0) / 60
            net.eval()
            save_model(net, args.out / f"model_{minutes:g}min.safetensors",
                       training=info | {"steps_done": step, "train_seconds": round(clock, 1),
                                        "clock": clock_name})
            net.train()
            saved.append({"minutes": minutes, "steps": step, "cpu_seconds": round(clock, 1)})
    atomic_write(args.out / "log.json", lambda tmp: Path(tmp).write_text(json.dumps(
        {"way": args.way, "style": str(args.painting), "saved": saved, "clock": clock_name, "threads": args.threads,
         "step_seconds_mean": clock / max(step, 1), "log": log})))
    print(f"done: {step} steps, {clock:.0f} s CPU")


RECIPE_FINAL = 0.1  # the cpu recipe's cosine decay ends at 0.1x (TrainConfig.lr_final)

if __name__ == "__main__":
    main()
