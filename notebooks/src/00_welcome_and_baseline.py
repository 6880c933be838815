# %% [markdown]
# # Lab 00 — Welcome, and the baseline every later lab compares against
#
# **You will leave able to** load the course data, train a small network with numpy, and measure the
# four things compression trades against each other: **accuracy**, **parameters**, **bytes** and
# **milliseconds** (plus the work per image, in MACs).
#
# **Time:** about 20 minutes to read and do; the notebook itself runs in well under a minute.
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
# ## 2. The data: Fashion-MNIST, embedded
#
# Fashion-MNIST (Xiao et al. 2017) has 28×28 grey images of 10 kinds of clothing; it is harder
# than handwritten digits, so compression losses show. The kit ships a subset inside the repository
# (no download): the first 2,000 training images of each class (20,000) and the full official test
# set (10,000). `data/README.md` gives its provenance, licence and SHA-256; the loader checks it.

# %%
from labkit.data import load_fashion_mnist

data = load_fashion_mnist()
print(data)
print("pixel range:", data.X_train.min(), "to", data.X_train.max())
print("images per class (train):", np.bincount(data.y_train).tolist())
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
# `labkit/nn.py`.

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
# $n_\text{out}$ biases. Write `count_parameters(sizes)` for an MLP given its layer sizes,
# e.g. `[784, 300, 100, 10]`. Return an `int`.

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
# argmax equals the label `y` (shape (n,)), as a float in [0, 1].

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
# an Adam step. Three epochs over the 20,000 images take a few seconds. The progress bar and the raw
# numbers depend on the machine, so they are not compared; the verdicts after them are. (Watching
# the test accuracy while training is fine for a demo; later labs make every *choice* on training
# data and use the test set once.)

# %% tags=["nbval-ignore-output"]
from threadpoolctl import threadpool_limits

from labkit import train

threadpool_limits(1)  # one BLAS thread: the same summation order, so the same training, on every machine
history = train.fit(
    model, data, epochs=3, lr=1e-3, batch_size=128, seed=0, progress=True, eval_data=(data.X_test, data.y_test)
)
print("loss per epoch:", [round(v, 4) for v in history["loss"]])
print("test accuracy per epoch:", history["eval_acc"])

# %%
print("loss fell every epoch:", "yes" if all(a > b for a, b in zip(history["loss"], history["loss"][1:])) else "no")
print("test accuracy after 3 epochs above 80%:", "yes" if history["eval_acc"][-1] > 0.80 else "no")
print(
    "your accuracy() agrees with labkit's evaluate():",
    "yes"
    if accuracy(model.predict_logits(data.X_test), data.y_test) == train.evaluate(model, data.X_test, data.y_test)
    else "no",
)

# %%
ax = plot.training_curves(history, title="LeNet-300-100, 3 epochs")
ax.set_xticks([1, 2, 3])  # the epochs run
lines = ax.get_lines() + ax.figure.axes[1].get_lines()
ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
plot.show(
    ax.figure,
    alt="Training loss (left axis) and training and test accuracy (right axis) after each of the 3 epochs, "
    "three lines told apart by marker and line style. The loss falls every epoch and the training accuracy "
    "rises, while the test accuracy peaks after epoch 2 and dips after epoch 3.",
)
best_epoch = 1 + int(np.argmax(history["eval_acc"]))
print(
    "test accuracy rose every epoch:",
    "yes" if all(a < b for a, b in zip(history["eval_acc"], history["eval_acc"][1:])) else "no",
)
print("best test accuracy after epoch:", best_epoch)

# %% [markdown]
# The test accuracy did **not** rise every epoch: it went up from epoch 1 to 2 and fell back by
# about a point after epoch 3 (84.6% to 83.4% in our run), while the training loss kept falling.
# After three epochs that is not overfitting — training and test accuracy are still within about
# three points of each other. It is the noise of a constant learning rate: each Adam step at lr 1e-3 still moves the weights
# noticeably, so the accuracy measured after any one epoch wanders by about a point around its
# trend. The shipped baseline below was trained with a decaying (cosine) learning rate, whose small
# final steps let the accuracy settle.

# %% [markdown]
# ## 5. The shipped baseline
#
# A longer run (30 epochs, cosine learning-rate decay; `python -m labkit data --train-baselines`)
# produced the weights in `data/pretrained/`. Every later lab starts from these exact files, so all
# machines start from the same network.

# %%
baseline = models.pretrained("lenet_300_100")
base_acc = train.evaluate(baseline, data.X_test, data.y_test)
print(f"shipped LeNet-300-100: test accuracy {100 * base_acc:.1f}%")
print("recorded when it was trained:", f"{100 * baseline.metadata['test_accuracy']:.1f}%")
lenet5 = models.pretrained("lenet5")
print(f"shipped LeNet-5:       test accuracy {100 * train.evaluate(lenet5, data.X_test, data.y_test):.1f}%")

# %% [markdown]
# ## 6. The "before" table
#
# What does this network cost?
#
# * **parameters**: the numbers stored;
# * **bytes**: as float32, 4 bytes each (`labkit.metrics.size_bytes(model, "dense_fp32")`);
# * **MACs**: multiply-accumulates per image, the arithmetic of one forward pass;
# * **latency**: measured, with warm-up and repeats, as a median (`labkit.bench.timeit`): at
#   batch 1 (one request) and batch 256 (throughput).
#
# Latency depends on the machine, so the table's cell is not compared; the cell after it checks
# the counts, which are the same everywhere.

# %% tags=["nbval-ignore-output"]
from labkit import bench, metrics

rng = np.random.default_rng(0)
x1 = data.X_test[:1]
x256 = data.X_test[:256]
rows = []
for name, net in [("LeNet-300-100", baseline), ("LeNet-5", lenet5)]:
    t1 = bench.timeit(net.forward, x1, repeat=30, warmup=5)
    t256 = bench.timeit(net.forward, x256, repeat=10, warmup=2)
    rows.append(
        (
            name,
            train.evaluate(net, data.X_test, data.y_test),
            metrics.count_params(net),
            metrics.size_bytes(net, "dense_fp32"),
            metrics.macs(net),
            t1.median * 1e3,
            t256.median * 1e3,
        )
    )
print(f"{'model':<14} {'accuracy':>8} {'params':>9} {'bytes':>10} {'MACs':>9} {'ms @1':>7} {'ms @256':>8}")
for r in rows:
    print(f"{r[0]:<14} {100 * r[1]:>7.2f}% {r[2]:>9,} {r[3]:>10,} {r[4]:>9,} {r[5]:>7.3f} {r[6]:>8.2f}")

# %%
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
fewer = metrics.count_params(baseline) / metrics.count_params(lenet5)
more = metrics.macs(lenet5) / metrics.macs(baseline)
print(f"LeNet-5 has {fewer:.1f}x fewer parameters but does {more:.1f}x more MACs per image")

# %% [markdown]
# The last line is the first lesson of the course: **parameters, bytes and time are different
# things**. LeNet-5 stores 4× fewer numbers but reuses each convolution weight at hundreds of image
# positions, so it does more arithmetic per image. Whether fewer bytes make a network faster depends
# on whether it was waiting on memory or on arithmetic (lab 07).

# %% [markdown]
# ## Questions to think about
#
# 1. 96% of LeNet-300-100's parameters are in its first layer. Which compression would you try on
#    it first, and why?
# 2. The batch-256 latency is not 256× the batch-1 latency. Why not? (Hint: at batch 1 each weight
#    is read once for two floating-point operations.)
# 3. Our baseline sees 20,000 training images, not 60,000. What would you expect from the full set
#    (`load_fashion_mnist("full")`), and how would you check it?
#
# ## Summary
#
# | model | test accuracy | parameters | float32 bytes | MACs / image |
# |---|---|---|---|---|
# | LeNet-300-100 (shipped) | 87.9% | 266,610 | 1,066,440 | 266,200 |
# | LeNet-5 (shipped) | 88.3% | 61,706 | 246,824 | 416,520 |
#
# Latency depends on your machine: read it from the table in section 6. Next: **lab 01, magnitude
# pruning** — how many of these 266,610 numbers does the network really need?
