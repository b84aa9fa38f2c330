"""The bundled synthetic corpus: deterministic, raw Hub layout, canonical sizes, learnable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdlab.synthetic import COLUMNS, allocate, generate_corpus, load_taxonomy

N_TRAIN, N_VAL, N_TEST = 6000, 1500, 2000
COURSE_LABELS = Path(__file__).resolve().parents[2] / "shared" / "course-data" / "label_list.json"


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(N_TRAIN, N_VAL, N_TEST, seed=42)


def canonical(df: pd.DataFrame, corpus) -> tuple[list[str], np.ndarray, int]:
    """docs/study.md §1: merge raw labels, keep canonical ones -> (texts, label ids, n merged)."""
    merge = {k: v for k, v in corpus.merge_map.items() if not k.startswith("_")}
    ids = {lab: i for i, lab in enumerate(corpus.label_list)}
    merged = df["Issue"].map(lambda s: merge.get(s, s))
    keep = merged.isin(ids)
    n_merged = int((merged != df["Issue"]).sum())
    return df.loc[keep, "Consumer Complaint"].tolist(), np.array([ids[s] for s in merged[keep]]), n_merged


def splits(corpus):
    train = canonical(corpus.hub_train.iloc[corpus.train_indices], corpus)
    val = canonical(corpus.hub_train.iloc[corpus.val_indices], corpus)
    test = canonical(corpus.hub_test, corpus)
    return train, val, test


def test_taxonomy_is_consistent():
    tax = load_taxonomy()
    labels = tax["labels"]
    assert len(labels) == 113 and len(set(labels)) == 113
    assert list(tax["issues"]) and set(tax["issues"]) == set(labels)
    for lab in labels:
        info = tax["issues"][lab]
        assert info["product"] in tax["products"]
        assert len(info["keywords"]) >= 3
    assert 8 <= len(tax["products"]) <= 12
    for raw, target in tax["raw_variants"].items():
        assert raw not in labels and target in labels
    for raw, product in tax["unlisted_labels"].items():
        assert raw not in labels and raw not in tax["raw_variants"] and product in tax["products"]
    if COURSE_LABELS.exists():  # same names and order as the course's canonical list
        assert labels == json.loads(COURSE_LABELS.read_text())


def test_allocate_keeps_total_and_minimum():
    w = np.array([0.7, 0.2, 0.1, 0.0])
    counts = allocate(20, w, minimum=2)
    assert counts.sum() == 20 and counts.min() >= 2
    assert allocate(3, w, minimum=2).tolist() == [2, 2, 2, 2]


def test_same_seed_same_corpus_other_seed_differs():
    a = generate_corpus(600, 150, 200, seed=3)
    b = generate_corpus(600, 150, 200, seed=3)
    c = generate_corpus(600, 150, 200, seed=4)
    pd.testing.assert_frame_equal(a.hub_train, b.hub_train)
    pd.testing.assert_frame_equal(a.hub_test, b.hub_test)
    assert (a.train_indices, a.val_indices, a.merge_map) == (b.train_indices, b.val_indices, b.merge_map)
    assert not a.hub_train.equals(c.hub_train)
    assert a.hub_train.to_csv(index=False) == b.hub_train.to_csv(index=False)


def test_raw_layout(corpus):
    assert corpus.label_list == load_taxonomy()["labels"]
    assert len(corpus.label_list) == 113 and len(set(corpus.label_list)) == 113
    for df in (corpus.hub_train, corpus.hub_test):
        assert list(df.columns) == list(COLUMNS) == ["Issue", "Consumer Complaint", "Product"]
        assert df.index.equals(pd.RangeIndex(len(df)))
        for col in df.columns:
            assert pd.api.types.is_string_dtype(df[col])
            assert all(isinstance(v, str) and v for v in df[col])
    tr, va = corpus.train_indices, corpus.val_indices
    assert tr == sorted(tr) and va == sorted(va)
    assert not set(tr) & set(va)
    assert sorted(tr + va) == list(range(len(corpus.hub_train)))
    assert "_comment" in corpus.merge_map
    assert all(v in corpus.label_list for k, v in corpus.merge_map.items() if not k.startswith("_"))


def test_canonical_sizes_and_class_coverage(corpus):
    (_, ytr, m_tr), (_, yva, m_va), (_, yte, m_te) = splits(corpus)
    assert (len(ytr), len(yva), len(yte)) == (N_TRAIN, N_VAL, N_TEST)
    assert np.bincount(ytr, minlength=113).min() >= 2
    assert np.bincount(yva, minlength=113).min() >= 1
    assert np.bincount(yte, minlength=113).min() >= 1
    # both pipeline paths are exercised: merged variants and filtered rows
    assert min(m_tr, m_va, m_te) > 0
    n_raw = len(corpus.hub_train) + len(corpus.hub_test)
    n_dropped = n_raw - (N_TRAIN + N_VAL + N_TEST)
    assert 0.005 * n_raw < n_dropped < 0.03 * n_raw
    # long tail: the head dominates, val follows the train distribution
    freq = np.sort(np.bincount(ytr, minlength=113))[::-1]
    assert freq[:20].sum() > 0.5 * N_TRAIN and freq[0] > 20 * freq[-1]
    p_tr = np.bincount(ytr, minlength=113) / len(ytr)
    p_va = np.bincount(yva, minlength=113) / len(yva)
    assert np.abs(p_tr - p_va).sum() < 0.1


def test_texts_look_like_redacted_narratives(corpus):
    texts = corpus.hub_train["Consumer Complaint"]
    joined = " ".join(texts)
    assert "XXXX" in joined and "XX/XX/XXXX" in joined
    assert re.search(r"\{\$\d+\.\d\d\}", joined)
    words = texts.str.split().str.len().to_numpy()
    assert words.min() >= 15 and words.max() <= 150
    assert 40 <= words.mean() <= 65
    assert np.percentile(words, 95) > 1.8 * np.median(words)  # long right tail
    assert texts.nunique() > 0.99 * len(texts)


def test_tfidf_logreg_learns_head_not_tail(corpus):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    (xtr, ytr, _), (xva, yva, _), _ = splits(corpus)
    freq = np.bincount(ytr, minlength=113)
    order = sorted(range(113), key=lambda i: (-freq[i], i))
    tiers = {"head": order[:20], "mid": order[20:60], "tail": order[60:]}
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2)
    clf = LogisticRegression(C=10.0, solver="saga", tol=1e-3, max_iter=100)
    clf.fit(vec.fit_transform(xtr), ytr)
    pred = clf.predict(vec.transform(xva))
    f1 = {}
    for name, ids in tiers.items():
        m = np.isin(yva, ids)
        f1[name] = f1_score(yva[m], pred[m], labels=ids, average="macro", zero_division=0)
    assert f1["head"] >= 0.45, f1
    assert f1["tail"] <= 0.35 and f1["tail"] < f1["head"] - 0.25, f1
