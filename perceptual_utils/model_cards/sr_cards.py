"""The card of a shipped super-resolution model: how it was trained, how to reproduce it, its
PSNR / SSIM / LPIPS beside bicubic and the paper's Table 2, and the model-shipping issue's target."""
from __future__ import annotations

from pathlib import Path

from ..sr.evaluation import PAPER_RESULTS
from ..vgg.network import CONTENT_LAYER
from .commands import reproduce_text
from .lineage import history_sentence, trained_minutes


SR_TARGETS = {
    ("pixel", 4): "Set5 PSNR >= bicubic + 1.0 dB",
    ("feature", 4): "Set5 LPIPS <= 0.20 with PSNR >= 27.0",
    ("feature", 8): "Set5 LPIPS >= 0.08 below bicubic",
}


def sr_verdict(loss: str, scale: int, net: dict, bic: dict) -> str:
    """"met", or by how much Set5 (``net``, bicubic ``bic``) misses the target of :data:`SR_TARGETS`."""
    if (loss, scale) == ("pixel", 4):
        gap = net["psnr"] - bic["psnr"]
        return "met" if gap >= 1.0 else f"**missed**: +{gap:.2f} dB, {1.0 - gap:.2f} dB short"
    if (loss, scale) == ("feature", 4):
        ok = net["lpips"] <= 0.20 and net["psnr"] >= 27.0
        return "met" if ok else (f"**missed**: LPIPS {net['lpips']:.3f} ({max(net['lpips'] - 0.20, 0):.3f} above), "
                                 f"PSNR {net['psnr']:.2f}")
    if (loss, scale) == ("feature", 8):
        gap = bic["lpips"] - net["lpips"]
        return "met" if gap >= 0.08 else f"**missed**: {gap:.3f} below bicubic, {0.08 - gap:.3f} short"
    return "-"


def sr_card(name: str, meta: dict, report: dict | None) -> list[str]:
    """The card lines of the super-resolution model ``name`` (metadata ``meta``, ``cpu_recipe`` ``report``)."""
    t = meta["training"]
    layer = t.get("layer") or CONTENT_LAYER
    paper_layer = t["loss"] != "feature" or layer == CONTENT_LAYER  # the paper's own loss, so its row compares
    lines = [f"### `{name}` — x{t['scale']}, {t['loss']} loss" + ("" if paper_layer else f" at {layer}"), ""]
    lines += [f"- **Trained**: {t.get('steps_done')} steps of batch {t['batch_size']} ({t['patch']} px HR patches, "
              f"blur sigma {t['sigma']:g} then bicubic), {t.get('recipe', '?')} recipe, `{meta['config'].get('variant', 'paper')}` "
              f"network, {trained_minutes(t)} on {t.get('hardware', 'a CPU')}, {t.get('precision', '')}; "
              f"training photos {Path(t['data']).name} scaled to a {t.get('resize_short')} px short side."
              + ("" if paper_layer else f" Loss: the feature loss at {layer}, not the paper's {CONTENT_LAYER}.")
              + (f" Loss: {layer} feature loss plus {t['pixel_weight']:g} x the per-pixel loss (not in the paper; "
                 "SRGAN mixes the two the same way)." if t.get("pixel_weight") else "")
              + (history_sentence(t) or (
                  f" Started from the shipped `{t.get('init_from_ref', Path(t['init_from']).stem)}` (its weights, "
                  "not random ones), as SRGAN starts from SRResNet; add that model's training time."
                  if t.get("init_from") else "")),
              f"- **Reproduce**: {reproduce_text(t)}"]
    if report:
        paper_column = "paper (same loss)" if paper_layer else f"paper ({CONTENT_LAYER} feature loss)"
        lines += ["", f"| set | PSNR / SSIM / LPIPS | bicubic | {paper_column} |", "|---|---|---|---|"]
        bic = {r["set"]: r for r in report["rows"]["bicubic"]}
        for r in report["rows"]["network"]:
            b = bic[r["set"]]
            paper = PAPER_RESULTS.get((r["set"], t["scale"]), {}).get(t["loss"])
            lines.append(f"| {r['set']} | {r['psnr']:.2f} / {r['ssim']:.4f} / {r['lpips']:.3f} | "
                         f"{b['psnr']:.2f} / {b['ssim']:.4f} / {b['lpips']:.3f} | "
                         + (f"{paper[0]:.2f} / {paper[1]:.4f}" if paper else "-") + " |")
        target = SR_TARGETS.get((t["loss"], t["scale"]))
        if target:
            lines += ["", f"- **Target** {target}: {sr_verdict(t['loss'], t['scale'], next(r for r in report['rows']['network'] if r['set'] == 'Set5'), bic['Set5'])}."]
            if t.get("note"):  # why a target was missed, from the run that shipped it
                lines.append(f"- **Why**: {t['note']}")
        elif t.get("note"):  # no target of its own: what it is for
            lines += ["", f"- **Note**: {t['note']}"]
    return lines + [""]
