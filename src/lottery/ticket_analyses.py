"""What the winning tickets are, beyond how well they train: four analyses that read the masks,
θ0 and trained weights the workflow already has (only the instability analysis trains networks of
its own, as jobs of their own). Each writes a table, a figure and lines of ``summary.md``.

- **Instability** (linear mode connectivity; Frankle et al., ICML 2020): two copies of a network
  trained from the same start with different data orders; the test error at evenly spaced points on
  the straight line between their final weights; instability = the largest error on the path minus
  the mean of its two ends' errors. Their finding for LeNet on MNIST: stable (below ~2%) at k = 0.
- **Supermasks** (Zhou et al., NeurIPS 2019): a ticket mask on θ0 without training, and on θ0's signs
  times each layer's standard deviation (the "signed constant"), against random masks of the same
  per-layer density. Their headline: masks alone reach far above chance (up to 86% with learned masks).
- **Mask overlap**: the Jaccard overlap |A ∩ B| / |A ∪ B| of ticket masks of different seeds, of
  iterative and one-shot tickets at the same Pm, and of consecutive rounds, beside the overlap of two
  independent random masks of those densities, d1 d2 / (d1 + d2 - d1 d2) (d / (2 - d) when equal).
  Grosse & Backes (2020) report tickets overlapping little beyond chance.
- **The pixel map**: for each input pixel, the fraction of its first-layer weights that survive.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lottery import data, layout, pruning, sections, variants
from lottery.desc import Replicate
from lottery.io import load_tensors, load_tensors_with_metadata, save_tensors, write_table
from lottery.logs import log, step
from lottery.torch_trainer import as_evaluation_inputs, evaluate

PathLike = str | os.PathLike
IMAGE_SIDE = 28


# ---------------------------------------------------------------- the arithmetic (tested)
def split_params(params: Mapping[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights and biases in network order (``fc1``, ``fc2``, ...)."""
    layers = sorted({name.split(".")[0] for name in params}, key=lambda n: int(n.removeprefix("fc")))
    return [params[f"{n}.weight"] for n in layers], [params[f"{n}.bias"] for n in layers]


def error_rate(params: Mapping[str, torch.Tensor], x: Any, y: torch.Tensor) -> float:
    weights, biases = split_params(params)
    return 1.0 - evaluate(weights, biases, x, y).accuracy


def interpolation_errors(
    params_a: Mapping[str, torch.Tensor],
    params_b: Mapping[str, torch.Tensor],
    points: int,
    x: Any,
    y: torch.Tensor,
) -> list[tuple[float, float]]:
    """(α, test error of (1 - α) θa + α θb) at ``points`` evenly spaced α in [0, 1]. Pruned weights
    are zero in both copies, so every point on the path stays under the mask."""
    path = []
    for i in range(points):
        alpha = i / (points - 1)
        mixed = {name: torch.lerp(params_a[name], params_b[name], alpha) for name in params_a}
        path.append((alpha, error_rate(mixed, x, y)))
    return path


def instability(errors: Sequence[float]) -> float:
    """The largest error on the path minus the mean of its two ends' errors."""
    return max(errors) - (errors[0] + errors[-1]) / 2


def signed_constant(init: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """θ0's weights replaced by their sign times the layer's standard deviation; biases kept."""
    return {
        name: torch.sign(t) * t.std() if name.endswith(".weight") else t.clone() for name, t in init.items()
    }


def apply_masks(
    params: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    return {name: t * masks[name] if name in masks else t for name, t in params.items()}


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|A ∩ B| / |A ∪ B| of two masks (1 where both are empty)."""
    a, b = a.bool(), b.bool()
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def chance_jaccard(d1: float, d2: float) -> float:
    """The expected Jaccard overlap of two independent random masks of densities ``d1`` and ``d2``."""
    union = d1 + d2 - d1 * d2
    return 1.0 if union == 0 else d1 * d2 / union


def pixel_survival(first_layer_mask: torch.Tensor) -> torch.Tensor:
    """For each input (column of the first layer's mask), the fraction of its weights that survive."""
    return first_layer_mask.float().mean(dim=0)


def _pm(masks: Mapping[str, torch.Tensor]) -> float:
    return 100.0 * pruning.weights_remaining(masks)


def _test_inputs(dataset: PathLike, split: PathLike) -> tuple[Any, torch.Tensor]:
    tensor_data = data.load_tensor_data(dataset, split)
    return as_evaluation_inputs(tensor_data.test_x, tensor_data.background), tensor_data.test_y


# ---------------------------------------------------------------- the tables
def instability_tables(
    pairs: Sequence[Mapping[str, Any]], points: int, x: Any, y: torch.Tensor
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per tested network (``pairs``: replicate, variant, round, k and the two copies' final
    weights ``a``, ``b``), and the path: one row per point."""
    rows, path_rows = [], []
    for pair in pairs:
        params_a, params_b = load_tensors(pair["a"]), load_tensors(pair["b"])
        masks = {name: (t != 0).float() for name, t in params_a.items() if name.endswith(".weight")}
        path = interpolation_errors(params_a, params_b, points, x, y)
        errors = [e for _, e in path]
        ids = {key: pair[key] for key in ("replicate", "variant", "round", "k")}
        rows.append(
            ids
            | {
                "pm": round(_pm(masks), 1),
                "error_a": errors[0],
                "error_b": errors[-1],
                "error_max": max(errors),
                "instability": instability(errors),
            }
        )
        path_rows += [ids | {"alpha": alpha, "error": error} for alpha, error in path]
    return rows, path_rows


def supermask_rows(
    replicates: Mapping[str, Replicate],
    inits: Mapping[str, PathLike],
    masks: Mapping[str, Sequence[PathLike]],
    x: Any,
    y: torch.Tensor,
) -> list[dict[str, Any]]:
    """Test accuracy of each ticket mask (rounds 1..n of each replicate, ``masks[replicate]``) and of a
    random mask with its per-layer counts, on θ0 and on the signed constant, without training; round
    0 is θ0 unpruned."""
    rows = []
    for name, replicate in replicates.items():
        init = load_tensors(inits[name])
        weights = {"init": init, "signed_constant": signed_constant(init)}
        dense = pruning.dense_masks({k: t for k, t in init.items() if k.endswith(".weight")})
        for round_, path in enumerate([None, *masks[name]]):
            ticket = dense if path is None else load_tensors(path)
            seed = variants.random_mask_seed(replicate, "supermask", round_)
            random = pruning.prune_random(dense, pruning.kept_counts(ticket), seed)
            for mask_kind, mask in (("ticket", ticket), ("random", random)):
                for weight_kind, params in weights.items():
                    rows.append(
                        {
                            "replicate": name,
                            "round": round_,
                            "pm": round(_pm(mask), 1),
                            "mask": mask_kind,
                            "weights": weight_kind,
                            "test_acc": 1.0 - error_rate(apply_masks(params, mask), x, y),
                        }
                    )
    return rows


def overlap_rows(
    iterative: Mapping[str, Sequence[Mapping[str, torch.Tensor]]],
    oneshot: Mapping[str, Sequence[Mapping[str, torch.Tensor]]] | None,
) -> list[dict[str, Any]]:
    """Per layer and round, the Jaccard overlap of ticket masks (``iterative[replicate]``: rounds
    1..n) of two seeds (every pair), of iterative and one-shot tickets at the same round, and of
    consecutive rounds; each with the chance overlap of its two densities and min/max over pairs."""
    found: dict[tuple[str, str, int], list[tuple[float, float]]] = {}

    def add(
        comparison: str, round_: int, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]
    ) -> None:
        for layer in a:
            chance = chance_jaccard(float(a[layer].float().mean()), float(b[layer].float().mean()))
            found.setdefault((comparison, layer, round_), []).append((jaccard(a[layer], b[layer]), chance))

    for first, second in itertools.combinations(sorted(iterative), 2):
        for round_, (a, b) in enumerate(zip(iterative[first], iterative[second], strict=False), start=1):
            add("seeds", round_, a, b)
    for name, masks in iterative.items():
        for round_, (a, b) in enumerate(zip(masks, (oneshot or {}).get(name, []), strict=False), start=1):
            add("iterative_vs_oneshot", round_, a, b)
        for round_, (a, b) in enumerate(itertools.pairwise(masks), start=1):
            add("consecutive_rounds", round_, a, b)
    reference = next(iter(iterative.values()))
    rows = []
    for (comparison, layer, round_), values in found.items():
        overlaps = [v for v, _ in values]
        rows.append(
            {
                "comparison": comparison,
                "layer": layer.removesuffix(".weight"),
                "round": round_,
                "pm": round(_pm(reference[round_ - 1]), 1),
                "density": float(reference[round_ - 1][layer].float().mean()),
                "jaccard": sum(overlaps) / len(overlaps),
                "jaccard_min": min(overlaps),
                "jaccard_max": max(overlaps),
                "chance": sum(c for _, c in values) / len(values),
                "pairs": len(values),
            }
        )
    return rows


def pixel_rows(
    masks: Mapping[int, Sequence[Mapping[str, torch.Tensor]]], mean_intensity: torch.Tensor
) -> list[dict[str, Any]]:
    """Per round (``masks[round]``: that round's ticket mask of every replicate) and pixel, the
    fraction of the first layer's weights that survive (mean over replicates), beside the pixel's
    mean intensity in [0, 1]."""
    rows = []
    for round_, loaded in sorted(masks.items()):
        survival = torch.stack([pixel_survival(m["fc1.weight"]) for m in loaded]).mean(dim=0)
        pm = sum(_pm(m) for m in loaded) / len(loaded)
        for pixel in range(len(survival)):
            rows.append(
                {
                    "round": round_,
                    "pm": round(pm, 1),
                    "pixel": pixel,
                    "row": pixel // IMAGE_SIDE,
                    "col": pixel % IMAGE_SIDE,
                    "surviving": float(survival[pixel]),
                    "mean_intensity": float(mean_intensity[pixel]),
                }
            )
    return rows


# ---------------------------------------------------------------- a replicate's masks, committed
# The ticket masks the analyses across seeds read (mask overlap, the pixel map), one bit per weight:
# a replicate's reference-schedule and one-shot masks in one small file of its summary, so that they
# outlive the checkpoints.
def pack_masks(masks: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], dict]:
    """``masks[key][layer]`` as packed bits (uint8, 8 weights a byte) under ``<key>/<layer>``, with
    the shapes to unpack them."""
    import numpy as np

    tensors, shapes = {}, {}
    for key, layers in masks.items():
        for layer, mask in layers.items():
            bits = np.packbits(mask.bool().reshape(-1).numpy())
            tensors[f"{key}/{layer}"] = torch.from_numpy(bits)
            shapes[f"{key}/{layer}"] = list(mask.shape)
    return tensors, {"shapes": shapes}


def load_mask_bundle(path: PathLike) -> dict[str, dict[str, torch.Tensor]]:
    """A file of :func:`write_replicate_masks`: ``{key: {layer: bool mask}}``."""
    import math

    import numpy as np

    tensors, metadata = load_tensors_with_metadata(path)
    shapes = metadata["shapes"]
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, packed in tensors.items():
        key, layer = name.rsplit("/", 1)
        shape = shapes[name]
        bits = np.unpackbits(packed.numpy(), count=math.prod(shape)).astype(bool)
        out.setdefault(key, {})[layer] = torch.from_numpy(bits.reshape(shape))
    return out


def mask_key(schedule: str, round_: int) -> str:
    return layout.mask_key(schedule, round_)


def mean_intensity(dataset: PathLike, split: PathLike) -> torch.Tensor:
    """Each pixel's mean intensity in [0, 1] over the training split's images."""
    images = load_tensors(dataset)["train_images"][load_tensors(split)["train_indices"]]
    return images.reshape(len(images), -1).float().div_(255.0).mean(dim=0)


# ---------------------------------------------------------------- the workflow's steps
# Each analysis in two steps: a replicate's part, into its summary (small files that are committed,
# so that a later run with more seeds reuses them), and the experiment's table and figure from them.
def _write_rows(rows: list[dict[str, Any]], out: PathLike) -> None:
    import pandas as pd

    write_table(out, pd.DataFrame(rows))


def _read_rows(tables: Sequence[PathLike]) -> list[dict[str, Any]]:
    import pandas as pd

    return pd.concat([pd.read_csv(t) for t in tables], ignore_index=True).to_dict("records")


@step
def write_replicate_instability(
    pairs: Sequence[Mapping[str, Any]],
    dataset: PathLike,
    split: PathLike,
    points: int,
    out: Mapping[str, PathLike],
) -> None:
    """A replicate's tested networks (``pairs``) and their paths."""
    x, y = _test_inputs(dataset, split)
    rows, path_rows = instability_tables(pairs, points, x, y)
    _write_rows(rows, out["table"])
    _write_rows(path_rows, out["path"])


@step
def write_instability(
    tables: Sequence[PathLike], paths: Sequence[PathLike], out: Mapping[str, PathLike]
) -> None:
    sections.BY_NAME["instability"].load().draw(_read_rows(tables), _read_rows(paths), out)


@step
def write_replicate_supermasks(
    replicate: Replicate,
    init: PathLike,
    masks: Sequence[PathLike],
    dataset: PathLike,
    split: PathLike,
    out: PathLike,
) -> None:
    """A replicate's ticket masks of rounds 1..n (``masks``) on θ0 and the signed constant."""
    x, y = _test_inputs(dataset, split)
    _write_rows(
        supermask_rows({replicate.name: replicate}, {replicate.name: init}, {replicate.name: masks}, x, y),
        out,
    )


@step
def write_supermasks(tables: Sequence[PathLike], out: Mapping[str, PathLike]) -> None:
    sections.BY_NAME["supermasks"].load().draw(_read_rows(tables), out)


@step
def write_replicate_masks(masks: Mapping[str, PathLike], out: PathLike) -> None:
    """A replicate's ticket masks (``masks``: mask file by :func:`mask_key`) packed in one file."""
    tensors, metadata = pack_masks({key: load_tensors(path) for key, path in masks.items()})
    save_tensors(out, tensors, metadata=metadata)
    log.info("%d masks packed into %s", len(masks), out)


def _bundles(bundles: Mapping[str, PathLike], schedule: str, rounds: Sequence[int]):
    """Each replicate's masks of ``schedule`` at ``rounds`` from its packed file."""
    loaded = {name: load_mask_bundle(path) for name, path in bundles.items()}
    return {name: [masks[mask_key(schedule, r)] for r in rounds] for name, masks in loaded.items()}


@step
def write_mask_overlap(
    bundles: Mapping[str, PathLike],
    reference: str,
    oneshot: str | None,
    rounds: int,
    oneshot_rounds: int,
    out: Mapping[str, PathLike],
) -> None:
    iterative = _bundles(bundles, reference, range(1, rounds + 1))
    shots = _bundles(bundles, oneshot, range(1, oneshot_rounds + 1)) if oneshot else None
    sections.BY_NAME["mask_overlap"].load().draw(overlap_rows(iterative, shots), out)


@step
def write_pixel_map(
    bundles: Mapping[str, PathLike],
    reference: str,
    rounds: Sequence[int],
    dataset: PathLike,
    split: PathLike,
    out: Mapping[str, PathLike],
) -> None:
    by_replicate = _bundles(bundles, reference, rounds)
    masks = {r: [by_replicate[name][i] for name in by_replicate] for i, r in enumerate(rounds)}
    sections.BY_NAME["pixel_map"].load().draw(pixel_rows(masks, mean_intensity(dataset, split)), out)
    log.info("pixel map of rounds %s", list(rounds))
