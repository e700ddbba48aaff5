"""Where an encoder loses: its accuracy on held-out clips grouped by the simulated neurons'
parameters (spatial and temporal frequency, direction selectivity, receptive-field size,
simple or complex).

Scores every ``--encoders`` entry (``NAME=SOURCE``, SOURCE as ``--encoder`` elsewhere) on
the sample mouse's ``--tier`` (default ``final_test_main``, whose clips no training or
tuning step reads) and prints, per group of neurons, the mean correlation with the
noise-free rates and the mean single-trial correlation over the oracle's. The simulated
parameters are the in-silico mouse's ground truth, read here only to group neurons for
this diagnosis.

    python -m benchmarks.encoder_groups --encoders new=sample,old=OLD_FOLDER
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from napari_movierecon.encoders.evaluate import evaluate_encoders
from napari_movierecon.sources import open_encoder, open_recording

SF_EDGES_CPD = (0.015, 0.025, 0.04, 0.06, 0.09, 0.12)
TF_SPLIT_HZ = 2.5
SIGMA_SMALL_DEG, SIGMA_LARGE_DEG = 4.5, 7.5


def neuron_groups(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Named boolean masks (N,) over the simulated population's parameters."""
    sf, tf, sigma = params["sf_cpd"], params["tf_hz"], params["sigma_deg"]
    groups = {"all": np.ones(len(sf), dtype=bool)}
    for low, high in itertools.pairwise(SF_EDGES_CPD):
        groups[f"spatial frequency {low:g}-{high:g} cpd"] = (sf >= low) & (sf <= high)
    groups[f"temporal frequency < {TF_SPLIT_HZ:g} Hz"] = tf < TF_SPLIT_HZ
    groups[f"temporal frequency >= {TF_SPLIT_HZ:g} Hz"] = tf >= TF_SPLIT_HZ
    groups["not direction selective"] = params["direction_sign"] == 0
    groups["direction selective"] = params["direction_sign"] != 0
    groups[f"RF sigma < {SIGMA_SMALL_DEG:g} deg"] = sigma < SIGMA_SMALL_DEG
    groups[f"RF sigma >= {SIGMA_LARGE_DEG:g} deg"] = sigma >= SIGMA_LARGE_DEG
    groups["simple cells"] = params["is_complex"] == 0
    groups["complex cells"] = params["is_complex"] == 1
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoders", required=True, help="NAME=SOURCE,NAME=SOURCE")
    parser.add_argument("--tier", default="final_test_main")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sources = dict(entry.split("=", 1) for entry in args.encoders.split(","))
    recording = open_recording("sample")
    encoders = {name: open_encoder(source) for name, source in sources.items()}
    results = evaluate_encoders(encoders, recording, args.tier)
    params = recording.mouse.params
    order = np.argsort(params["unit_ids"])
    position = order[np.searchsorted(params["unit_ids"], recording.neurons.ids, sorter=order)]
    groups = neuron_groups({k: v[position] for k, v in params.items()})

    header = "| simulated neurons | neurons |"
    for name in encoders:
        header += f" {name}: corr. with noise-free rates | {name}: single trial / oracle |"
    print(f"{args.tier}, {len(next(iter(results.values())).trials)} trials\n")
    print(header)
    print("|---" * (2 + 2 * len(encoders)) + "|")
    for label, chosen in groups.items():
        row = f"| {label} | {int(chosen.sum()):,} |"
        for name in encoders:
            result = results[name]
            ratio = result.single_trial[chosen].mean() / result.oracle_single_trial[chosen].mean()
            row += f" {result.to_noise_free[chosen].mean():.3f} | {ratio:.3f} |"
        print(row)


if __name__ == "__main__":
    main()
