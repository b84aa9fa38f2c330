"""Bundled synthetic CFPB-like corpus for the demo profile (fully offline).

The corpus comes out in the *raw* layout of the real sources, so the demo runs
through the same canonical processing as the Hub data (docs/study.md §1):

* ``hub_train`` / ``hub_test`` look like the Hub ``train`` / ``test`` splits:
  one row per complaint, columns ``Issue`` (raw label), ``Consumer Complaint``
  (narrative) and ``Product``, all strings;
* ``label_list`` is the 113 canonical labels in label-id order;
* ``merge_map`` maps raw pre-2017 label variants to canonical labels (with a
  ``_comment`` key, like the course file);
* ``train_indices`` / ``val_indices`` are sorted row positions into
  ``hub_train`` (disjoint, together covering every row).

Some rows carry a pre-2017 variant label (fixed by the merge map) and about
1.5 % carry a raw label outside the canonical list (dropped by the filter).
After merging and filtering, the canonical splits have exactly the requested
sizes; class frequencies follow a Zipf law with exponent ``imbalance`` over a
seeded permutation of the classes, with at least 2 rows per class in train and
at least 1 in val and test.

Narratives are built from the hand-written ``demo/taxonomy.json``: a product
opener, a few issue sentences whose keywords come from the true issue or,
with some probability, from a sibling issue of the same product (plus a few %
of labels swapped to a sibling: label noise), product vocabulary, generic filler
and CFPB redaction tokens (``XXXX``, ``XX/XX/XXXX``, ``{$1200.00}``). Lengths
are long-tailed, clipped to 15..150 words (mean about 50).

Everything is drawn from one seeded ``numpy`` generator (and a ``random.Random``
seeded from it); no set iteration or string hashing is involved, so the same
arguments give byte-identical output in every process.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

TEXT_COLUMN = "Consumer Complaint"
LABEL_COLUMN = "Issue"
PRODUCT_COLUMN = "Product"
COLUMNS = (LABEL_COLUMN, TEXT_COLUMN, PRODUCT_COLUMN)

# Generator knobs, tuned at the demo sizes so that TF-IDF + LogReg (C=10) gets val macro F1
# head ~0.70, mid ~0.35, tail ~0.16 (the real teacher: 0.65 / 0.45 / 0.20).
P_OWN_KEYWORD = 0.55      # an issue sentence uses the true issue's keywords, else a sibling's
LABEL_NOISE = 0.05        # share of rows whose text was written for a sibling issue
VARIANT_SHARE = 0.35      # share of rows of a label with pre-2017 variants that use one
FILTERED_SHARE = 0.015    # extra rows (relative to split size) with non-canonical labels
MIN_WORDS, MAX_WORDS = 15, 150

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class SyntheticCorpus:
    """The synthetic corpus in the raw layout of the real sources.

    hub_train: DataFrame (n_hub_train rows) with string columns ``Issue``,
        ``Consumer Complaint``, ``Product``; like the Hub ``train`` split.
    hub_test: DataFrame (n_hub_test rows), same columns; like the Hub ``test`` split.
    label_list: the 113 canonical labels in label-id order.
    merge_map: raw label -> canonical label (plus a ``_comment`` key).
    train_indices: sorted row positions into hub_train forming canonical train
        (before filtering).
    val_indices: sorted row positions into hub_train forming canonical val
        (before filtering); disjoint from train_indices, together covering all rows.
    """

    hub_train: pd.DataFrame
    hub_test: pd.DataFrame
    label_list: list[str]
    merge_map: dict[str, str]
    train_indices: list[int]
    val_indices: list[int]


def load_taxonomy() -> dict:
    """Read the bundled ``kdlab/demo/taxonomy.json``.

    Keys: ``labels`` (113 canonical labels, label-id order), ``products``
    (key -> name, nouns, vocab), ``issues`` (label -> product key, keywords),
    ``raw_variants`` (raw -> canonical), ``unlisted_labels`` (raw label ->
    product key; not canonical, filtered out) and ``text`` (sentence templates).
    """
    path = resources.files("kdlab").joinpath("demo", "taxonomy.json")
    return json.loads(path.read_text(encoding="utf-8"))


def class_weights(n_classes: int, imbalance: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf class probabilities, shape (n_classes,), summing to 1.

    Class ``i`` gets weight ``(rank_i + 1) ** -imbalance`` where ``rank`` is a
    seeded permutation of ``0..n_classes-1``.
    """
    ranks = rng.permutation(n_classes)
    w = (ranks + 1.0) ** (-float(imbalance))
    return w / w.sum()


def allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integer counts per class, shape (n_classes,), ``minimum`` each at least.

    Every class gets ``minimum``; the rest (``total - minimum * n_classes``,
    if positive) is shared in proportion to ``weights`` by the largest-remainder
    method (ties broken by class id), so the counts sum to
    ``max(total, minimum * n_classes)``.
    """
    n = len(weights)
    extra = max(int(total) - minimum * n, 0)
    quota = extra * np.asarray(weights, dtype=np.float64)
    counts = np.floor(quota).astype(np.int64)
    short = extra - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:short]] += 1
    return counts + minimum


class _Writer:
    """Writes narratives for one taxonomy with one ``random.Random`` stream."""

    def __init__(self, tax: dict, rnd: random.Random):
        self.rnd = rnd
        self.tax = tax
        self.text = tax["text"]
        self.products = tax["products"]
        self.issues = tax["issues"]
        # siblings: label -> other labels of the same product, in label-id order
        self.siblings = {
            lab: [o for o in tax["labels"] if o != lab and self.issues[o]["product"] == info["product"]]
            for lab, info in self.issues.items()
        }

    # -- redaction tokens ------------------------------------------------ #
    def _date(self) -> str:
        return "XX/XX/XXXX" if self.rnd.random() < 0.8 else f"XX/XX/{self.rnd.randint(2012, 2019)}"

    def _amount(self) -> str:
        value = round(math.exp(self.rnd.uniform(math.log(15.0), math.log(25000.0))), 2)
        return "{$" + f"{value:.2f}" + "}"

    def _company(self) -> str:
        return self.rnd.choice(("XXXX", "XXXX", "XXXX XXXX", "XXXX Bank", "XXXX Financial"))

    # -- sentences --------------------------------------------------------- #
    def _fill(self, template: str, product: str, keywords: list[str] | None) -> str:
        prod = self.products[product]

        def sub(m: re.Match) -> str:
            key = m.group(1)
            if key == "kw":
                return self.rnd.choice(keywords)
            if key in ("vocab", "vocab2"):
                return self.rnd.choice(prod["vocab"])
            if key == "noun":
                return self.rnd.choice(prod["nouns"])
            if key == "date":
                return self._date()
            if key == "amount":
                return self._amount()
            if key == "company":
                return self._company()
            raise KeyError(f"unknown placeholder {{{key}}} in taxonomy template {template!r}")

        out = _PLACEHOLDER.sub(sub, template)
        return out[:1].upper() + out[1:]

    def _issue_keywords(self, label: str) -> list[str]:
        """Keywords of the issue itself, or (1 - P_OWN_KEYWORD) of the time a sibling's."""
        sibs = self.siblings[label]
        if sibs and self.rnd.random() >= P_OWN_KEYWORD:
            return self.issues[self.rnd.choice(sibs)]["keywords"]
        return self.issues[label]["keywords"]

    def narrative(self, label: str | None, product: str) -> str:
        """One complaint narrative (15..150 words) about ``label`` (None: any issue of ``product``)."""
        rnd, text = self.rnd, self.text
        n_issue = rnd.choice((1, 1, 2, 2, 2, 3))
        n_product = rnd.choice((0, 1, 1, 2))
        n_filler = min(int(rnd.lognormvariate(0.7, 0.75)), 14)
        body = []
        for _ in range(n_issue):
            lab = label if label is not None else rnd.choice(
                [lb for lb in self.tax["labels"] if self.issues[lb]["product"] == product])
            body.append(self._fill(rnd.choice(text["issue"]), product, self._issue_keywords(lab)))
        body += [self._fill(rnd.choice(text["product"]), product, None) for _ in range(n_product)]
        body += [self._fill(rnd.choice(text["filler"]), product, None) for _ in range(n_filler)]
        rnd.shuffle(body)
        parts = [self._fill(rnd.choice(text["openers"]), product, None), *body,
                 self._fill(rnd.choice(text["closers"]), product, None)]
        words = " ".join(p for p in parts if p).split()
        while len(words) < MIN_WORDS:
            words += self._fill(rnd.choice(text["filler"]), product, None).split()
        return " ".join(words[:MAX_WORDS])


def _split_rows(writer: _Writer, counts: np.ndarray, tax: dict, variants: dict[str, list[str]],
                n_filtered: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """Rows ``(raw Issue, narrative, Product)`` of one split, in generation order.

    ``counts``: shape (113,), canonical rows per label id. Adds ``n_filtered``
    rows whose raw label is outside the canonical list.
    """
    labels, issues, products = tax["labels"], tax["issues"], tax["products"]
    rows = []
    label_ids = np.repeat(np.arange(len(labels)), counts)
    noisy = rng.random(len(label_ids)) < LABEL_NOISE
    use_variant = rng.random(len(label_ids)) < VARIANT_SHARE
    for i, lid in enumerate(label_ids.tolist()):
        label = labels[lid]
        product = issues[label]["product"]
        source = label
        if noisy[i] and writer.siblings[label]:
            source = writer.rnd.choice(writer.siblings[label])
        raw = label
        if use_variant[i] and variants.get(label):
            raw = writer.rnd.choice(variants[label])
        rows.append((raw, writer.narrative(source, product), products[product]["name"]))
    unlisted = list(tax["unlisted_labels"].items())
    for _ in range(n_filtered):
        raw, product = writer.rnd.choice(unlisted)
        rows.append((raw, writer.narrative(None, product), products[product]["name"]))
    return rows


def _frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """DataFrame (len(rows), 3) with the Hub's string columns."""
    cols = list(zip(*rows)) if rows else [(), (), ()]
    return pd.DataFrame({name: pd.Series(list(c), dtype=str) for name, c in zip(COLUMNS, cols)})


def generate_corpus(n_train: int, n_val: int, n_test: int, seed: int = 42,
                    imbalance: float = 1.1) -> SyntheticCorpus:
    """Generate the synthetic corpus (deterministic in all arguments).

    After merging and filtering (docs/study.md §1 steps 1-3), canonical train / val /
    test have ``max(n_train, 226)`` / ``max(n_val, 113)`` / ``max(n_test, 113)``
    rows; ``hub_train`` holds about 1.015 * (n_train + n_val) raw rows and
    ``hub_test`` about 1.015 * n_test.
    """
    if min(n_train, n_val, n_test) <= 0:
        raise ValueError(f"synthetic sizes must be positive, got {n_train}, {n_val}, {n_test}")
    if imbalance < 0:
        raise ValueError(f"imbalance must be >= 0, got {imbalance}")
    tax = load_taxonomy()
    labels = list(tax["labels"])
    rng = np.random.default_rng(seed)
    writer = _Writer(tax, random.Random(int(rng.integers(0, 2**63 - 1))))

    variants: dict[str, list[str]] = {}
    for raw, canonical in tax["raw_variants"].items():
        variants.setdefault(canonical, []).append(raw)

    weights = class_weights(len(labels), imbalance, rng)
    sizes = {"train": (n_train, 2), "val": (n_val, 1), "test": (n_test, 1)}
    rows = {}
    for split, (n, minimum) in sizes.items():
        counts = allocate(n, weights, minimum)
        n_filtered = int(round(FILTERED_SHARE * n))
        rows[split] = _split_rows(writer, counts, tax, variants, n_filtered, rng)

    # Hub 'train' = canonical train + val rows, shuffled; the index files pick them out.
    pool = rows["train"] + rows["val"]
    is_val = np.array([False] * len(rows["train"]) + [True] * len(rows["val"]))
    order = rng.permutation(len(pool))
    hub_train = _frame([pool[i] for i in order.tolist()])
    positions = np.arange(len(pool))
    train_indices = positions[~is_val[order]].tolist()
    val_indices = positions[is_val[order]].tolist()
    test_order = rng.permutation(len(rows["test"]))
    hub_test = _frame([rows["test"][i] for i in test_order.tolist()])

    merge_map = {"_comment": "Synthetic demo corpus: maps pre-2017 raw Issue labels to their canonical forms."}
    merge_map.update(tax["raw_variants"])
    return SyntheticCorpus(hub_train=hub_train, hub_test=hub_test, label_list=labels,
                           merge_map=merge_map, train_indices=train_indices, val_indices=val_indices)
