"""Meta-ACON at inference: BN recalibration against the alternatives, measured
in two protocols on real Fashion-MNIST (the figures of the README's main job).

For each seed it trains ``small_cnn`` with Meta-ACON and reports the test
accuracy in inference mode (moving statistics) before and after
``keras_acts.recalibration.recalibrate_batch_norm`` and in batch-statistics mode
(``predict_with_batch_statistics``, training batch size), plus the same for
``MetaAcon(use_bn=False)`` (the generator without its batch norms, YOLOv5's fix):

* ``old``: the main job before issue 12 (two conv-BN-act per block, global
  average pool, width 32, 6,000 training images, 2 epochs, Adam 1e-3 constant,
  batch 128, BN momentum 0.9): the weights still move at the end, so the
  moving statistics lag;
* ``new``: the current main job (``keras_acts.demo`` defaults: one conv-BN-act
  per block, flatten head, width 24, 60,000 images, 2 epochs, Adam one-cycle
  3e-3, batch 128).

Usage::

    python -m benchmarks.bn_recalibration --protocol old --seeds 3
    python -m benchmarks.bn_recalibration --protocol new --variants no_bn
"""

import argparse
import json
import math
import os
import time

import keras
import numpy as np

from keras_acts.data.fashion_mnist import load_data
from keras_acts.data.fashion_mnist import prepare_images
from keras_acts.layers import MetaAcon
from keras_acts.models import small_cnn
from keras_acts.recalibration import predict_with_batch_statistics
from keras_acts.recalibration import recalibrate_batch_norm
from keras_acts.report import markdown_table

PROTOCOLS = {
    "old": dict(train=6000, epochs=2, width=32, convs_per_block=2, head="gap",
                learning_rate=1e-3, one_cycle=False),
    "new": dict(train=0, epochs=2, width=24, convs_per_block=1, head="flatten",
                learning_rate=3e-3, one_cycle=True),
}
BATCH = 128


def run(protocol, variant, seed, data):
    """One training run; returns the accuracies (inference before/after
    recalibration, batch statistics)."""
    (x, y), (xt, yt) = data
    p = PROTOCOLS[protocol]
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    use_bn = variant == "meta_acon"
    model = small_cnn(lambda: MetaAcon(use_bn=use_bn), width=p["width"],
                      convs_per_block=p["convs_per_block"], head=p["head"], bn_momentum=0.9)
    steps = p["epochs"] * math.ceil(len(x) / BATCH)
    lr = p["learning_rate"]
    if p["one_cycle"]:
        warm = steps // 10
        lr = keras.optimizers.schedules.CosineDecay(lr / 25, steps - warm, alpha=0.0,
                                                    warmup_target=lr, warmup_steps=warm)
    model.compile(keras.optimizers.Adam(lr),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=p["epochs"], verbose=0)
    fit_s = time.perf_counter() - start

    def accuracy(logits):
        return float(np.mean(np.asarray(logits).argmax(-1) == yt))

    before = accuracy(model.predict(xt, batch_size=1000, verbose=0))
    batch = accuracy(predict_with_batch_statistics(model, xt, BATCH))
    order = np.random.default_rng(seed).permutation(len(x))[:100 * BATCH]
    recalibrate_batch_norm(model, x[order], steps=100, batch_size=BATCH)
    after = accuracy(model.predict(xt, batch_size=1000, verbose=0))
    return {"protocol": protocol, "variant": variant, "seed": seed, "before": before,
            "after": after, "batch_statistics": batch, "fit_seconds": fit_s,
            "load_average": os.getloadavg()[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="old")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default="meta_acon,no_bn",
                        help="comma-separated: meta_acon (use_bn=True), no_bn (use_bn=False)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    (x, y), (xt, yt) = load_data(install=False)
    if PROTOCOLS[args.protocol]["train"]:
        keep = np.sort(np.random.default_rng(1234).permutation(len(x))[
            :PROTOCOLS[args.protocol]["train"]])
        x, y = x[keep], y[keep]
    data = ((prepare_images(x), y.astype(np.int32)), (prepare_images(xt), yt.astype(np.int32)))
    rows = []
    for variant in args.variants.split(","):
        for seed in range(args.seeds):
            r = run(args.protocol, variant, seed, data)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(markdown_table(
        ["protocol", "generator", "seed", "inference before %", "inference after %",
         "batch statistics %", "fit s", "load avg"],
        [[r["protocol"], "BN" if r["variant"] == "meta_acon" else "no BN", r["seed"],
          f"{100 * r['before']:.2f}", f"{100 * r['after']:.2f}",
          f"{100 * r['batch_statistics']:.2f}", f"{r['fit_seconds']:.0f}",
          f"{r['load_average']:.1f}"] for r in rows]))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"bn_recalibration_{args.protocol}.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
