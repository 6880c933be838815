# %% [markdown]
# # Lab 06 — The deep-compression pipeline
#
# **You will leave able to** chain pruning, k-means weight sharing and Huffman coding
# (Han, Mao & Dally, *Deep Compression*, ICLR 2016), count the bytes each stage really saves —
# indices, codebooks, tables and headers included — write the result as one file on disk, and trade
# accuracy against bytes.
#
# **Time:** about 60 minutes. Executing the notebook takes about a minute of CPU time (one BLAS
# thread; 52 s in our last measurement, on a 2-core x86-64 machine shared with other jobs). On a quiet
# machine the wall time is close to the CPU time; other jobs stretch it.
#
# **Three splits.** Every model here is retrained on the training split only. Every choice — the
# retraining learning rate, the pruning schedule, how the sparsity is split over the layers, whether to
# retrain with distillation, the size-budget model — is made on the 2,000 **validation** images. The
# 10,000 **test** images are used once, in the cells marked "Test, once" (end of section 4 and of
# section 7), after the choices are fixed.
#
# **The paper's LeNet-300-100 row (MNIST)** (Han et al. 2016, Tables 1 and 2), which we try to
# reproduce on Fashion-MNIST:
#
# | stage | what it stores | paper's ratio vs float32 |
# |---|---|---|
# | pruning | 8% of the weights survive (fc1 8%, fc2 9%, fc3 26%) | 12× (counting weights only) |
# | + quantization (weight sharing) | 6-bit codebook indices + 5-bit relative indices | 32× |
# | + Huffman coding | variable-length codes for both | 40× |
#
# with test error 1.64% before and 1.58% after (1070 KB → 27 KB). Fashion-MNIST is harder than
# MNIST and our baseline trained on 18,000 images, not 60,000, so accuracy is the figure to watch.

# %%
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from labkit import codec, metrics, models, plot, train
from labkit.data import load_fashion_mnist

threadpool_limits(1)  # one BLAS thread: the same summation order, so the same training, on every machine

data = load_fashion_mnist()
base = models.pretrained("lenet_300_100")
base_val = train.evaluate(base, data.X_val, data.y_val)
DENSE = metrics.size_bytes(base, "dense_fp32")
print(f"baseline: {metrics.count_params(base):,} parameters, {DENSE:,} bytes as float32")
print(f"baseline validation accuracy: {100 * base_val:.2f}% ({data.X_val.shape[0]:,} images)")

# %% [markdown]
# ## 1. Counting bytes honestly
#
# A compression ratio is only as good as its byte count. `labkit.metrics.size_bytes(model, fmt)`
# counts **every** byte of a storage format:
#
# | format | per weight layer |
# |---|---|
# | `dense_fp32` | 4 bytes per parameter |
# | `csr` | float32 value + int32 column index per non-zero, int32 row pointers, float32 biases |
# | `int8` | 1 byte per weight, a float32 scale per output channel, int32 biases |
# | `kmeans` | the file `labkit.codec.save_compressed(..., huffman=False)` writes: codebook, fixed-width codes |
# | `deep_compression` | the same file with Huffman-coded streams (`huffman=True`) |
# | `zip_fp32` | float32 parameters in a deflate zip, how the TF Model Optimization guides report size |
#
# The two compressed formats need weights that take few distinct values (weight sharing); on the
# float baseline they refuse rather than guess.

# %%
for fmt in ("dense_fp32", "csr", "int8", "zip_fp32"):
    print(f"{fmt:<11} {metrics.size_bytes(base, fmt):>10,} bytes")
try:
    metrics.size_bytes(base, "deep_compression")
except ValueError as exc:
    print("deep_compression:", str(exc)[:95], "...")

# %% [markdown]
# `csr` is *larger* than dense for an unpruned layer (8 bytes per non-zero instead of 4), and
# `zip_fp32` barely helps: random-looking float32 mantissas do not compress. The gains must come
# from the model itself — zeros and repeated values — and then from coding them well.
#
# ## 2. Huffman coding
#
# After weight sharing, each weight is a small integer (its cluster), and some clusters are much
# more common than others. A **Huffman code** (1952) gives frequent symbols short codes and rare
# symbols long ones, and no prefix code needs fewer total bits $\sum_s f_s L_s$. Construction:
# put every symbol in a heap by frequency; repeatedly take out the two least frequent subtrees and
# merge them (their frequencies add); each merge adds one bit to the code of every symbol under it.
# A *canonical* code then assigns the actual bit patterns from the lengths alone, so a file only
# stores the lengths (`labkit.codec.HuffmanTable`).

# %%
symbols = np.repeat(np.arange(4), [5, 2, 1, 1])
data_bytes, table = codec.huffman_encode(symbols)
print("frequencies:", np.bincount(symbols).tolist())
print("codes:", table.code_strings())
print(f"{symbols.size} symbols in {codec.huffman_nbits(symbols)} bits (fixed 2-bit codes: {2 * symbols.size})")
print("decodes exactly:", "yes" if np.array_equal(codec.huffman_decode(data_bytes, table), symbols) else "no")

# %% [markdown]
# ### Exercise 1 — Huffman code lengths (2 points)
#
# Write `huffman_code_lengths(freqs)`: given the positive frequencies of $k \ge 2$ symbols, return
# an integer array of their code lengths in an optimal prefix code, one length per symbol in the order
# of `freqs`, each at least 1. Use `heapq`; any optimal code passes (ties may be broken any way).

# %% nbgrader={"grade": false, "grade_id": "huffman_code_lengths", "locked": false, "schema_version": 3, "solution": true, "task": false}
import heapq


def huffman_code_lengths(freqs):
    ### BEGIN SOLUTION
    heap = [(int(f), i, [i]) for i, f in enumerate(freqs)]
    heapq.heapify(heap)
    lengths = np.zeros(len(freqs), dtype=np.int64)
    order = len(freqs)
    while len(heap) > 1:
        f1, _, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        lengths[a + b] += 1
        heapq.heappush(heap, (f1 + f2, order, a + b))
        order += 1
    return lengths
    ### END SOLUTION


# %% labkit={"answer": "huffman_code_lengths"} nbgrader={"grade": true, "grade_id": "check_huffman_code_lengths", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
from labkit.check import lab06

lab06.huffman_code_lengths(huffman_code_lengths)

# %% [markdown]
# ## 3. Where the surviving weights are: relative indices
#
# A pruned matrix must also store *where* its non-zeros are. CSR spends a 32-bit column index per
# non-zero. Deep Compression stores, for each non-zero, the **distance** from the previous one in a
# few bits (5 for fully connected layers, 8 for convolutions). Here we store the number of zeros
# skipped, `gap` $\in [0, 2^\text{width}-1]$. When a run of zeros is too long for the width, a
# **filler zero** is stored: an entry with gap $2^\text{width}-1$ and value 0, after which
# counting restarts. The paper's figure, with 3-bit gaps:

# %%
x = np.array([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])
gaps, vals = codec.relative_encode(x, width=3)
print("x     :", x.tolist())
print("gaps  :", gaps.tolist(), " values:", vals.tolist(), " (one filler: gap 7, value 0)")
print("decode:", codec.relative_decode(gaps, vals, x.size).tolist())


# %% [markdown]
# ### Exercise 2 — relative-index encoding (2 points)
#
# Write `relative_encode(x, width)` for a 1-D array `x`: return the pair `(gaps, values)` as two
# arrays of equal length, one entry per non-zero of `x` in order, plus a filler entry (gap $2^\text{width}-1$, value 0) each time the
# zeros before the next non-zero do not fit. A run of $r$ zeros needs $\lfloor r/2^\text{width}\rfloor$
# fillers, and the real entry then has gap $r \bmod 2^\text{width}$. Zeros after the last non-zero
# are not stored.

# %% nbgrader={"grade": false, "grade_id": "relative_encode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def relative_encode(x, width):
    ### BEGIN SOLUTION
    step = 2**width
    gaps, values, prev = [], [], -1
    for p in np.flatnonzero(x):
        run = p - prev - 1
        for _ in range(run // step):
            gaps.append(step - 1)
            values.append(0)
        gaps.append(run % step)
        values.append(x[p])
        prev = p
    return np.array(gaps, dtype=np.int64), np.array(values, dtype=x.dtype)
    ### END SOLUTION


# %% labkit={"answer": "relative_encode"} nbgrader={"grade": true, "grade_id": "check_relative_encode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab06.relative_encode(relative_encode)


# %% [markdown]
# ### Exercise 3 — the compression ratio of a layer (2 points)
#
# Take a pruned layer whose surviving weights share $K$ distinct non-zero values (after $b$-bit
# k-means, $K \le 2^b$). Stored the way `labkit.codec` stores it *before* Huffman coding (the `kmeans`
# format, sparse layout), it costs
#
# * the codebook: the $K$ shared values as float32, $4K$ bytes (zero needs no entry);
# * a fixed-width **code** per stored entry: code 0 means "weight 0" (fillers are stored with code 0)
#   and codes $1 \dots K$ name the codebook entries, so $K + 1$ symbols need
#   $c = \lceil \log_2(K+1) \rceil$ bits — one more than $b$ when all $2^b$ values are in use:
#   $\lceil m c / 8 \rceil$ bytes;
# * a relative index per stored entry: $\lceil m \cdot \text{index\_bits} / 8 \rceil$ bytes,
#
# where $m$ counts the stored entries **including fillers** (use your `relative_encode` on
# `W.ravel()`). Write `layer_compression_ratio(W, index_bits)` returning, as a float, the float32 size
# of `W` ($4 \cdot$ `W.size` bytes) divided by that. (Biases and the file header are left out here; the
# codec counts them.)

# %% nbgrader={"grade": false, "grade_id": "layer_compression_ratio", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_compression_ratio(W, index_bits):
    ### BEGIN SOLUTION
    K = np.unique(W[W != 0]).size
    code_bits = math.ceil(math.log2(K + 1))
    m = relative_encode(W.ravel(), index_bits)[0].size
    stored = 4 * K + math.ceil(m * code_bits / 8) + math.ceil(m * index_bits / 8)
    return 4 * W.size / stored
    ### END SOLUTION


# %% labkit={"answer": "layer_compression_ratio"} nbgrader={"grade": true, "grade_id": "check_layer_compression_ratio", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab06.layer_compression_ratio(layer_compression_ratio)

# %% [markdown]
# ## 4. The pipeline on LeNet-300-100
#
# **Stage 1 — pruning.** Magnitude pruning to a target sparsity, reached in steps with retraining in
# between (Han et al. 2015), with `labkit.prune` (lab 01): its `MaskCallback` keeps pruned weights at
# exactly zero while training. **Stage 2 — weight sharing.** Each layer's surviving weights are
# clustered by k-means into $2^b$ shared values (linear initialisation), then the codebook is
# fine-tuned: a centroid's gradient is the sum of its weights' gradients
# (`labkit.quant.kmeans_quantize_model`, `CodebookFinetune`). **Stage 3 — Huffman coding** of the
# weight codes and of the relative indices, inside `labkit.codec.save_compressed`.
#
# Deep Compression pruned LeNet-300-100 to 8% / 9% / 26% of the weights of fc1 / fc2 / fc3 (Han et
# al. 2015, Table 2; Han et al. 2016, Table 2). We prune to that split — sparsity 0.92 / 0.91 / 0.74,
# the overall sparsity printed below — and share weights at 4 bits (16 values per layer) rather than
# the paper's 6; the end of this section also builds the paper's 6-bit configuration, for a
# like-for-like comparison of bytes.
#
# **What is chosen, and on what.** Four things are not given by the paper for our data, and each is
# chosen by accuracy on the **validation** split, one after the other (the first three with seed 0):
#
# 1. the retraining **learning rate** (Adam, cosine decay restarting at each pruning step): 1e-3 (the
#    baseline's), 3e-3, 1e-2 or 3e-2;
# 2. the **schedule**: three pruning steps (to 50%, 80%, 100% of the target, retraining 1, 1, 2 epochs)
#    or one step to the target followed by 4 epochs: the same training budget;
# 3. the **split over layers**: the paper's per-layer targets (sparsity fc1 0.92, fc2 0.91, fc3 0.74)
#    or one global magnitude threshold at the same overall sparsity;
# 4. retraining with **knowledge distillation** from the unpruned network (lab 05's loss with soft
#    targets at T = 4 and weight α = 0.9 on them; not tuned here) or with plain cross-entropy — chosen on the
#    mean validation accuracy of three seeds, because these are the runs the claim in the test cell
#    below is made on.
#
# **What was traded for speed.** Three seeds of two retraining methods cost six runs (one shared with
# the choices), and the choices six. To keep the notebook within its time, each run retrains for
# 4 epochs on the first 12,000 images of the training split (375 Adam steps), far less than the
# paper's retraining. Recovery after pruning is then less complete than it could be; the lesson —
# what each stage costs and saves, and which differences survive the noise — does not need more.

# %%
from tqdm.auto import tqdm

from labkit import stats
from labkit.distill import kd_loss, teacher_logits
from labkit.prune import MaskCallback, global_magnitude_prune, layerwise_magnitude_prune
from labkit.quant import CodebookFinetune, kmeans_quantize_model

N_TRAIN = 12_000  # retraining images per run: the first 12,000 of the training split
X_tr, y_tr = data.X_train[:N_TRAIN], data.y_train[:N_TRAIN]
X_val, y_val = data.X_val, data.y_val
soft_targets = teacher_logits(base, X_tr)  # the dense network's logits, computed once

TARGET = {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}  # the paper's split (8 / 9 / 26 % kept): fraction removed
sizes = {name: layer.W.size for name, layer in base.weight_layers()}
OVERALL = sum(TARGET[k] * sizes[k] for k in sizes) / sum(sizes.values())  # the same sparsity, one threshold
SPLITS = {"per layer": TARGET, "global": OVERALL}
SCHEDULES = {  # (fraction of the target, retraining epochs): 4 epochs either way
    "three steps": [(0.5, 1), (0.8, 1), (1.0, 2)],
    "one step": [(1.0, 4)],
}
LRS = [1e-3, 3e-3, 1e-2, 3e-2]
BITS = 4  # k-means: 2^BITS = 16 shared values per layer
SEEDS = (0, 1, 2)


def distillation_loss(logits, y, batch_index):
    return kd_loss(logits, soft_targets[batch_index], y, T=4.0, alpha=0.9)


def prune_and_retrain(model, target, steps, lr, loss_fn=None, seed=0):
    """Prune to ``fraction · target`` at each step, then retrain (cosine lr from ``lr``) with the masks held.

    ``target`` is ``{layer: sparsity}`` (layer-wise magnitude pruning) or one float (one global
    magnitude threshold over all layers); ``loss_fn=None`` is plain cross-entropy.
    """
    for fraction, epochs in steps:
        if isinstance(target, dict):
            layerwise_magnitude_prune(model, {name: s * fraction for name, s in target.items()})
        else:
            global_magnitude_prune(model, target * fraction)
        train.fit(model, (X_tr, y_tr), epochs=epochs, lr=lr, seed=seed, callbacks=[MaskCallback()],
                  lr_schedule="cosine", loss_fn=loss_fn, progress=False)
    return model


def val_acc(model):
    return train.evaluate(model, X_val, y_val)


print(f"overall sparsity of the paper's split: {OVERALL:.4f} ({100 * (1 - OVERALL):.2f} % of the weights kept)")

# %% [markdown]
# The choices 1–3, on validation (seed 0, distillation):

# %% tags=["nbval-ignore-output"]
runs = {}  # (split, schedule, lr) -> retrained model, seed 0, distillation
with tqdm(total=len(LRS) + 2, desc="choices on validation") as bar:
    for lr in LRS:
        runs["per layer", "three steps", lr] = prune_and_retrain(
            base.copy(), TARGET, SCHEDULES["three steps"], lr, distillation_loss)
        bar.update(1)
    LR = max(LRS, key=lambda lr: val_acc(runs["per layer", "three steps", lr]))
    runs["per layer", "one step", LR] = prune_and_retrain(base.copy(), TARGET, SCHEDULES["one step"], LR,
                                                          distillation_loss)
    bar.update(1)
    SCHEDULE = max(SCHEDULES, key=lambda sc: val_acc(runs["per layer", sc, LR]))
    runs["global", SCHEDULE, LR] = prune_and_retrain(base.copy(), OVERALL, SCHEDULES[SCHEDULE], LR,
                                                     distillation_loss)
    bar.update(1)
SPLIT = max(SPLITS, key=lambda sp: val_acc(runs[sp, SCHEDULE, LR]))
for (split, schedule, lr), m in runs.items():
    print(f"{split:<9} | {schedule:<11} | lr {lr:g}: validation accuracy {100 * val_acc(m):.2f}%")
print(f"validation chose: lr {LR:g}, {SCHEDULE}, {SPLIT} split")

# %% [markdown]
# Choice 4, distillation or cross-entropy, with the recipe fixed above, three seeds each (seed 0 of
# distillation is the run already made). Each retrained model is then shared at 4 bits (k-means) and its
# codebook fine-tuned for one epoch (lr 1e-3, the baseline's; not tuned) with the chosen loss. The
# pruned model *without* retraining is kept too: the claim that retraining helps needs it.

# %% tags=["nbval-ignore-output"]
distilled = {0: runs[SPLIT, SCHEDULE, LR]}
crossent = {}
with tqdm(total=2 * len(SEEDS) - 1, desc="distillation vs cross-entropy") as bar:
    for seed in SEEDS:
        if seed not in distilled:
            distilled[seed] = prune_and_retrain(base.copy(), SPLITS[SPLIT], SCHEDULES[SCHEDULE], LR,
                                                distillation_loss, seed=seed)
            bar.update(1)
        crossent[seed] = prune_and_retrain(base.copy(), SPLITS[SPLIT], SCHEDULES[SCHEDULE], LR, None, seed=seed)
        bar.update(1)
val_kd = [val_acc(distilled[s]) for s in SEEDS]
val_ce = [val_acc(crossent[s]) for s in SEEDS]
USE_KD = np.mean(val_kd) >= np.mean(val_ce)
retrained = distilled if USE_KD else crossent
retrain_loss = distillation_loss if USE_KD else None

not_retrained = base.copy()  # pruned to the same target in one step, no training at all
if SPLIT == "per layer":
    layerwise_magnitude_prune(not_retrained, TARGET)
else:
    global_magnitude_prune(not_retrained, OVERALL)

shared_before, shared_after = {}, {}
for seed in tqdm(SEEDS, desc="codebook fine-tuning"):
    q, books = kmeans_quantize_model(retrained[seed], BITS)
    shared_before[seed] = q.copy()
    train.fit(q, (X_tr, y_tr), epochs=1, lr=1e-3, seed=seed, callbacks=[CodebookFinetune(books, lr=1e-3)],
              loss_fn=retrain_loss, progress=False)
    shared_after[seed] = q
for seed in SEEDS:
    print(f"seed {seed}: validation accuracy, distillation {100 * val_kd[seed]:.2f}%, "
          f"cross-entropy {100 * val_ce[seed]:.2f}%; shared {100 * val_acc(shared_before[seed]):.2f}% -> "
          f"{100 * val_acc(shared_after[seed]):.2f}% after codebook fine-tuning")
print(f"not retrained: {100 * val_acc(not_retrained):.2f}%")
print(f"validation chose: {'distillation' if USE_KD else 'cross-entropy'} "
      f"(mean over 3 seeds {100 * np.mean(val_kd):.2f}% vs {100 * np.mean(val_ce):.2f}%)")

# %% [markdown]
# From here on, the pipeline's model is the chosen recipe's seed 0: `pruned` after stage 1, `shared`
# after stage 2. Now the file. `save_compressed` writes it atomically; `load_compressed` checks its
# length, version and CRC-32 before decoding. Its size on disk *is* `size_bytes(model, "deep_compression")`.

# %%
pruned, shared = retrained[0], shared_after[0]
workdir = Path(tempfile.mkdtemp(prefix="labkit_lab06_"))
path = codec.save_compressed(shared, workdir / "lenet_300_100.lkdc")
loaded = codec.load_compressed(path)
same = np.array_equal(loaded.predict(X_val), shared.predict(X_val))
print(
    "file size on disk == size_bytes(model, 'deep_compression'):",
    "yes" if path.stat().st_size == metrics.size_bytes(shared, "deep_compression") else "no",
)
print("the loaded model predicts exactly like the one in memory:", "yes" if same else "no")
print(
    "every weight pruned in stage 1 is still zero after loading:",
    "yes"
    if all(np.all(lw.W[~sl.mask] == 0) for (_, lw), (_, sl) in zip(loaded.weight_layers(), shared.weight_layers()))
    else "no",
)


# %% [markdown]
# The table of stages, with validation accuracies. The pruned model (float32 values) is counted two
# ways: in CSR with int32 indices, and as float32 values plus 5-bit relative indices (the paper's form
# before weight sharing). The paper's "12×" counts weights only. Our pipeline shares weights at 4
# bits; the paper's rows at 32× and 40× are for 6 bits (64 shared values per layer). So the table ends
# with the **paper's configuration** as well: the seed-0 run with the paper's per-layer split from the
# choices above, shared at 6 bits by k-means (no codebook fine-tuning: it moves the shared values,
# not the bytes), 5-bit relative indices, written to the same file format.

# %% tags=["nbval-ignore-output"]
def relative_fp32_bytes(model, width=5):
    """float32 value + `width`-bit relative index per stored entry (fillers included) + float32 biases."""
    total = 0
    for _, layer in model.weight_layers():
        m = codec.relative_encode(layer.W.ravel(), width)[0].size
        total += 4 * m + math.ceil(m * width / 8) + 4 * layer.b.size
    return total


PAPER_BITS = 6  # Han et al. 2016, Table 2: 6-bit weights (64 shared values) for LeNet-300-100
paper_config, _ = kmeans_quantize_model(runs["per layer", SCHEDULE, LR], PAPER_BITS)
nnz = metrics.count_nonzero(pruned, weights_only=True)
weights = metrics.count_params(base, weights_only=True)
stages = [  # (stage, bytes, model, the paper's ratio)
    ("baseline, float32", DENSE, base, "1×, 1.64% error"),
    ("pruned, weights only", None, pruned, "12×"),
    ("pruned, CSR int32 indices", metrics.size_bytes(pruned, "csr"), pruned, ""),
    ("pruned, 5-bit relative indices", relative_fp32_bytes(pruned), pruned, ""),
    (f"+ k-means {BITS} bits (fixed width)", metrics.size_bytes(shared, "kmeans"), shared, ""),
    ("+ Huffman (file on disk)", path.stat().st_size, loaded, ""),
    (f"paper's config: k-means {PAPER_BITS} bits", metrics.size_bytes(paper_config, "kmeans"), paper_config, "32×"),
    ("paper's config: + Huffman", metrics.size_bytes(paper_config, "deep_compression"), paper_config,
     "40×, 1.58% error"),
]
print(f"{'stage':<34} {'bytes':>10} {'ratio':>7} {'val. acc.':>9}   paper (MNIST)")
for name, size, model, paper in stages:
    ratio = weights / nnz if size is None else DENSE / size
    shown = "—" if size is None else f"{size:,}"
    print(f"{name:<34} {shown:>10} {ratio:>6.1f}× {100 * val_acc(model):>8.2f}%   {paper}")

paper_rows = codec.compression_report(paper_config)[:-1]
entries = sum(row["nonzero"] + row["fillers"] for row in paper_rows)
sparse_entries = sum(row["nonzero"] + row["fillers"] for row in paper_rows if row["layout"] == "sparse")
print(f"\npaper's configuration, bits per stored entry after Huffman: weight codes "
      f"{8 * sum(row['weight_bytes'] for row in paper_rows) / entries:.2f}, relative indices "
      f"{8 * sum(row['index_bytes'] for row in paper_rows) / sparse_entries:.2f} (the paper: 5.1 and 3.7); "
      f"fillers {sum(row['fillers'] for row in paper_rows):,}; biases, codebooks and header "
      f"{sum(row['bias_bytes'] + row['codebook_bytes'] for row in paper_rows) + codec.compression_report(paper_config)[-1]['header_bytes']:,} bytes")

# %%
paper_config_ratio = DENSE / stages[7][1]
print(f"kept weights: {nnz:,} of {weights:,}, {weights / nnz:.1f}x fewer (the paper: 12x)")
print("the paper's configuration compresses within 10 % of the paper's 40x (36x to 44x):",
      "yes" if 36 <= paper_config_ratio <= 44 else "no")
print("our 4-bit file is smaller than the paper's 6-bit configuration:", "yes" if stages[5][1] < stages[7][1] else "no")
print("each stage is smaller than the one before (CSR > relative > k-means > Huffman):",
      "yes" if stages[2][1] > stages[3][1] > stages[4][1] > stages[5][1] else "no")

# %% [markdown]
# ### Test, once: the pipeline and the training claims
#
# Every choice above was made on validation and is now fixed. The test set is used here, once, for
# two kinds of claim:
#
# * **two fixed models on the same 10,000 test images** (the float baseline and the compressed file):
#   the paired difference of accuracies with a 95 % bootstrap interval (`stats.paired_bootstrap`) and
#   the exact McNemar p-value;
# * **claims about training** (retraining after pruning, codebook fine-tuning, distillation in
#   retraining): three seeds each. Their interval must cover two sources of noise — the seeds that
#   trained the models and the images that happen to be in the test set — so it comes from a
#   **two-level bootstrap** (`stats.seed_image_bootstrap`): each resample draws the seeds with
#   replacement, then the test images with replacement, and takes the mean paired difference; the
#   p-value comes from the same resamples (`stats.seed_image_pvalue`).
#
# Each verdict is "yes" (above 0), "no" (below 0) or "not resolved at this sample size". The four
# "is A more accurate than B" claims are one family, read after **Holm's correction**
# (`stats.family_verdicts`), which keeps the chance of any false "yes" or "no" among them at 5 %; the
# "less than 1 pp" claim is a margin on the first of them and the budget check below is a threshold,
# each read on its own.

# %% tags=["test-once"]
# Test, once: every choice above was made on validation; nothing computed here feeds a choice
test_X, test_y = data.X_test, data.y_test
test_cache = {}  # id(model) -> per-image correctness on the test split, computed once per model


def test_correct(model):
    if id(model) not in test_cache:
        test_cache[id(model)] = model.predict(test_X) == test_y
    return test_cache[id(model)]


def test_accuracy(model):
    return float(test_correct(model).mean())


def over_seeds(models_by_seed):
    """Per-seed, per-image test correctness: bool array (seeds, images); a single model is repeated."""
    return np.stack([test_correct(models_by_seed[s] if isinstance(models_by_seed, dict) else models_by_seed)
                     for s in SEEDS])


test_stage_acc = [(name, size, test_accuracy(model)) for name, size, model, _ in stages]
test_file = stats.paired_bootstrap(test_correct(base), test_correct(loaded), seed=0)  # baseline − file
test_file_p = stats.mcnemar(test_correct(base), test_correct(loaded))
test_seed_pairs = {
    "retrained − not retrained (stage 1)": (over_seeds(retrained), over_seeds(not_retrained)),
    "codebook fine-tuned − k-means alone (stage 2)": (over_seeds(shared_after), over_seeds(shared_before)),
    "distillation − cross-entropy retraining": (over_seeds(distilled), over_seeds(crossent)),
}
test_seed_results = {
    text: (*stats.seed_image_bootstrap(a, b, seed=0), stats.seed_image_pvalue(a, b, seed=0))
    for text, (a, b) in test_seed_pairs.items()
}
family_diffs = [test_file[0]] + [r[0] for r in test_seed_results.values()]
family_p = [test_file_p] + [r[3] for r in test_seed_results.values()]
family_words = stats.family_verdicts(family_diffs, family_p)

# %% tags=["test-once", "nbval-ignore-output"]
# Test, once: the numbers (floats, so nbval does not compare them)
print(f"{'stage':<34} {'test acc.':>9}")
for t_name, _, t_acc in test_stage_acc:
    print(f"{t_name:<34} {100 * t_acc:>8.2f}%")
print(f"\nbaseline − compressed file: {100 * test_file[0]:+.2f} pp "
      f"(95 % bootstrap interval {100 * test_file[1]:+.2f} to {100 * test_file[2]:+.2f}), McNemar p = {test_file_p:.3g}; "
      f"the interval alone: {stats.verdict(test_file[1], test_file[2])}")
for t_text, (t_mean, t_lo, t_hi, t_p) in test_seed_results.items():
    a, b = test_seed_pairs[t_text]
    print(f"{t_text}: {100 * t_mean:+.2f} pp (95 % interval over 3 seeds x {len(test_y):,} images {100 * t_lo:+.2f} to "
          f"{100 * t_hi:+.2f}, p = {t_p:.3g}; seeds {', '.join(f'{100 * x:+.2f}' for x in a.mean(1) - b.mean(1))}; "
          f"the interval alone: {stats.verdict(t_lo, t_hi)})")
print("Holm-adjusted p-values of the family:", ", ".join(f"{q:.3g}" for q in stats.holm(family_p)))

# %% tags=["test-once"]
# Test, once: the verdicts (the family after Holm's correction)
print("the compressed file is less accurate than the float baseline:", family_words[0])
print("the compressed file loses less than 1 pp against the baseline:",
      stats.verdict(0.01 - test_file[2], 0.01 - test_file[1]))
test_words = {
    "retrained − not retrained (stage 1)": "retraining after pruning ends more accurate than pruning without it",
    "codebook fine-tuned − k-means alone (stage 2)": "codebook fine-tuning ends more accurate than k-means alone",
    "distillation − cross-entropy retraining": "retraining with distillation ends more accurate than with cross-entropy",
}
for t_text, word in zip(test_seed_results, family_words[1:]):
    print(f"{test_words[t_text]} (3 seeds): {word}")

# %% [markdown]
# **Reading the verdicts** (written after running; the numbers are in the cells above, and a re-run on
# another machine may move them slightly).
#
# * **Bytes.** Our pipeline's file (4-bit sharing, the split validation chose) is 39.1× smaller than
#   float32, and each stage is smaller than the one before; bytes are exact counts and need no
#   interval. Like for like — the paper's split and 6-bit sharing — our file is 32.4× smaller, short of
#   the paper's 40×: the verdict above is "no". The cell above the verdicts says where: after Huffman
#   coding our weight codes take 5.53 bits per stored entry and our relative indices 4.52, where the
#   paper's take 5.1 and 3.7, and our file also stores 3,010 bytes of biases, codebooks and header.
#   The indices are the larger gap. Section 5 measures why they cost what they do: fc1's survivors
#   are coded almost as expensively as the same number of survivors at random positions, so our
#   pruning leaves little pattern for Huffman to exploit. The paper's 3.7 bits say its survivors were
#   clustered; on MNIST, whose border pixels are blank, whole input columns can be pruned — a likely
#   reason, which this lab has not tested.
# * **The compressed file against the float baseline** (two fixed models, paired on the same test
#   images): less accurate, **yes**, by about 1 pp; whether it loses *less than* 1 pp is **not
#   resolved**: the interval reaches both sides of 1 pp. The paper lost nothing on MNIST (1.64% →
#   1.58% error) after much longer retraining; our runs retrain for 375 steps, traded for the three
#   seeds below.
# * **Retraining after pruning: yes**, by about 52 pp. Pruned in one step without retraining, the
#   network collapses (35.25% on validation); retraining recovers nearly all of it. The two-level
#   interval is about two points wide although the three seeds agree within a few hundredths: another
#   draw of test images would move all three together, and the interval says so.
# * **Codebook fine-tuning: not resolved.** The per-seed differences are about a tenth of a point either
#   way. With 16 shared values per layer, k-means alone already lands within a few tenths of a point
#   of the pruned model, so there is little to repair; and fine-tuning moves only the 16 shared values
#   of each layer (and the biases), each by the summed gradient of the weights that use it — a pruned
#   weight belongs to no cluster and contributes nothing (Han et al. 2016, §3.3) — so it can repair
#   the rounding of the shared values but cannot bring back pruned weights.
# * **Distillation in retraining: not resolved.** Validation chose distillation, by 0.2 pp on the mean
#   of three seeds; on the test set the three paired differences came out a tenth or two of a point
#   *below* zero, and the interval, which also carries the test images' noise, contains 0. A
#   difference this small needs more seeds than three, and more images.
#
# Holm's correction moves none of these four verdicts (the adjusted p-values are printed above).
#
# **What validation chose, in our run.** Learning rate **1e-2**: 1e-3 (the rate that trained the
# baseline) left the pruned model several points lower, and 3e-2 was already worse than 1e-2, so the
# choice is inside the grid rather than at its edge. Renda, Frankle & Carbin (ICLR 2020) report the
# same effect on larger networks: retraining at a higher learning rate recovers more accuracy after
# pruning than fine-tuning at a small one. Schedule: **one step**, ahead of three steps by 8 of the
# 2,000 validation images — within the noise of one run, so not a clear choice. Split: **one global
# threshold**, 20 images ahead of the paper's per-layer targets; it prunes fc1 harder and keeps more
# of fc2 and fc3 (the per-layer breakdown below). Loss: **distillation**, by a hair (above).
#
# Where do the bytes go? `codec.compression_report` breaks the file down per layer.

# %% tags=["nbval-ignore-output"]
report = codec.compression_report(shared)
for row in report[:-1]:
    print(
        f"{row['layer']}: {row['nonzero']:>6,} non-zeros + {row['fillers']:>5,} fillers, layout {row['layout']:<6} | "
        f"codebook {row['codebook_bytes']:>4} B, weight codes {row['weight_bytes']:>6,} B, "
        f"indices {row['index_bytes']:>6,} B, bias {row['bias_bytes']:>5,} B"
    )
print(f"header + CRC: {report[-1]['header_bytes']} B")

# %% [markdown]
# ## 5. Why Huffman pays: the distributions
#
# Huffman coding helps exactly as much as the symbols are unevenly used. The entropy
# $H = -\sum_s p_s \log_2 p_s$ is the least number of bits per symbol any code can reach. The
# fixed-width form it is compared with is the one the file really uses (exercise 3): for a layer with
# $K$ shared values, $\lceil \log_2(K+1) \rceil$ bits per weight code, because code 0 is reserved for
# zeros and fillers — **5 bits** for our $K = 16$, not 4 — and 5 bits per relative index. Both
# streams hold one symbol per stored entry, **fillers included**, exactly as the codec writes them.

# %%
fc1 = shared["fc1"]
K_fc1 = np.unique(fc1.W[fc1.W != 0]).size
symbols_fc1 = np.zeros(fc1.W.size, dtype=np.int64)  # the codec's symbols: 0 = weight 0, i = codebook[i - 1]
nz = fc1.W.ravel() != 0
symbols_fc1[nz] = np.searchsorted(np.unique(fc1.W[fc1.W != 0]), fc1.W.ravel()[nz]) + 1
gaps_fc1, codes_fc1 = codec.relative_encode(symbols_fc1, 5)  # one (gap, code) per stored entry
CODE_BITS = math.ceil(math.log2(K_fc1 + 1))
row_fc1 = codec.compression_report(shared, huffman=False)[0]
same_streams = row_fc1["weight_bytes"] == math.ceil(codes_fc1.size * CODE_BITS / 8) and row_fc1[
    "index_bytes"
] == math.ceil(gaps_fc1.size * 5 / 8)
print("the fixed-width file stores exactly these streams (weight codes and indices, bytes):", "yes" if same_streams else "no")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].bar(np.arange(K_fc1 + 1), np.bincount(codes_fc1, minlength=K_fc1 + 1), color="#0072B2")
axes[0].set_xticks(np.arange(K_fc1 + 1), ["0\nfiller"] + [str(k) for k in range(1, K_fc1 + 1)], fontsize=8)
axes[0].set(title=f"fc1: weight codes ({CODE_BITS} bits fixed)", xlabel="code (1..16: shared values sorted by value)",
            ylabel="count")
axes[1].bar(np.arange(32), np.bincount(gaps_fc1, minlength=32), color="#D55E00")
axes[1].set(
    title="fc1: relative indices (zeros skipped), 5 bits", xlabel="gap (31 = filler or 31 zeros)", ylabel="count"
)
plt.tight_layout()
plot.show(
    fig,
    alt="Two bar charts for layer fc1 of the compressed model. Left: how often each weight code is stored, "
    "code 0 (fillers) and the 16 shared values sorted by value. Code 0 is the most frequent single symbol; "
    "the shared values form two humps, the surviving weights just past the pruning threshold on the "
    "negative and on the positive side, while the largest weights (both ends) and values near zero (the "
    "middle, mostly pruned) are rare. Right: how often each relative index 0 to 31 occurs; the counts fall "
    "off from 0 with a spike at 31 (fillers). Read: both streams are unevenly used, which is what Huffman "
    "coding exploits.",
)


# %% tags=["nbval-ignore-output"]
def entropy_bits(sym):
    p = np.bincount(sym) / sym.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


print(f"fc1: K = {K_fc1} shared values -> {CODE_BITS}-bit codes; {codes_fc1.size:,} stored entries "
      f"= {int(nz.sum()):,} non-zeros + {int((codes_fc1 == 0).sum()):,} fillers")
for label, sym, fixed in [("weight codes", codes_fc1, CODE_BITS), ("relative indices", gaps_fc1, 5)]:
    print(
        f"fc1 {label:<16}: fixed {fixed} bits, entropy {entropy_bits(sym):.2f} bits, "
        f"Huffman {codec.huffman_nbits(sym) / sym.size:.2f} bits per symbol"
    )
# Control: the same number of survivors at uniformly random positions of fc1 — what the positions
# would cost if pruning left no pattern at all.
random_layout = np.zeros(fc1.W.size, dtype=np.int64)
random_layout[np.random.default_rng(0).choice(fc1.W.size, int(nz.sum()), replace=False)] = 1
gaps_random, _ = codec.relative_encode(random_layout, 5)
print(f"fc1 relative indices, the same {int(nz.sum()):,} survivors at random positions: entropy "
      f"{entropy_bits(gaps_random):.2f} bits, {int((gaps_random == 31).sum()):,} fillers")

# %%
saved = 1 - metrics.size_bytes(shared, "deep_compression") / metrics.size_bytes(shared, "kmeans")
huff_w = codec.huffman_nbits(codes_fc1) / codes_fc1.size
print(
    f"Huffman codes fc1's weights in fewer bits than the fixed {CODE_BITS}-bit width:",
    "yes" if huff_w < CODE_BITS else "no",
)
print(
    "Huffman's codes are within 0.1 bit/symbol of the entropy:",
    "yes" if huff_w - entropy_bits(codes_fc1) < 0.1 else "no",
)
print("Huffman coding shrinks the whole file by more than 10%:", "yes" if saved > 0.10 else "no")
print("fc1's relative indices are within half a bit per entry of random positions' entropy:",
      "yes" if abs(entropy_bits(gaps_fc1) - entropy_bits(gaps_random)) < 0.5 else "no")

# %% [markdown]
# Linear initialisation spreads the centroids over the whole range, so the many small surviving
# weights just past the pruning threshold (negative and positive) crowd into a few clusters on either
# side of the empty middle, while the large weights get clusters of their own: an uneven histogram,
# which is what Huffman exploits. Part of Huffman's gain over the fixed
# width is simply the reserved code: a 16-value codebook fills only 17 of the 32 patterns of a 5-bit
# code. The gap histogram decays roughly geometrically (positions of survivors look random), with a
# spike at 31 from the fillers.
#
# ## 6. Experiment: a Pareto front over sparsity × bits, on validation
#
# Which (sparsity, bits) pairs are worth it? For each overall sparsity we prune with one global
# magnitude threshold (it prunes fc1 hardest and fc3 least), in two steps (to 70 % of the target, then
# the target, one epoch each) with the learning rate and loss chosen in section 4, then share weights
# at several bit widths by k-means alone — no codebook fine-tuning here, to keep the sweep short
# (section 4 measured what fine-tuning adds) — and measure the compressed file's bytes and its
# **validation** accuracy. A point is on the **Pareto front** if no other point is both smaller and
# more accurate. The front is a choice (which configurations to keep), so it is drawn on validation.

# %% tags=["nbval-ignore-output"]
SPARSITIES = [0.85, 0.925, 0.96]  # overall; split over the layers by one global magnitude threshold
BIT_WIDTHS = [2, 3, 4, 5]

points, sweep_models = [], {}
with tqdm(total=len(SPARSITIES) * (1 + len(BIT_WIDTHS)), desc="sweep") as bar:
    for s in SPARSITIES:
        m = prune_and_retrain(base.copy(), s, [(0.7, 1), (1.0, 1)], LR, retrain_loss)
        bar.update(1)
        for bits in BIT_WIDTHS:
            q, _ = kmeans_quantize_model(m, bits)
            sweep_models[s, bits] = q
            points.append((s, bits, metrics.size_bytes(q, "deep_compression"), val_acc(q)))
            bar.update(1)


def pareto(points):
    """Points not dominated by another that is no larger and more accurate (or smaller and as accurate)."""
    return [
        p for p in points if not any((o[2] <= p[2] and o[3] > p[3]) or (o[2] < p[2] and o[3] >= p[3]) for o in points)
    ]


front = sorted(pareto(points), key=lambda p: p[2])
for s, bits, size, acc in sorted(points):
    mark = "  <- Pareto" if (s, bits, size, acc) in front else ""
    print(f"sparsity {s:<5g}, {bits} bits: {size:>7,} bytes ({DENSE / size:5.1f}x), "
          f"validation accuracy {100 * acc:.2f}%{mark}")

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
for s, marker in zip(SPARSITIES, "osD"):
    pts = [p for p in points if p[0] == s]
    ax.scatter([p[2] / 1024 for p in pts], [100 * p[3] for p in pts], marker=marker, label=f"sparsity {s:g}")
    for p in pts:
        ax.annotate(f"{p[1]}b", (p[2] / 1024, 100 * p[3]), textcoords="offset points", xytext=(4, 3), fontsize=8)
ax.plot([p[2] / 1024 for p in front], [100 * p[3] for p in front], "k--", lw=1, label="Pareto front")
ax.axhline(100 * base_val, color="grey", lw=1, label="baseline (1,041 KB)")
ax.axvline(32, color=plot.COLORS[3], lw=1, ls=":", label="32 KB budget")
ax.set(
    xlabel="compressed file (KB)",
    ylabel="validation accuracy (%)",
    title="LeNet-300-100: accuracy vs bytes (validation)",
)
ax.legend(fontsize=8, loc="lower right")
plot.show(
    fig,
    alt="Validation accuracy against compressed file size (KB) for three overall sparsities (0.85 circles, "
    "0.925 squares, 0.96 diamonds), each point labelled with its bit width 2 to 5. A dashed line joins the "
    "Pareto-optimal points; a grey horizontal line marks the float baseline and a dotted vertical line the "
    "32 KB budget. Read which points lie on the front and which bit widths they use; the cell above lists "
    "every point and the verdicts below state how bytes grow with bits and shrink with sparsity.",
)

# %%
by = {(p[0], p[1]): p for p in points}
bit_pairs, sparsity_pairs = list(zip(BIT_WIDTHS, BIT_WIDTHS[1:])), list(zip(SPARSITIES, SPARSITIES[1:]))
more_bits_bigger = all(by[(s, a)][2] <= by[(s, b)][2] for s in SPARSITIES for a, b in bit_pairs)
sparser_smaller = all(by[(a, bt)][2] > by[(b, bt)][2] for bt in BIT_WIDTHS for a, b in sparsity_pairs)
print("more bits never make the file smaller (at each sparsity):", "yes" if more_bits_bigger else "no")
print("higher sparsity gives a smaller file at every bit width:", "yes" if sparser_smaller else "no")

# %% [markdown]
# Bytes are exact counts, so these two need no interval: they grow with the bit width and shrink with
# the sparsity at every point of the grid. Accuracy is noisier: each point is one training run,
# evaluated on 2,000 validation images, where one image is $100/2000 = 0.05$ pp and the standard error
# of an accuracy near 87 % is about $100\sqrt{0.87 \cdot 0.13 / 2000} \approx 0.75$ pp. Neighbouring points a few images apart are not
# distinguishable; treat the fine ordering of the front with that caution. Whether 2-bit sharing
# really costs accuracy against 5-bit at the highest sparsity is tested once, on the test set, at the
# end of section 7.

# %% [markdown]
# ## 7. Challenge: the best model under 32 KB (ungraded)
#
# Produce a compressed file of **at most 32 KB** (`lab06.BUDGET_BYTES`, 32 × 1024 bytes) whose model reaches **at least 85%**
# accuracy, and save it to `budget_path`. Choose your configuration on the **validation** split — the
# check below loads the file itself (it does not trust the model in memory) and measures its bytes and
# its validation accuracy. Only when your choice is final, run the "Test, once" cell after it: it
# reports the test accuracy of the one file you chose. Choosing among many candidates by their test
# accuracy would tune on the test set. It is a challenge, not a graded exercise: the grader verifies
# answers by re-running functions on its own inputs, and a file has none.
#
# The reference answer takes, among the sweep's models and the pipeline's model of section 4, the most
# accurate **on validation** whose file fits the budget.

# %%
candidates = {f"sparsity {s:g}, {bits} bits": q for (s, bits), q in sweep_models.items()}
candidates["the section 4 pipeline"] = shared
fits = {name: q for name, q in candidates.items() if metrics.size_bytes(q, "deep_compression") <= lab06.BUDGET_BYTES}
budget_choice = max(fits, key=lambda name: val_acc(fits[name]))
budget_path = workdir / "budget_model.lkdc"
written = codec.save_compressed(fits[budget_choice], budget_path)  # try your own configuration here

# %% tags=["nbval-ignore-output"]
print(f"validation chose: {budget_choice}, {budget_path.stat().st_size:,} bytes, "
      f"validation accuracy {100 * val_acc(fits[budget_choice]):.2f}%")

# %%
lab06.size_budget(budget_path, data.X_val, data.y_val, split="validation")

# %% [markdown]
# ### Test, once: the budget model, and 2 bits against 5
#
# The budget model is chosen and saved; the test set now reports its accuracy, once. The same cell
# answers the question the Pareto sweep left open: at sparsity 0.96, is 2-bit sharing less accurate
# than 5-bit? Two fixed models on the same test images: paired bootstrap interval and verdict.

# %% tags=["test-once"]
# Test, once: the budget file was chosen on validation above
lab06.size_budget(budget_path, data.X_test, data.y_test)

# %% tags=["test-once", "nbval-ignore-output"]
# Test, once: 5 bits − 2 bits at sparsity 0.96, paired on the test images
test_correct_5 = sweep_models[0.96, 5].predict(data.X_test) == data.y_test
test_correct_2 = sweep_models[0.96, 2].predict(data.X_test) == data.y_test
test_bits = stats.paired_bootstrap(test_correct_5, test_correct_2, seed=0)
print(f"5 bits − 2 bits at sparsity 0.96: {100 * test_bits[0]:+.2f} pp "
      f"(95 % bootstrap interval {100 * test_bits[1]:+.2f} to {100 * test_bits[2]:+.2f}), "
      f"McNemar p = {stats.mcnemar(test_correct_5, test_correct_2):.3g}")

# %% tags=["test-once"]
# Test, once: the verdict
print("2-bit sharing is less accurate than 5-bit at sparsity 0.96:", stats.verdict(test_bits[1], test_bits[2]))

# %% [markdown]
# ## Questions to think about
#
# 1. The relative indices cost about as much as the weight codes. Why can Huffman coding not
#    shrink them much below the entropy of a random sparsity pattern, and what kind of pruning would
#    make positions cheaper?
# 2. Our file stores biases as float32 (about 1.6 KB, some 6% of the file). Would you quantize them
#    too? What would you check first?
# 3. With all $2^b$ clusters in use, the `kmeans` stage stores each code in $b+1$ bits, because
#    code 0 is reserved for zeros and fillers. How else could a filler be marked?
# 4. `zip_fp32` of the pruned float model is far larger than our file. Which of the three stages does
#    a general-purpose compressor like deflate partly do, and which can it not do?
# 5. Section 4 chose the learning rate, the schedule and the split one after the other, each with one
#    seed on 2,000 validation images. Which of those choices were clear, and which could a second seed
#    have reversed? What would a fair search cost in runs?
# 6. With three seeds the seed level of the two-level bootstrap is a Student t with 2 degrees of
#    freedom ($t_{0.975, 2} = 4.30$): where seeds dominate, the interval is about
#    the mean $\pm 4.30 \cdot \mathrm{sd} / \sqrt{3}$. If the seed-to-seed standard deviation of a paired
#    difference is 0.2 pp, how large must the mean difference be for a "yes"? How many seeds would
#    resolve a 0.1 pp difference — and what would the test images' own noise add?
#
# ## Summary
#
# | stage | what the file stores per surviving weight |
# |---|---|
# | pruning | a float32 value + a 5-bit relative index (or a 32-bit CSR index) |
# | + weight sharing | a $\lceil\log_2(K+1)\rceil$-bit code ($K \le 2^b$ shared values) + a 5-bit index, and a float32 codebook |
# | + Huffman | variable-length codes close to the entropy of each stream |
#
# Bytes, ratios and validation accuracies of each stage are in the table of section 4, the test
# accuracies and verdicts in its "Test, once" cells, the Pareto front (on validation) in section 6. What
# the test set said in our run:
#
# | claim | how it is tested | verdict in our run |
# |---|---|---|
# | the paper's configuration (its split, 6-bit sharing) is within 10 % of its 40× | exact byte count | no: 32.4× (indices cost more bits) |
# | the compressed file is less accurate than the float baseline | paired bootstrap and McNemar, 10,000 test images; Holm | yes (about 1 pp) |
# | … by less than 1 pp | the same interval against 1 pp | not resolved |
# | retraining after pruning beats pruning alone | 3 seeds × test images, two-level bootstrap; Holm | yes (about 52 pp) |
# | codebook fine-tuning beats k-means alone | 3 seeds × test images, two-level bootstrap; Holm | not resolved |
# | retraining with distillation beats cross-entropy | 3 seeds × test images, two-level bootstrap; Holm | not resolved |
# | 2-bit sharing is less accurate than 5-bit at sparsity 0.96 | paired bootstrap | yes |
# | the size-budget file (chosen on validation) reaches 85% on test | one evaluation | yes |
