"""Statistics of the runs (numbers and labels only, no prose): per-variant summaries and
95% intervals, tests of a difference between two variants, trends of the training curves,
and per-class accuracy. Gradient flow is in ``gradients``, the verdicts on the
study's claims in ``claims``.

How a difference is decided (``compare``): a paired test on the same test images (McNemar's
exact test per seed pair; over several seed pairs, an exact sign test on each image's summed
discordances) and, where both variants have several seeds, Welch's t-test on the per-seed
accuracies. A difference is declared only when every available test gives p < ``ALPHA``.

Everything is computed once per loaded ``Results`` (kept in ``res.cache``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..data import CLASSES
from ..study import EXTENSION_VARIANTS, STUDY_TABLE, in_order
from ..variant import profile_settings
from .labels import CLASS_LABELS, STATUS_ZH
from .load import FULL_TRAIN, Results

PLATEAU_PP = 0.005  # a test-accuracy gain below 0.5 pp per epoch (the last epoch's, or the late slope) counts as a plateau
ALPHA = 0.05  # a difference is called a difference only at p < ALPHA, for every available test
LEVEL = 0.95  # intervals
# two variants are "相当" (shown equal, not merely not told apart) when the whole 95% interval of
# their difference lies within this many points of zero: the study's own precision (its table
# gives whole per cents, 82% against 82%)
PARITY_MARGIN = 0.01


def cached(res: Results, key: Any, make: Callable[[], Any]) -> Any:
    """``make()`` once per loaded report (a new load computes afresh)."""
    if key not in res.cache:
        res.cache[key] = make()
    return res.cache[key]


def summary_stats(res: Results) -> pd.DataFrame:
    """Numeric summary per variant (index exp_name): n, mean/std of the last epoch's test accuracy.

    Computed once per loaded report (a copy is returned)."""
    if "summary" not in res.cache:
        res.cache["summary"] = _summary_stats(res)
    return res.cache["summary"].copy()


def _summary_stats(res: Results) -> pd.DataFrame:
    """One row per variant present or missing (study order, then extensions, then others;
    ``res.missing`` names those the runs' profile trains that have no run): its setting, runs,
    mean ± SD and interval of the completed runs' final accuracy, scale and state."""
    lost = pd.Series([d.exp_name for d in res.damaged if d.whole_run], dtype=object).value_counts()
    rows = [_variant_row(exp, res.runs[res.runs["exp_name"] == exp], int(lost.get(exp, 0)))
            for exp in in_order({*res.missing, *res.variants(), *lost.index})]
    df = pd.DataFrame(rows).set_index("exp_name")
    df["extension"] = df.index.isin(EXTENSION_VARIANTS)
    return df


def _variant_row(exp: str, sub: pd.DataFrame, n_lost: int = 0) -> dict:
    """``n_lost``: the variant's runs left out whole (a damaged run.json or config.yaml)."""
    study = STUDY_TABLE.get(exp)
    completed = sub[sub["status"] == "completed"] if len(sub) else sub
    done = scored(completed)
    row = {"exp_name": exp, "in_study": exp in STUDY_TABLE, "study_acc": study[3] if study else math.nan,
           "n_runs": len(sub), "n_diverged": _count(sub, "diverged"), "n_failed": _count(sub, "failed"),
           "n_damaged": n_lost + len(completed) - len(done),
           **_setting(sub, study), **_accuracy(done), **_run_scale(done)}
    row["state"] = _state(row)
    row["diff"] = row["mean"] - row["study_acc"] if row["state"] == "completed" and study else math.nan
    return row


def scored(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with a final accuracy (a run whose metrics.csv is damaged has none)."""
    return runs[runs["final_test_acc"].notna()] if len(runs) else runs


def _count(sub: pd.DataFrame, status: str) -> int:
    return int((sub["status"] == status).sum()) if len(sub) else 0


def _setting(sub: pd.DataFrame, study: tuple | None) -> dict:
    """Model, optimizer and learning rate: from the runs, else from the study's table."""
    if len(sub):
        first = sub.iloc[0]
        return {"model": first["model"], "optimizer": first["optimizer"], "lr": first["lr"],
                "budget": first.get("budget", "model")}
    if study:
        return {"model": study[0], "optimizer": study[1], "lr": study[2], "budget": "model"}
    return {"model": None, "optimizer": None, "lr": math.nan, "budget": "model"}


def _accuracy(done: pd.DataFrame) -> dict:
    """n, mean, SD, seeds and the interval of the completed runs' final test accuracy."""
    accs = done["final_test_acc"].astype(float) if len(done) else pd.Series(dtype=float)
    iv = accuracy_interval(accs.tolist(), int(done.iloc[0]["test_size"] or 0) if len(done) else 0)
    return {"n": len(accs), "mean": float(accs.mean()) if len(accs) else math.nan,
            "std": float(accs.std(ddof=1)) if len(accs) > 1 else math.nan,
            "seeds": ",".join(str(s) for s in sorted(done["seed"])) if len(done) else "",
            "low": iv.low, "high": iv.high, "n_test": iv.n_test, "interval": iv.method}


def _run_scale(done: pd.DataFrame) -> dict:
    """Training images, epochs and 'train/test/epochs/batch' of the completed runs."""
    if not len(done):
        return {"train_size": 0, "epochs": 0, "scale": ""}
    f = done.iloc[0]
    train, epochs = int(f["train_size"] or 0), int(f["epochs"] or 0)
    return {"train_size": train, "epochs": epochs, "scale": f"{train}/{int(f['test_size'] or 0)}/{epochs}/{f['batch_size']}"}


def _state(row: dict) -> str:
    if not row["n_runs"] and not row["n_damaged"]:
        return "missing"
    if row["n"]:
        return "completed"
    if row["n_diverged"]:
        return "diverged"
    if row["n_failed"]:
        return "failed"
    return "damaged" if row["n_damaged"] else "running"


def reference_variant(res: Results, model: str) -> str | None:
    """The variant whose gradients represent ``model``: Adam lr=0.001 (the study's common setting) first."""
    sub = res.runs[(res.runs["model"] == model)] if len(res.runs) else res.runs
    if not len(sub):
        return None
    exps = sub["exp_name"].unique().tolist()
    adam = [e for e in exps if STUDY_TABLE.get(e, (None, None))[1] == "adam"]
    adam = adam or sub[(sub["optimizer"] == "adam")]["exp_name"].unique().tolist()
    return (adam or sorted(exps))[0]



def per_class_accuracy(res: Results) -> pd.DataFrame:
    """Per-class test accuracy (last epoch, confusion summed over completed seeds); rows variant, cols class."""
    c = res.confusion
    if not len(c):
        return pd.DataFrame(columns=CLASS_LABELS)
    ok = res.runs[res.runs["status"] == "completed"][["exp_name", "seed"]]
    c = c.merge(ok, on=["exp_name", "seed"])
    tot = c.groupby(["exp_name", "true"])["count"].sum()
    hit = c[c["true"] == c["pred"]].groupby(["exp_name", "true"])["count"].sum()
    acc = (hit / tot).unstack("true").reindex(columns=list(CLASSES))
    acc.columns = CLASS_LABELS
    return acc.reindex([v for v in res.variants() if v in acc.index])


def best_of(st: pd.DataFrame, exps: Sequence[str]) -> str | None:
    """The variant of ``exps`` with the highest mean accuracy among those completed (None: none is)."""
    done = [e for e in exps if _have(st, e)]
    return max(done, key=lambda e: st.loc[e, "mean"]) if done else None


def best_variant(res: Results) -> str | None:
    st = summary_stats(res)
    st = st[st["state"] == "completed"]
    return None if not len(st) else str(st["mean"].idxmax())


def _have(st: pd.DataFrame, *exps: str) -> bool:
    return all(e in st.index and st.loc[e, "state"] == "completed" for e in exps)



def multi_seed(res: Any) -> bool:
    """Whether any variant has more than one completed seed (else no spread to show)."""
    ok = scored(res.runs[res.runs["status"] == "completed"]) if len(res.runs) else res.runs
    return bool(len(ok)) and bool((ok.groupby("exp_name")["seed"].nunique() > 1).any())


def change_noise(p: float, n: int) -> float:
    """Half-width (1.96 SE) of the change between two test accuracies near ``p`` measured on ``n``
    test images each: a smaller change is within the test set's sampling noise."""
    return 1.96 * math.sqrt(2 * p * (1 - p) / n) if n and 0 < p < 1 else 0.0


def _trend(res: Results, exp: str) -> tuple[str, float]:
    """('noise' | 'plateau' | 'rising' | 'falling' | 'single' | 'none', last-epoch test-acc change):
    'noise' when the change is within the binomial sampling noise of the test set."""
    df = res.epochs[res.epochs["exp_name"] == exp]
    ok = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")]["seed"]
    df = df[df["seed"].isin(ok)]
    if not len(df):
        return "none", math.nan
    mean = df.groupby("epoch")["test_acc"].mean().sort_index()
    if len(mean) < 2:
        return "single", math.nan
    d = float(mean.iloc[-1] - mean.iloc[-2])
    n = int(res.runs[res.runs["exp_name"] == exp]["test_size"].max() or 10_000) * int(df["seed"].nunique())
    if abs(d) < change_noise(float(mean.iloc[-1]), n):
        return "noise", d
    if abs(d) < PLATEAU_PP:
        return "plateau", d
    return ("rising" if d > 0 else "falling"), d



def _missing_note(st: pd.DataFrame, *exps: str) -> str:
    bad = [f"`{e}`（{STATUS_ZH[st.loc[e, 'state']] if e in st.index else '缺失'}）"
           for e in exps if not _have(st, e)]
    return "、".join(bad)



def study_scale(st: pd.DataFrame, exp: str) -> bool:
    """Whether a variant ran at the study's scale: all training images and at least the
    ``full`` profile's epochs for its model (the scale its absolute accuracy can be judged at)."""
    r = st.loc[exp]
    if r["state"] != "completed" or r["train_size"] not in (0, FULL_TRAIN) or not r["model"]:
        return False
    return r["epochs"] >= profile_settings("full", r["model"])["epochs"]




# ===================================================================== one variant


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n_seeds: int
    n_test: int
    method: str  # "t" (several seeds) | "wilson" (one seed) | "none"
    se: float = math.nan
    df: float = math.nan


def accuracy_interval(accs: Sequence[float], n_test: int, level: float = LEVEL) -> Interval:
    """95% interval: several seeds, mean ± t_ν·√(s²/k + p̄(1−p̄)/n), ν by Welch–Satterthwaite; one seed, Wilson's binomial interval.

    s is the seed-to-seed standard deviation of k seeds, p̄ their mean accuracy and n the
    test-set size. The seeds share one test set, so its sampling error (binomial, p̄(1−p̄)/n)
    does not shrink with k and is added to the seed term s²/k; ν counts the seed term's k−1
    degrees of freedom (the binomial term is known). One seed has no measured seed spread: its
    interval is the test-set sampling error alone.
    """
    a = np.asarray([x for x in accs if pd.notna(x)], dtype=float)
    k, n = len(a), int(n_test or 0)
    if k == 0 or n <= 0:
        return Interval(math.nan, math.nan, math.nan, k, n, "none")
    p = float(a.mean())
    if k == 1:
        hits = int(round(p * n))
        ci = sps.binomtest(hits, n).proportion_ci(confidence_level=level, method="wilson")
        return Interval(p, float(ci.low), float(ci.high), 1, n, "wilson", math.sqrt(p * (1 - p) / n), math.inf)
    seed_term = float(a.var(ddof=1)) / k
    test_term = p * (1 - p) / n
    se = math.sqrt(seed_term + test_term)
    df = math.inf if seed_term == 0 else (seed_term + test_term) ** 2 / (seed_term**2 / (k - 1))
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return Interval(p, max(p - half, 0.0), min(p + half, 1.0), k, n, "t", se, df)


# ===================================================================== two variants


@dataclass(frozen=True)
class PairedTest:
    """Paired test on the same test images; ``a``/``b`` wins count images."""

    per_seed: tuple[tuple[int, int, int, int, float], ...]  # (seed_a, seed_b, b, c, exact McNemar p)
    b: int  # pooled over seed pairs: a right and b wrong
    c: int  # a wrong and b right
    wins_a: int  # images on which a's summed discordances are positive
    wins_b: int
    p: float  # exact sign test on wins (McNemar's exact test itself with one seed pair)
    diff: float  # mean accuracy difference over the paired runs
    low: float  # normal-approximation interval of diff, images as the sampling unit
    high: float
    n_test: int


@dataclass(frozen=True)
class SeedTest:
    """Welch's t-test on per-seed accuracies, with its interval of the mean difference."""

    diff: float
    low: float
    high: float
    p: float
    df: float


@dataclass
class Comparison:
    a: str
    b: str
    verdict: str  # "a" / "b" (a is higher / lower, every available test p < ALPHA), "tie", "unknown"
    reason: str | None = None  # None | "missing" | "scale" | "subset" (decided, but on a training subset)
    diff: float = math.nan  # mean(a) - mean(b)
    p: float = math.nan  # the largest p of the tests used (the decisive one)
    low: float = math.nan  # 95% interval of diff: Welch's (several seeds each), else the paired one
    high: float = math.nan
    paired: PairedTest | None = None
    seeds: SeedTest | None = None
    unpaired_p: float = math.nan  # Fisher's exact test, only where per-image predictions are missing
    epochs: tuple[int, int] | None = None  # (a's, b's) epochs where the budgets differ (reason "budget")
    tests: list[str] = field(default_factory=list)  # names of the tests used: "paired", "welch", "fisher"

    @property
    def significant(self) -> bool:
        return self.verdict in ("a", "b")

    @property
    def equivalent(self) -> bool:
        """No difference found, and the whole interval lies within ``PARITY_MARGIN`` of zero."""
        return (not self.significant and self.low == self.low
                and max(abs(self.low), abs(self.high)) <= PARITY_MARGIN)

    @property
    def single_seed(self) -> bool:
        return self.seeds is None

    @property
    def winner_trained_longer(self) -> bool:
        """Where the budgets differ: the higher variant also trained for more epochs (so its
        lead may be the longer training's, not the architecture's)."""
        if self.epochs is None or not self.significant:
            return False
        ea, eb = self.epochs
        return ea > eb if self.verdict == "a" else eb > ea


def mcnemar_exact(right_a: np.ndarray, right_b: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p): discordant counts (a right/b wrong, a wrong/b right) and McNemar's exact p
    (two-sided binomial test of b in b + c at 1/2)."""
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    return b, c, (float(sps.binomtest(b, b + c).pvalue) if b + c else 1.0)


def paired_test(pairs: Sequence[tuple[int, int, np.ndarray, np.ndarray]], level: float = LEVEL) -> PairedTest:
    """Paired test over seed pairs ``(seed_a, seed_b, right_a, right_b)`` on one test set.

    Each pair gets McNemar's exact test. Combined: each image's discordances are summed over
    the pairs (d = #(a right, b wrong) − #(a wrong, b right)) and an exact sign test is run on
    the images with d ≠ 0. Images are the independent units (the seed pairs reuse them, so
    pooling discordant counts would count an image more than once); under the null hypothesis
    that a and b are exchangeable on every image, the sign of d is a fair coin. With one pair
    this is McNemar's exact test.
    """
    per_seed, d = [], 0
    for sa, sb, ra, rb in pairs:
        b, c, p = mcnemar_exact(ra, rb)
        per_seed.append((sa, sb, b, c, p))
        d = d + (ra.astype(int) - rb.astype(int))
    d = np.asarray(d)
    wins_a, wins_b = int(np.sum(d > 0)), int(np.sum(d < 0))
    p = float(sps.binomtest(wins_a, wins_a + wins_b).pvalue) if wins_a + wins_b else 1.0
    per_image = d / len(pairs)
    n = len(per_image)
    diff = float(per_image.mean())
    se = float(per_image.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    half = float(sps.norm.ppf(0.5 + level / 2)) * se
    return PairedTest(tuple(per_seed), sum(x[2] for x in per_seed), sum(x[3] for x in per_seed),
                      wins_a, wins_b, p, diff, diff - half, diff + half, n)


def seed_test(accs_a: Sequence[float], accs_b: Sequence[float], level: float = LEVEL) -> SeedTest | None:
    """Welch's t-test of mean(a) − mean(b) over seeds; None unless both have two seeds or more
    and some spread (the seeds of two variants are separate trainings: not paired)."""
    a, b = np.asarray(accs_a, float), np.asarray(accs_b, float)
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) < 1e-12 and np.ptp(b) < 1e-12):
        return None
    with warnings.catch_warnings():  # identical accuracies warn of precision loss; the result stands
        warnings.simplefilter("ignore", RuntimeWarning)
        t = sps.ttest_ind(a, b, equal_var=False)
        ci = t.confidence_interval(confidence_level=level)
    return SeedTest(float(a.mean() - b.mean()), float(ci.low), float(ci.high), float(t.pvalue), float(t.df))


def decide(diff: float, pvalues: Sequence[float]) -> str:
    """'a'/'b' when every test rejects at ALPHA (an intersection–union rule: the overall error
    stays at ALPHA), else 'tie' (the difference is within the error)."""
    ps = [p for p in pvalues if pd.notna(p)]
    if not ps or diff != diff:
        return "tie"
    return ("a" if diff > 0 else "b") if max(ps) < ALPHA else "tie"


# ===================================================================== from a loaded report


def completed_runs(res: Any, exp: str) -> pd.DataFrame:
    r = res.runs
    if not len(r) or "status" not in r:
        return r.iloc[0:0]
    return r[(r["exp_name"] == exp) & (r["status"] == "completed")].sort_values("seed")


def correctness(res: Any, exp: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """seed -> (labels, right) of a variant's completed runs with per-image predictions that
    passed their check on load (left out where they do not give the run's final accuracy: a
    stale or foreign file, or a run whose final accuracy is not known)."""
    def make():
        out = {}
        for _, r in scored(completed_runs(res, exp)).iterrows():
            if r["dir"] not in res.predictions:
                continue
            true, pred = res.predictions[r["dir"]]
            right = pred == true
            if abs(right.mean() - r["final_test_acc"]) > 0.5 / len(right):  # not the last epoch's: stale
                continue
            out[int(r["seed"])] = (true, right)
        return out
    return cached(res, ("correctness", exp), make)


def _scale(rows: pd.DataFrame) -> tuple:
    f = rows.iloc[0]
    return tuple(int(f[k] or 0) for k in ("train_size", "test_size", "epochs", "batch_size"))


def _seed_pairs(sa: Sequence[int], sb: Sequence[int]) -> list[tuple[int, int]]:
    """Seeds with the same number first, the rest in sorted order."""
    common = sorted(set(sa) & set(sb))
    ra, rb = sorted(set(sa) - set(common)), sorted(set(sb) - set(common))
    return [(s, s) for s in common] + list(zip(ra, rb))


def compare(res: Any, a: str, b: str) -> Comparison:
    """a against b (see the module docstring); cached per Results."""
    return cached(res, ("compare", a, b), lambda: _compare(res, a, b))


def _compare(res: Any, a: str, b: str) -> Comparison:
    da, db = scored(completed_runs(res, a)), scored(completed_runs(res, b))
    if not len(da) or not len(db):
        return Comparison(a, b, "unknown", "missing")
    acc_a, acc_b = da["final_test_acc"].astype(float), db["final_test_acc"].astype(float)
    out = Comparison(a, b, "unknown", None, float(acc_a.mean() - acc_b.mean()))
    if _scale(da)[:2] != _scale(db)[:2]:  # other training or test images: nothing to pair or compare
        out.reason = "scale"
        return out
    ca, cb = correctness(res, a), correctness(res, b)
    pairs = [(x, y, ca[x][1], cb[y][1]) for x, y in _seed_pairs(list(ca), list(cb))
             if np.array_equal(ca[x][0], cb[y][0])]
    pvals = []
    if pairs:
        out.paired = paired_test(pairs)
        pvals.append(out.paired.p)
        out.tests.append("paired")
    else:  # no per-image predictions: an unpaired (conservative) test on the mean accuracies
        n = int(da.iloc[0]["test_size"] or 0)
        ha, hb = int(round(acc_a.mean() * n)), int(round(acc_b.mean() * n))
        out.unpaired_p = float(sps.fisher_exact([[ha, n - ha], [hb, n - hb]]).pvalue) if n else math.nan
        pvals.append(out.unpaired_p)
        out.tests.append("fisher")
    out.seeds = seed_test(acc_a.tolist(), acc_b.tolist())
    if out.seeds is not None:
        pvals.append(out.seeds.p)
        out.tests.append("welch")
        out.low, out.high = out.seeds.low, out.seeds.high
    elif out.paired is not None:
        out.low, out.high = out.paired.low, out.paired.high
    out.p = max((p for p in pvals if pd.notna(p)), default=math.nan)
    out.verdict = decide(out.diff, pvals)
    if 0 < _scale(da)[0] < FULL_TRAIN:
        out.reason = "subset"
    elif _scale(da)[2:] != _scale(db)[2:]:  # the same images, other epochs or batch: decided, budgets differ
        out.reason = "budget"
        out.epochs = (_scale(da)[2], _scale(db)[2])
    return out


# ===================================================================== training curves


ORDER_EPOCHS = 2  # an ordering counts only if it holds at each of the last epochs both runs have


def order_flip(res: Any, a: str, b: str) -> dict | None:
    """The epoch, among the last ORDER_EPOCHS epochs that both ``a`` and ``b`` recorded, at which
    their mean test accuracies stood in the opposite order to their final ones, by more than the
    test set's sampling noise ({"epoch", "a",
    "b"}), or None where the order held (early in training a ranking can flip from one epoch to
    the next, and then the final one says little about the trained models)."""
    def curve(exp: str) -> pd.Series:
        ok = completed_runs(res, exp)["seed"]
        df = res.epochs[(res.epochs["exp_name"] == exp) & (res.epochs["seed"].isin(ok))]
        return df.groupby("epoch")["test_acc"].mean().sort_index()
    ca, cb = curve(a), curve(b)
    if not len(ca) or not len(cb):
        return None
    final = np.sign(ca.iloc[-1] - cb.iloc[-1])
    both = sorted(set(ca.index) & set(cb.index))[-ORDER_EPOCHS:]
    n = int(max(completed_runs(res, x)["test_size"].max() or 10_000 for x in (a, b)))
    for ep in both:  # reversed by more than the test set's sampling noise: a gap within it is no reversal
        if (np.sign(ca.loc[ep] - cb.loc[ep]) == -final != 0
                and abs(ca.loc[ep] - cb.loc[ep]) > change_noise((ca.loc[ep] + cb.loc[ep]) / 2, n)):
            return {"epoch": int(ep), "a": float(ca.loc[ep]), "b": float(cb.loc[ep])}
    return None


TREND_EPOCHS = 3  # the last epochs a curve's late trend is fitted over
PLATEAU_SLOPE = 0.01  # a late test-accuracy trend below 1 point per epoch counts as levelling off


def late_trend(res: Any, exp: str) -> dict[str, Any]:
    """The test accuracy's trend over the last ``TREND_EPOCHS`` epochs, with seeds as the unit:
    each completed seed's least-squares slope (per epoch), their mean, and a one-sample t-test of
    the seeds' slopes against 0 (two seeds or more; the epochs of one seed are not independent
    draws, so they are never pooled as if they were). ``gains``: the mean curve's change in each
    of those epochs. ``kind``: 'rising' (significant and ≥ PLATEAU_SLOPE), 'slowing' (significant,
    below it), 'flat' (not significant and below PLATEAU_PP: a gain too small to matter),
    'slowing' also when not significant but between the two, 'unclear' (not significant, above
    PLATEAU_SLOPE: too few seeds to tell), 'short' (fewer than TREND_EPOCHS epochs)."""
    def make():
        ok = completed_runs(res, exp)["seed"]
        df = res.epochs[(res.epochs["exp_name"] == exp) & (res.epochs["seed"].isin(ok))]
        epochs = int(df["epoch"].max()) if len(df) else 0
        out = {"epochs": epochs, "slopes": (), "slope": math.nan, "p": math.nan, "gains": (), "kind": "short"}
        if epochs < TREND_EPOCHS:
            return out
        late = df[df["epoch"] > epochs - TREND_EPOCHS]
        # rounded: a level curve's least-squares slope comes out as ±1e-17, not 0, and two such
        # round-off slopes must not pass a t-test as a rise
        slopes = [round(float(np.polyfit(g["epoch"].astype(float), g["test_acc"].astype(float), 1)[0]), 9)
                  for _, g in late.groupby("seed") if g["epoch"].nunique() == TREND_EPOCHS]
        mean = df.groupby("epoch")["test_acc"].mean().sort_index()
        out.update(slopes=tuple(slopes), slope=float(np.mean(slopes)) if slopes else math.nan,
                   gains=tuple(float(x) for x in mean.diff().iloc[-TREND_EPOCHS:]))
        if len(slopes) >= 2 and np.ptp(slopes) > 0:
            with warnings.catch_warnings():  # nearly equal slopes warn of precision loss; the result stands
                warnings.simplefilter("ignore", RuntimeWarning)
                out["p"] = float(sps.ttest_1samp(slopes, 0.0).pvalue)
        elif len(slopes) >= 2 and slopes[0] != 0:  # equal non-zero slopes: no spread, t is infinite
            out["p"] = 0.0
        # each seed's own rise over the window, against the sampling noise of two test accuracies
        n_test = int(completed_runs(res, exp)["test_size"].max() or 10_000)
        window = [(float(g["test_acc"].iloc[-1]), float(g["test_acc"].iloc[-1] - g["test_acc"].iloc[0]))
                  for _, g in late.sort_values("epoch").groupby("seed") if g["epoch"].nunique() == TREND_EPOCHS]
        out["window_gains"] = tuple(d for _, d in window)
        out["every_seed_rose"] = bool(window) and all(d > change_noise(a, n_test) for a, d in window)
        significant = out["slope"] > 0 and (out["p"] < ALPHA or out["every_seed_rose"])
        big = out["slope"] >= PLATEAU_SLOPE
        # level only when the gain is also small: with two seeds (one degree of freedom) a slope of
        # most of a point per epoch is rarely significant, and that is no evidence of a plateau
        small = out["slope"] < PLATEAU_PP
        out["kind"] = ("rising" if big else "slowing") if significant else ("unclear" if big else "flat" if small else "slowing")
        return out
    return cached(res, ("late_trend", exp), make)


def curve_shape(res: Any, exp: str) -> dict[str, float]:
    """How smooth a variant's curves are (means over completed seeds): epochs in which the test
    accuracy fell and the largest fall, epochs in which the test loss rose, the largest ratio of
    one epoch's test loss to the run's final one (a spike), and the final train−test gap."""
    ok = completed_runs(res, exp)["seed"]
    df = res.epochs[(res.epochs["exp_name"] == exp) & (res.epochs["seed"].isin(ok))]
    if not len(df):
        return {"epochs": 0}
    m = df.groupby("epoch")[["test_acc", "test_loss", "train_acc", "train_loss"]].mean().sort_index()
    dacc, dloss = m["test_acc"].diff().dropna(), m["test_loss"].diff().dropna()
    return {"epochs": len(m), "acc_drops": int((dacc < 0).sum()), "max_acc_drop": float(-dacc.min()) if len(dacc) else 0.0,
            "loss_rises": int((dloss > 0).sum()), "loss_spike": float(m["test_loss"].max() / m["test_loss"].iloc[-1]),
            "first_test_loss": float(m["test_loss"].iloc[0]), "gap": float(m["train_acc"].iloc[-1] - m["test_acc"].iloc[-1])}
