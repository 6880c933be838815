# %% [markdown]
# # Lab 00 — Welcome, and the baseline every later lab compares against
#
# **You will leave able to** load the course data, train a small network with numpy, and measure the
# four things compression trades against each other: **accuracy**, **parameters**, **bytes** and
# **milliseconds** (plus the work per image, in MACs) — and say which split of the data each
# measurement belongs on: training, validation (every choice) or test (the report, read once).
#
# **Time:** about 20 minutes to read and do; the notebook itself needs about 16 s of CPU time (it ran
# in 95 s of wall time on a shared 2-core machine at load average 18, with eight other jobs).
#
# **How every lab works.** A short explanation with the math, a worked demo, graded exercises (each
# followed by a *check cell* that prints one pass line when your answer is right, and otherwise
# stops the notebook with `FAIL:` and a hint), an experiment with a figure, questions to think
# about, and a summary table of what was measured. Everything random is seeded, so your numbers
# match the ones printed here. Every figure comes with a sentence that says what it shows (its
# alternative text, read out by screen readers and printed under the figure's cell).

# %% [markdown]
# ## 1. Check the environment
#
# The kit needs nothing but a CPU: numpy for the networks, numba for the fast kernels (lab 07),
# matplotlib for figures. Versions vary from machine to machine, so the cell that prints them is not
# compared by the tests; the cell after it states what matters.

# %% tags=["nbval-ignore-output"]
import sys

import matplotlib
import numpy as np

import labkit

print(
    f"Python {sys.version.split()[0]}, numpy {np.__version__}, matplotlib {matplotlib.__version__}, labkit {labkit.__version__}"
)

# %%
print("Python >= 3.10:", "yes" if sys.version_info >= (3, 10) else "no")
print("numpy >= 1.24:", "yes" if tuple(int(p) for p in np.__version__.split(".")[:2]) >= (1, 24) else "no")

# %% [markdown]
# ## 2. The data: Fashion-MNIST, embedded, in three splits
#
# Fashion-MNIST (Xiao et al. 2017) has 28×28 grey images of 10 kinds of clothing; it is harder
# than handwritten digits, so compression losses show. The kit ships a subset inside the repository
# (no download): the first 2,000 training images of each class (20,000) and the full official test
# set (10,000). `data/README.md` gives its provenance, licence and SHA-256; the loader checks it.
#
# The loader hands the images out in **three splits**, each with one job:
#
# | split | images | what it is for |
# |---|---|---|
# | `X_train, y_train` | 18,000 | fitting the weights: `train.fit` sees these and nothing else |
# | `X_val, y_val` | 2,000 | every **choice**: learning rate, epochs, sparsity, bit width, temperature, which model is "best" |
# | `X_test, y_test` | 10,000 | the **report**: touched once, after every choice is fixed |
#
# The validation images are a fixed, *stratified* hold-out of the embedded 20,000: 10% of each class
# (200 per class, drawn with the seed `labkit.data.VAL_SEED`), the same on every machine. The
# shipped baselines were trained on the 18,000 training images only, so no model of the course has
# seen a validation image.

# %%
from labkit.data import load_fashion_mnist

data = load_fashion_mnist()
print(data)
print("pixel range:", data.X_train.min(), "to", data.X_train.max())
print("images per class (train):     ", np.bincount(data.y_train).tolist())
print("images per class (validation):", np.bincount(data.y_val).tolist())
print("classes:", ", ".join(data.class_names))

# %%
import matplotlib.pyplot as plt

from labkit import plot

fig = plot.sample_grid(data.X_train, data.y_train, data.class_names, per_class=10)
plot.show(
    fig,
    alt="The first ten training images of each class, one row per class: T-shirt/top, trouser, pullover, "
    "dress, coat, sandal, shirt, sneaker, bag, ankle boot. Small grey 28 by 28 pictures of single garments; "
    "T-shirts, pullovers, coats and shirts have similar outlines, so expect most mistakes among them.",
)

# %% [markdown]
# ### Why the test set is touched once
#
# An accuracy measured on $n$ images is an estimate: each image is right or wrong, so the count of
# right answers is binomial and one accuracy $p$ carries a standard error
#
# $$\mathrm{SE} = \sqrt{p\,(1-p)/n}.$$
#
# For a model near 88%:

# %%
import math

p = 0.88  # about the accuracy of the shipped baselines
for split, n_images in [("test", 10_000), ("validation", 2_000)]:
    se = math.sqrt(p * (1 - p) / n_images)
    print(f"{split:<10}: {n_images:>6,} images, SE of one accuracy {100 * se:.1f} pp, 95% interval ± {196 * se:.1f} pp")

# %% [markdown]
# So two models whose test accuracies differ by 0.2 pp are not told apart by 10,000 images, and
# validation, with 2,000, is about twice as noisy. Noise also *biases a choice*: pick the best of
# several equally good settings by their scores, and the winner's score is the largest of several
# noisy numbers — too high. Six settings that are all truly 88% accurate, each scored on 10,000
# images, simulated 10,000 times:

# %%
rng = np.random.default_rng(0)
scores = rng.binomial(10_000, p, size=(10_000, 6)) / 10_000  # 10,000 repetitions of 6 equally good settings
print(f"the winner's score is on average {100 * (scores.max(axis=1).mean() - p):+.1f} pp above its true accuracy")

# %% [markdown]
# That is why every later lab **chooses on validation and reports on test once**: the number it
# reports was not used to pick anything, so it is an honest estimate, given with its interval. Cells
# that read the test set are tagged `test-once`, start with the comment `# Test, once`, and come after
# every choice; `tests/test_lab_method.py` checks that no other cell reads it. When two models are
# compared on the same test images, `labkit.stats.paired_bootstrap` gives the difference with an
# interval, and `labkit.stats.verdict` turns the interval into "yes", "no" or "not resolved at this
# sample size".

# %% [markdown]
# ## 3. The model: LeNet-300-100
#
# LeNet-300-100 is the network of the pruning papers we follow (Han et al. 2015, 2016): the
# 784 pixels go through two hidden layers of 300 and 100 ReLU units to 10 class scores (*logits*):
#
# $$h_1 = \mathrm{ReLU}(W_1 x + b_1),\quad h_2 = \mathrm{ReLU}(W_2 h_1 + b_2),\quad z = W_3 h_2 + b_3,$$
#
# with $W_1 \in \mathbb{R}^{300\times 784}$, $W_2 \in \mathbb{R}^{100\times 300}$,
# $W_3 \in \mathbb{R}^{10\times 100}$. In words: each layer multiplies its input by a weight
# matrix, adds a bias vector, and — except the last — replaces negative results by 0 (ReLU); the
# largest of the 10 final scores is the predicted class. In `labkit` every layer is a plain object holding its arrays
# (`model["fc1"].W` has shape (out, in)), with an explicit `forward` and `backward` you can read in
# the `labkit.nn` module.

# %%
from labkit import models

model = models.lenet_300_100(seed=0)
print(model)
for name, shape_in, shape_out in model.shapes():
    print(f"{name:<6} {str(shape_in):>8} -> {str(shape_out):<8}")


# %% [markdown]
# ### Exercise 1 — count the parameters (1 point)
#
# A Dense layer from $n_\text{in}$ to $n_\text{out}$ units has $n_\text{in} n_\text{out}$ weights and
# $n_\text{out}$ biases. Write `count_parameters(sizes)` for an MLP given its layer sizes (a list of
# ints, input first), e.g. `[784, 300, 100, 10]`. Return an integer (a Python `int` or a numpy
# integer; a float such as `12.0` or a `bool` is refused): the exact sum of weights and biases over
# the layers.

# %% nbgrader={"grade": false, "grade_id": "count_parameters", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_parameters(sizes):
    ### BEGIN SOLUTION
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    ### END SOLUTION


# %% labkit={"answer": "count_parameters"} nbgrader={"grade": true, "grade_id": "check_count_parameters", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
from labkit.check import lab00

lab00.count_parameters(count_parameters)


# %% [markdown]
# ### Exercise 2 — accuracy from logits (1 point)
#
# The network's prediction for an image is the class with the largest logit. Write
# `accuracy(logits, y)` that returns the fraction of rows of `logits` (shape (n, classes)) whose
# argmax equals the label `y` (shape (n,)): **one number** (a float; not an array of n values, not
# a string), a fraction in [0, 1] — not a percentage, not a count — equal to the exact fraction
# within 1e-9.

# %% nbgrader={"grade": false, "grade_id": "accuracy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def accuracy(logits, y):
    ### BEGIN SOLUTION
    return float(np.mean(np.argmax(logits, axis=1) == y))
    ### END SOLUTION


# %% labkit={"answer": "accuracy"} nbgrader={"grade": true, "grade_id": "check_accuracy", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab00.accuracy(accuracy)

# %% [markdown]
# ## 4. Train it (a short run)
#
# `labkit.train.fit` runs mini-batch training: for each batch, a forward pass, the cross-entropy
# loss $-\frac1n\sum_i \log \mathrm{softmax}(z_i)_{y_i}$ (in words: the average, over the batch,
# of minus the log of the probability the network gives to the right class), a backward pass, and
# an Adam step. Three epochs over the 18,000 training images take a few seconds. After each epoch
# `eval_data=(data.X_val, data.y_val)` measures the **validation** accuracy: this is how you watch a
# run and decide when to stop, without touching the test set. A *callback* (an object whose methods
# `fit` calls at fixed moments) keeps a copy of the model after every epoch, so that the epochs can
# be compared image by image below.
#
# The progress bar and the raw numbers depend on the machine, so they are not compared; the verdicts
# after them are. Why would numbers depend on the machine when everything is seeded? A float sum
# depends on the order of its terms, and each CPU and each BLAS library (the matrix-product code
# numpy calls) orders the terms of a matrix product its own way. The differences start in the last
# bit of a float, but training feeds every result into the next step, and after a few hundred steps
# the accuracies differ by a few images.

# %% tags=["nbval-ignore-output"]
from threadpoolctl import threadpool_limits

from labkit import train

threadpool_limits(1)  # one BLAS thread: one summation order per run on this machine (another CPU or BLAS sums in another)


class KeepEachEpoch(train.Callback):
    """Keeps a copy of the model after every epoch."""

    def __init__(self):
        self.models = []

    def on_epoch_end(self, model, state):
        self.models.append(model.copy())


epochs = KeepEachEpoch()
history = train.fit(
    model, data, epochs=3, lr=1e-3, batch_size=128, seed=0, progress=True, eval_data=(data.X_val, data.y_val),
    callbacks=[epochs],
)
print("loss per epoch:", [round(v, 4) for v in history["loss"]])
print("validation accuracy per epoch:", history["eval_acc"])

# %%
print("loss fell every epoch:", "yes" if all(a > b for a, b in zip(history["loss"], history["loss"][1:])) else "no")
print("validation accuracy after 3 epochs above 80%:", "yes" if history["eval_acc"][-1] > 0.80 else "no")
print(
    "your accuracy() agrees with labkit's evaluate():",
    "yes"
    if accuracy(model.predict_logits(data.X_val), data.y_val) == train.evaluate(model, data.X_val, data.y_val)
    else "no",
)

# %%
ax = plot.training_curves(history, title="LeNet-300-100, 3 epochs")
ax.set_xticks([1, 2, 3])  # the epochs run
ax.figure.axes[1].get_lines()[-1].set_label("validation accuracy")  # the eval_data curve
lines = ax.get_lines() + ax.figure.axes[1].get_lines()
ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
plot.show(
    ax.figure,
    alt="Training loss (left axis) and training and validation accuracy (right axis) after each of the 3 epochs, "
    "three lines told apart by marker and line style. The loss falls every epoch and the training accuracy "
    "rises. The validation accuracy is higher after epochs 2 and 3 than after epoch 1; between epochs 2 and 3 it "
    "moves by less than a point, up or down depending on the machine (the cells below compare the two epochs).",
)

# %% [markdown]
# Did the validation accuracy still rise in the last epoch? Compare the models after epochs 2 and 3
# on the *same* 2,000 validation images with the paired bootstrap of section 2
# (`stats.paired_bootstrap`): only the images on which the two models disagree carry information.

# %% tags=["nbval-ignore-output"]
from labkit import stats

right2, right3 = (net.predict(data.X_val) == data.y_val for net in epochs.models[1:])  # per image: right?
diff, lo, hi = stats.paired_bootstrap(right3, right2)
print(f"epoch 3 − epoch 2: {100 * diff:+.2f} pp on validation (95% paired bootstrap interval {100 * lo:+.2f} to "
      f"{100 * hi:+.2f}); {int(np.sum(right3 != right2))} images answered differently by the two models")

# %%
print("after epoch 3 more accurate on validation than after epoch 2:", stats.verdict(lo, hi))

# %% [markdown]
# **Not resolved at this sample size.** Between the last two epochs the validation accuracy moves
# by less than a point, and in which direction depends on the machine: the same seeded run gives a
# small rise on some CPUs and BLAS libraries and a small dip on others. Look at the count above:
# well over a hundred images change their answer from one epoch to the next, and the gains and
# losses nearly cancel. A difference of a few images out of 2,000 is within the noise of the
# validation set (SE about 0.7 pp, section 2) — the interval says so — so neither "it still
# improved" nor "it slipped back after epoch 3" is something this run can tell. What is real is that a constant learning rate keeps moving the
# weights: each Adam step at lr 1e-3 is still large, so the accuracy after any one epoch wanders
# around its trend. The shipped baseline below was trained with a decaying (cosine) learning rate,
# whose small final steps let it settle.

# %% [markdown]
# ## 5. The shipped baseline
#
# A longer run (30 epochs, cosine learning-rate decay; `python -m labkit data --train-baselines`) on
# the 18,000 training images produced the weights in `data/pretrained/`. Every later lab starts from
# these exact files, so all machines start from the same network. Their accuracy on validation is a
# check that the files load as they were saved (the test accuracy comes once, in section 7):

# %% tags=["nbval-ignore-output"]
baseline = models.pretrained("lenet_300_100")
lenet5 = models.pretrained("lenet5")
val_accs = {}
for name, net in [("LeNet-300-100", baseline), ("LeNet-5", lenet5)]:
    val_accs[name] = train.evaluate(net, data.X_val, data.y_val)
    print(f"shipped {name:<14} validation accuracy {100 * val_accs[name]:.2f}% "
          f"(recorded when it was trained: {100 * net.metadata['val_accuracy']:.2f}%)")

# %%
print(
    "both shipped models score on validation what was recorded when they were trained:",
    "yes"
    if all(abs(val_accs[name] - net.metadata["val_accuracy"]) < 1e-3 for name, net in [("LeNet-300-100", baseline), ("LeNet-5", lenet5)])
    else "no",
)

# %% [markdown]
# ## 6. What the network costs
#
# * **parameters**: the numbers stored;
# * **bytes**: as float32, 4 bytes each (`labkit.metrics.size_bytes(model, "dense_fp32")`);
# * **MACs**: multiply-accumulates per image, the arithmetic of one forward pass;
# * **latency**: measured, with warm-up and repeats, as a median (`labkit.bench.timeit`): at
#   batch 1 (one request) and batch 256 (throughput), on validation images (any input of the right
#   shape would do; timing needs no labels).
#
# The counts are the same everywhere, so their cell is compared by the tests:

# %%
from labkit import bench, metrics

assert metrics.count_params(baseline) == count_parameters([784, 300, 100, 10]) == 266_610
print(
    "LeNet-300-100: 266,610 parameters, 1,066,440 bytes as float32, 266,200 MACs per image:",
    "yes" if (metrics.size_bytes(baseline), metrics.macs(baseline)) == (1_066_440, 266_200) else "no",
)
print(
    "LeNet-5: 61,706 parameters, 246,824 bytes, 416,520 MACs per image:",
    "yes"
    if (metrics.count_params(lenet5), metrics.size_bytes(lenet5), metrics.macs(lenet5)) == (61_706, 246_824, 416_520)
    else "no",
)
fc1_params = baseline["fc1"].W.size + baseline["fc1"].b.size
print(f"LeNet-300-100's first layer holds {fc1_params:,} of its {metrics.count_params(baseline):,} parameters "
      f"({100 * fc1_params / metrics.count_params(baseline):.1f}%)")
fewer = metrics.count_params(baseline) / metrics.count_params(lenet5)
more = metrics.macs(lenet5) / metrics.macs(baseline)
print(f"LeNet-5 has {fewer:.1f}x fewer parameters but does {more:.1f}x more MACs per image")

# %% [markdown]
# The last line is the first lesson of the course: **parameters, bytes and time are different
# things**. LeNet-5 stores 4× fewer numbers but reuses each convolution weight at hundreds of image
# positions, so it does more arithmetic per image. Whether fewer bytes make a network faster depends
# on whether it was waiting on memory or on arithmetic (lab 07).
#
# Latency depends on the machine and on what else it is doing. The table below was recorded on a
# shared 2-core machine under load, so its milliseconds are not compared by the tests and will
# differ on yours; the **ratios** — measured in one run, on one machine, at one moment — are what
# carries over. Read the last line of the table: LeNet-5 takes many times as long as LeNet-300-100,
# far more than its 1.6× MACs, because numpy runs its convolutions as im2col plus a matrix product,
# which copies each input patch before multiplying. And on a quiet machine a batch of 256 of
# LeNet-300-100 costs less per image than a call with one image; under load the medians may say the
# opposite (the fastest repeats, in brackets, come closest to a quiet machine).

# %% tags=["nbval-ignore-output"]
x1 = data.X_val[:1]
x256 = data.X_val[:256]
timings = {}
for name, net in [("LeNet-300-100", baseline), ("LeNet-5", lenet5)]:
    timings[name] = (bench.timeit(net.forward, x1, repeat=30, warmup=5),
                     bench.timeit(net.forward, x256, repeat=7, warmup=1))
print(f"{'model':<14} {'ms @1':>7} {'ms @256':>8} {'per image @256 / @1':>20}   (medians; fastest repeat in brackets)")
for name, (t1, t256) in timings.items():
    print(f"{name:<14} {1e3 * t1.median:>7.3f} {1e3 * t256.median:>8.2f} {t256.median / 256 / t1.median:>20.2f}"
          f"   ({1e3 * t1.min:.3f} ms, {1e3 * t256.min:.2f} ms)")
print("LeNet-5 / LeNet-300-100 time:",
      f"{timings['LeNet-5'][0].median / timings['LeNet-300-100'][0].median:.1f}x at batch 1,",
      f"{timings['LeNet-5'][1].median / timings['LeNet-300-100'][1].median:.1f}x at batch 256")

# %% [markdown]
# No cell states a verdict on these times, on purpose: even a claim as plain as "at batch 256 one
# image costs less than a batch-1 call" can come out "yes" in one run and "no" in the next on a busy
# machine. On a machine shared with other programs, a long call (a batch of 256: tens of
# milliseconds) is interrupted many times while a short one (one image: under a millisecond) usually
# runs in one go, so load makes the big batch look slower than it is. To compare speeds, measure on an idle
# machine, repeat, and compare peers measured in the same run (`python -m labkit bench` does; lab 07
# explains it).

# %% [markdown]
# ## 7. The "before" table, on the test set, once
#
# Nothing in this lab is chosen from the test set, and nothing later reads the numbers below to
# choose anything: the test set is used once here, to report what the shipped models score on
# 10,000 images they were never trained or tuned on. Each accuracy comes with its 95% interval
# (± 1.96 SE, from section 2); the two models are compared on the *same* images with a paired
# bootstrap interval and McNemar's exact test (`labkit.stats`).

# %% tags=["nbval-ignore-output", "test-once"]
# Test, once: the models are fixed (shipped files); no choice below depends on these numbers
test_correct = {name: net.predict(data.X_test) == data.y_test for name, net in [("LeNet-300-100", baseline), ("LeNet-5", lenet5)]}
print(f"{'model':<14} {'test accuracy':>13} {'95% interval':>16} {'params':>9} {'bytes':>10} {'MACs':>9}")
for (name, correct), net in zip(test_correct.items(), (baseline, lenet5)):
    acc = correct.mean()
    half = 1.96 * math.sqrt(acc * (1 - acc) / correct.size)
    print(f"{name:<14} {100 * acc:>12.2f}% {100 * (acc - half):>7.2f} to {100 * (acc + half):.2f}%"
          f" {metrics.count_params(net):>9,} {metrics.size_bytes(net):>10,} {metrics.macs(net):>9,}")
diff, lo, hi = stats.paired_bootstrap(test_correct["LeNet-5"], test_correct["LeNet-300-100"])
p_value = stats.mcnemar(test_correct["LeNet-5"], test_correct["LeNet-300-100"])
print(f"LeNet-5 − LeNet-300-100: {100 * diff:+.2f} pp (95% paired bootstrap interval {100 * lo:+.2f} to {100 * hi:+.2f}), "
      f"McNemar p = {p_value:.2g}")

# %% tags=["test-once"]
# Test, once: the verdicts on the numbers above
for name, correct in test_correct.items():
    acc = correct.mean()
    lower = acc - 1.96 * math.sqrt(acc * (1 - acc) / correct.size)
    print(f"{name}: whole 95% interval of its test accuracy above 87%:", "yes" if lower > 0.87 else "no")
print("LeNet-5 more accurate than LeNet-300-100 on the test set:", stats.verdict(lo, hi))

# %% [markdown]
# ## Questions to think about
#
# 1. 88.3% of LeNet-300-100's parameters (235,500 of 266,610, section 6) are in its first layer.
#    Which compression would you try on it first, and why?
# 2. The batch-256 latency is not 256× the batch-1 latency. Why not? (Hint: at batch 1 each weight
#    is read once for two floating-point operations.)
# 3. Our baseline sees 18,000 training images, not 54,000. What would you expect from the full set
#    (`load_fashion_mnist("full")`: 54,000 training, 6,000 validation images), and how would you
#    check it without touching the test set?
# 4. A classmate tries ten learning rates and reports the best one's *test* accuracy. By how much
#    might that number flatter the method? (Adapt the simulation of section 2.)
#
# ## Summary
#
# What the shipped models measured, the test accuracies from the one test-once cell of section 7
# (in our run; the interval is ± 1.96 SE over the 10,000 test images):
#
# | model | test accuracy (95% interval) | parameters | float32 bytes | MACs / image |
# |---|---|---|---|---|
# | LeNet-300-100 (shipped) | 87.8% (87.2 to 88.5%) | 266,610 | 1,066,440 | 266,200 |
# | LeNet-5 (shipped) | 88.2% (87.6 to 88.9%) | 61,706 | 246,824 | 416,520 |
#
# LeNet-5 more accurate than LeNet-300-100? **Not resolved at this sample size**: the paired
# difference, about +0.4 pp, has an interval that contains 0. Validation (2,000 images, fixed,
# stratified) is where every later lab makes its choices; test (10,000 images) is read once per
# experiment, after them. Latency depends on your machine: read it, and its ratios, from section 6.
# Next: **lab 01, magnitude pruning** — how many of these 266,610 numbers does the network really
# need?
