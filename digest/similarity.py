"""How alike short texts are (title + lede), and grouping them into stories.

Two kinds of vectors: lexical ones built here, with no model (word unigrams and bigrams plus
character n-grams, weighted by TF-IDF over the texts compared; character n-grams let Korean,
which has no reliable word boundaries, match "모델을" with "모델은"), and embeddings from an
OpenAI-compatible endpoint. Both are unit-length sparse or dense vectors compared by cosine.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

Sparse = dict[str, float]

_TOKEN = re.compile(r"[0-9a-z가-힣]+(?:[.\-][0-9a-z가-힣]+)*")
_HANGUL = re.compile(r"[가-힣]")
_STOP = set(
    "the a an and or but if of to in on at for with by from as is are was were be been being "
    "this that these those it its we our you your they their he she his her not no so than then "
    "there here what which who when where why how all any can could will would should may might "
    "must do does did have has had i me my also into about more most such only just over new "
    "says said after before up out one two its it's week today now".split()
)
# Korean particles at a word's end ("모델은", "모델을" -> "모델").
_KO_PARTICLE = re.compile(r"(?<=[가-힣])(은|는|이|가|을|를|에|에서|으로|로|와|과|의|도|만|에게)$")
# Weight of each family of features in a lexical vector.
_FAMILY = {"w": 1.0, "b": 1.2, "c": 0.45}


def tokens(text: str) -> list[str]:
    """Lower-case word tokens (numbers and versions like 5.5 kept whole)."""
    return _TOKEN.findall((text or "").lower())


def _stem(word: str) -> str:
    """A crude stem: Korean particles off, English plural and -ed/-ing endings off."""
    if _HANGUL.search(word):
        return _KO_PARTICLE.sub("", word) or word
    if len(word) > 4 and word.isalpha():
        for end in ("ing", "ies", "ed", "es", "s"):
            if word.endswith(end) and not word.endswith("ss"):
                return word[: -len(end)] + ("y" if end == "ies" else "")
    return word


def features(text: str) -> Counter[str]:
    """Counts of the lexical features of a text: words, word pairs, character n-grams."""
    words = [_stem(w) for w in tokens(text)]
    found: Counter[str] = Counter()
    kept = [w for w in words if w not in _STOP and (len(w) > 1 or _HANGUL.match(w))]
    for word in kept:
        found["w:" + word] += 1
    for first, second in zip(kept, kept[1:], strict=False):
        found[f"b:{first} {second}"] += 1
    for word in kept:
        if _HANGUL.search(word):
            # Korean: syllable bigrams and trigrams carry the stems whatever particle follows.
            for size in (2, 3):
                for i in range(max(len(word) - size + 1, 0)):
                    found["c:" + word[i : i + size]] += 1
        elif len(word) > 4:
            padded = f" {word} "
            for i in range(len(padded) - 3):
                found["c:" + padded[i : i + 4]] += 1
    return found


def _unit(vector: Sparse) -> Sparse:
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {k: v / norm for k, v in vector.items()} if norm else {}


def tfidf(texts: Sequence[str], *, max_df: float = 0.1) -> list[Sparse]:
    """Unit TF-IDF vectors of texts; features in more than max_df of them are dropped."""
    counted = [features(t) for t in texts]
    df: Counter[str] = Counter()
    for feats in counted:
        df.update(feats.keys())
    # Document frequencies count among texts of the same script, so that words common to
    # every Korean text are not rare merely because most texts are English.
    hangul = sum(1 for t in texts if _HANGUL.search(t or ""))
    totals = {True: hangul, False: len(texts)}
    vectors = []
    for feats in counted:
        vector = {}
        for f, n in feats.items():
            total = totals[bool(_HANGUL.search(f))]
            if df[f] > max(3.0, max_df * total):
                continue
            idf = math.log((total + 1) / (df[f] + 1)) + 1
            vector[f] = (1 + math.log(n)) * idf * _FAMILY[f[0]]
        vectors.append(_unit(vector))
    return vectors


def cosine(a: Sparse, b: Sparse) -> float:
    """Cosine of two unit sparse vectors."""
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def dense_unit(vector: Sequence[float]) -> list[float]:
    """A dense vector scaled to unit length."""
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else [0.0 for _ in vector]


def dense_cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two unit dense vectors."""
    return sum(map(operator.mul, a, b))


def sparse_pairs(vectors: Sequence[Sparse], floor: float) -> dict[tuple[int, int], float]:
    """Cosine of every pair (i < j) at or above floor, found through an inverted index."""
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for index, vector in enumerate(vectors):
        for feature, weight in vector.items():
            postings[feature].append((index, weight))
    sums: dict[tuple[int, int], float] = defaultdict(float)
    for entries in postings.values():
        if len(entries) < 2:
            continue
        for n, (i, wi) in enumerate(entries):
            for j, wj in entries[n + 1 :]:
                sums[(i, j)] += wi * wj
    return {pair: value for pair, value in sums.items() if value >= floor}


def dense_pairs(vectors: Sequence[Sequence[float]], floor: float) -> dict[tuple[int, int], float]:
    """Cosine of every pair (i < j) of unit dense vectors at or above floor."""
    import numpy as np

    if len(vectors) < 2:
        return {}
    matrix = np.asarray(vectors, dtype=np.float32)
    sims = np.triu(matrix @ matrix.T, k=1)
    rows, cols = np.nonzero(sims >= floor)
    return {(int(i), int(j)): float(sims[i, j]) for i, j in zip(rows, cols, strict=True) if i < j}


def cluster(count: int, pairs: dict[tuple[int, int], float], threshold: float) -> list[list[int]]:
    """Group 0..count-1 by average linkage: two groups join when the mean similarity of all
    their cross pairs reaches threshold (pairs not given count as 0). Groups in first-index order."""
    parent = list(range(count))
    members: dict[int, list[int]] = {i: [i] for i in range(count)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), value in sorted(pairs.items(), key=lambda p: (-p[1], p[0])):
        if value < threshold:
            break
        a, b = find(i), find(j)
        if a == b:
            continue
        total = sum(pairs.get((min(x, y), max(x, y)), 0.0) for x in members[a] for y in members[b])
        if total / (len(members[a]) * len(members[b])) < threshold:
            continue
        root, other = (a, b) if a < b else (b, a)
        parent[other] = root
        members[root].extend(members.pop(other))
    return sorted((sorted(m) for m in members.values()), key=lambda m: m[0])
