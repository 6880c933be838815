"""The shipped baselines: the seeded recipes behind ``labkit.models.pretrained``, and ``python -m labkit data``.

``models.pretrained(name)`` loads ``data/pretrained/<name>.npz``; this module is how those files are
made. Each recipe names a builder, the training settings and the seed, so that
``python -m labkit data --train-baselines`` retrains the same models on any machine. It sits above
``models`` (it trains with ``train`` on ``data``), which is why it is not part of ``models`` itself.

The ``data`` command verifies the embedded data (Fashion-MNIST and Tiny Shakespeare, by their SHA-256),
says whether the full Fashion-MNIST is available, and with ``--train-baselines`` retrains the shipped
models (``--only tiny_gpt`` for the language model alone: hours on a 2-core machine).
"""

from __future__ import annotations

import json
import time

__all__ = ["BASELINE_RECIPES", "build", "train_baselines", "train_language_model", "add_parser"]

# The seeded recipes behind data/pretrained/. Changing one changes every lab's numbers.
BASELINE_RECIPES = {
    "lenet_300_100": {
        "builder": "lenet_300_100",
        "epochs": 30,
        "lr": 1e-3,
        "batch_size": 128,
        "lr_schedule": "cosine",
        "weight_decay": 0.0,
        "seed": 0,
    },
    "lenet5": {
        "builder": "lenet5",
        "epochs": 30,
        "lr": 2e-3,
        "batch_size": 128,
        "lr_schedule": "cosine",
        "weight_decay": 0.0,
        "seed": 0,
    },
    "teacher": {
        "builder": "teacher",
        "epochs": 40,
        "lr": 1e-3,
        "batch_size": 128,
        "lr_schedule": "cosine",
        "weight_decay": 0.0,
        "seed": 0,
        "store_dtype": "float16",
    },
    # A character-level GPT on Tiny Shakespeare's training split (labkit.train.fit_lm). The settings
    # are nanoGPT's small-model ones (AdamW with beta2 0.99, weight decay 0.1, warm-up then cosine to
    # lr/10, clipping at 1.0) at 4 layers, 4 heads, 128 features, context 128.
    "tiny_gpt": {
        "builder": "gpt",
        "data": "tiny_shakespeare",
        "config": {"context": 128, "n_layer": 4, "n_head": 4, "d_model": 128},
        "steps": 2000,
        "batch_size": 32,
        "lr": 1e-3,
        "warmup_steps": 100,
        "final_lr": 1e-4,
        "beta2": 0.99,
        "weight_decay": 0.1,
        "clip_norm": 1.0,
        "eval_every": 250,
        "seed": 0,
    },
}


def build(builder: str, seed: int):
    """A freshly initialised model for a recipe's ``builder`` name (a ``labkit.models`` builder, or "teacher")."""
    from labkit import models

    if builder == "teacher":  # a wide MLP with dropout (Hinton et al. 2015 used 1200-1200 on MNIST)
        return models.mlp([784, 1200, 1200, 10], seed=seed, dropout=0.3)
    if builder == "gpt":
        raise ValueError("the GPT recipe is trained by train_language_model (it needs the vocabulary size)")
    return getattr(models, builder)(seed=seed)


def train_baselines(names, progress: bool = True) -> dict:
    """Retrain the named baselines from their recipes and overwrite ``models.PRETRAINED_DIR/<name>.npz``.

    Training sees only the training split (``data.X_train``: 18,000 images); the validation split
    (2,000) is what the recipes were chosen on, and the test split (10,000) is evaluated once, on the
    file as shipped. Returns, per name, the validation and test accuracy of the file as shipped (saved,
    reloaded, evaluated), the training time in seconds and the file's size in bytes.
    """
    import numpy as np

    from labkit import data, models, nn, train

    results, d = {}, None
    for name in names:
        r = BASELINE_RECIPES[name]
        if r.get("data") == "tiny_shakespeare":
            results[name] = train_language_model(name, progress)
            continue
        d = d if d is not None else data.load_fashion_mnist()
        model = build(r["builder"], r["seed"])
        t0 = time.perf_counter()
        train.fit(
            model,
            d,
            epochs=r["epochs"],
            lr=r["lr"],
            batch_size=r["batch_size"],
            seed=r["seed"],
            lr_schedule=r["lr_schedule"],
            weight_decay=r["weight_decay"],
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        dtype = np.dtype(r.get("store_dtype", "float32"))
        path = models.PRETRAINED_DIR / f"{name}.npz"
        # Accuracy of what is shipped: save, reload (float16 storage rounds), evaluate.
        nn.save(model, path, dtype=dtype, metadata={"recipe": r})
        shipped = nn.load(path)
        val_acc = train.evaluate(shipped, d.X_val, d.y_val)
        acc = train.evaluate(shipped, d.X_test, d.y_test)  # the test split, once, on the final file
        metadata = {
            "recipe": r,
            "trained_on": f"{len(d.X_train)} training images (validation and test held out)",
            "val_accuracy": val_acc,
            "test_accuracy": acc,
            "command": "python -m labkit data --train-baselines",
        }
        nn.save(model, path, dtype=dtype, metadata=metadata)
        results[name] = {
            "val_accuracy": val_acc,
            "test_accuracy": acc,
            "train_seconds": round(seconds, 1),
            "bytes": path.stat().st_size,
        }
        print(
            f"{name}: validation {val_acc:.4f}, test {acc:.4f}, trained in {seconds:.0f} s, "
            f"{path} ({path.stat().st_size} bytes)"
        )
    return results


def train_language_model(name: str, progress: bool = True) -> dict:
    """Train the recipe ``name`` (a GPT on Tiny Shakespeare), save it, and measure the file as shipped.

    Training sees only the training split (random windows of it); the validation split gives the loss
    curve and is what the recipe may be chosen on; the test split is evaluated once, on the saved and
    reloaded file. The metadata records the recipe, the parameter count, the tokens seen, the training
    time with the machine's load average (sampled at every evaluation) and the scores.
    """
    import os

    import numpy as np

    from labkit import data, metrics, models, nn, train

    r = BASELINE_RECIPES[name]
    text = data.load_tiny_shakespeare()
    model = models.gpt(len(text.vocab), **r["config"], seed=r["seed"], bos=text.vocab.bos)
    loads = []

    class SampleLoad(train.Callback):
        def on_epoch_end(self, model, state):
            loads.append(os.getloadavg()[0])

    opt = train.AdamW(lr=r["lr"], beta2=r["beta2"], weight_decay=r["weight_decay"])
    t0 = time.perf_counter()
    history = train.fit_lm(
        model,
        text.train,
        steps=r["steps"],
        batch_size=r["batch_size"],
        lr=r["lr"],
        warmup_steps=r["warmup_steps"],
        final_lr=r["final_lr"],
        optimizer=opt,
        clip_norm=r["clip_norm"],
        seed=r["seed"],
        val_tokens=text.val,
        eval_every=r["eval_every"],
        callbacks=[SampleLoad()],
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    path = models.PRETRAINED_DIR / f"{name}.npz"
    nn.save(model, path)
    shipped = nn.load(path)  # scores of the file as shipped
    val_nll = metrics.window_nll(shipped, text.val)
    test_nll = metrics.window_nll(shipped, text.test)  # the test split, once, on the final file
    metadata = {
        "recipe": r,
        "config": shipped.config(),
        "parameters": int(sum(a.size for a in shipped.parameters().values())),
        "tokens_seen": r["steps"] * r["batch_size"] * r["config"]["context"],
        "trained_on": f"{text.train.size} training characters (validation and test held out)",
        "train_seconds": round(seconds, 1),
        "load_average_during_training": [round(x, 1) for x in loads],
        "cpu_count": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "history": history,
        "val_loss": float(val_nll.mean()),
        "val_perplexity": float(np.exp(val_nll.mean())),
        "val_windows": int(val_nll.size),
        "test_loss": float(test_nll.mean()),
        "test_perplexity": float(np.exp(test_nll.mean())),
        "test_windows": int(test_nll.size),
        "command": f"python -m labkit data --train-baselines --only {name}",
    }
    nn.save(model, path, metadata=metadata)
    result = {k: metadata[k] for k in ("val_loss", "val_perplexity", "test_loss", "test_perplexity", "train_seconds")}
    result["bytes"] = path.stat().st_size
    print(
        f"{name}: validation loss {result['val_loss']:.4f} (perplexity {result['val_perplexity']:.3f}), "
        f"test loss {result['test_loss']:.4f}, trained in {seconds:.0f} s, {path} ({result['bytes']} bytes)"
    )
    return result


def add_parser(sub):
    """Register the ``data`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("data", help="verify the data; retrain the shipped baselines")
    p.add_argument("--train-baselines", action="store_true", help="retrain data/pretrained/*.npz (minutes)")
    p.add_argument("--only", nargs="*", choices=sorted(BASELINE_RECIPES), help="retrain only these")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_data)
    return p


def cmd_data(args) -> int:
    """Verify the data (1 if it is missing or corrupted) or, with ``--train-baselines``, retrain."""
    from labkit import data

    if args.only is not None and not args.train_baselines:
        args.parser.error("--only chooses which baselines --train-baselines retrains; add --train-baselines")
    if args.train_baselines:
        names = args.only or list(BASELINE_RECIPES)
        print(json.dumps(train_baselines(names, progress=not args.quiet), indent=2))
        return 0
    try:
        d = data.load_fashion_mnist()
        text = data.load_tiny_shakespeare()
    except (OSError, ValueError) as exc:
        print(f"data: {exc}")
        return 1
    print(f"embedded: {data.DATA_DIR / data.EMBEDDED_FILE} verified (SHA-256 {data.EMBEDDED_SHA256[:16]}...)")
    print(f"  {d}")
    print(f"text: {data.DATA_DIR / data.SHAKESPEARE_FILE} verified (SHA-256 {data.SHAKESPEARE_SHA256[:16]}...)")
    print(f"  {text}")
    try:
        full = data.load_fashion_mnist("full")
        print(f"full: {full}")
    except FileNotFoundError as exc:
        print(f"full: not available\n{exc}")
    return 0
