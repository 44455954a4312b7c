"""Text-to-text benchmark: does the text tower keep general English meaning?

Enrichment evidence (detected COCO object names, words read on screen, words heard) is encoded
with the same text tower as users' queries and matched against them, so the tower must rank
text by meaning, not only the corpus captions it was trained on. Two tasks, written by hand
before any model was trained on this tower and never used in training:

- `objects`: the 80 COCO class names are the gallery; each query is a synonym or a kind of one
  class ("puppy" -> dog, "sedan" -> car, "sofa" -> couch). Recall@1/5 over the 80 names.
- `ocr`: lines of on-screen text (news tickers, signs, slides, captions) are the gallery; each
  query is two words taken from one line, in other case or order ("river floods" -> "BREAKING
  NEWS: river floods city centre"). Recall@1/5 over the lines.

`score(encode)` runs both for any `encode(list[str]) -> (N, D) unit vectors`: the trained tower
(PyTorch or ONNX), the old generation, or the plain mean of word vectors.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .coco import COCO_CLASSES

COCO = COCO_CLASSES

# (query, COCO class): synonyms, kinds of, and everyday words for a class
OBJECT_QUERIES = (
    ("puppy", "dog"), ("poodle", "dog"), ("terrier", "dog"), ("hound", "dog"),
    ("kitten", "cat"), ("tabby", "cat"),
    ("automobile", "car"), ("sedan", "car"), ("taxi", "car"),
    ("motorbike", "motorcycle"), ("scooter", "motorcycle"),
    ("jet", "airplane"), ("aircraft", "airplane"), ("airliner", "airplane"),
    ("coach", "bus"), ("minibus", "bus"),
    ("locomotive", "train"), ("railway", "train"),
    ("lorry", "truck"), ("pickup", "truck"),
    ("yacht", "boat"), ("canoe", "boat"), ("ship", "boat"),
    ("bike", "bicycle"),
    ("parrot", "bird"), ("sparrow", "bird"), ("pigeon", "bird"),
    ("pony", "horse"), ("stallion", "horse"),
    ("lamb", "sheep"), ("ewe", "sheep"),
    ("cattle", "cow"), ("calf", "cow"),
    ("grizzly", "bear"),
    ("woman", "person"), ("pedestrian", "person"), ("child", "person"),
    ("rucksack", "backpack"), ("purse", "handbag"), ("necktie", "tie"), ("luggage", "suitcase"),
    ("parasol", "umbrella"),
    ("soccer ball", "sports ball"), ("football", "sports ball"),
    ("racquet", "tennis racket"),
    ("mug", "cup"), ("teacup", "cup"),
    ("cutlery", "fork"), ("dagger", "knife"),
    ("doughnut", "donut"), ("cupcake", "cake"), ("pastry", "cake"),
    ("burger", "sandwich"), ("sausage", "hot dog"),
    ("sofa", "couch"), ("armchair", "chair"), ("stool", "chair"),
    ("television", "tv"), ("smartphone", "cell phone"), ("cellphone", "cell phone"),
    ("notebook computer", "laptop"),
    ("fridge", "refrigerator"), ("stove", "oven"),
    ("novel", "book"), ("textbook", "book"),
    ("wristwatch", "clock"), ("houseplant", "potted plant"),
    ("mattress", "bed"), ("lavatory", "toilet"), ("faucet", "sink"),
    ("hairdryer", "hair drier"), ("plush toy", "teddy bear"),
)

OCR_LINES = (
    "BREAKING NEWS: river floods city centre",
    "SALE 50% OFF all winter boots",
    "Welcome to Springfield Public Library",
    "Chapter 3: The Storm Arrives",
    "Quarterly revenue grew 12 percent",
    "Platform 4 - Express train to Edinburgh",
    "Do not enter: construction site",
    "Happy birthday Grandma Rose!",
    "Live from the Olympic stadium",
    "Weather warning: heavy snow tonight",
    "Fresh bread baked every morning",
    "Chemistry lecture 7: organic molecules",
    "Vote for clean water on Tuesday",
    "Goal! Barcelona 2 - 1 Madrid",
    "Museum closed for renovation until June",
    "Recipe: spicy tomato soup with basil",
    "Final exam schedule posted online",
    "Airport security checkpoint ahead",
    "Save the whales - protect our oceans",
    "Concert tickets sold out tonight",
    "Emergency exit - keep door clear",
    "Stock markets fall after bank collapse",
    "Introducing the new electric bicycle",
    "Thank you for watching - subscribe!",
    "Hotel reception open 24 hours",
    "Wildfire spreads across the northern forest",
    "Mountain trail closed due to avalanche risk",
    "Election results: senator wins second term",
    "Pharmacy: prescriptions ready for pickup",
    "Chess tournament round five begins",
)

# (query, index into OCR_LINES): two words of the line, case and order changed
OCR_QUERIES = (
    ("river floods", 0), ("winter boots", 1), ("public library", 2), ("storm arrives", 3),
    ("revenue grew", 4), ("express edinburgh", 5), ("construction site", 6), ("birthday grandma", 7),
    ("olympic stadium", 8), ("heavy snow", 9), ("fresh bread", 10), ("organic chemistry", 11),
    ("clean water", 12), ("barcelona madrid", 13), ("museum renovation", 14), ("tomato soup", 15),
    ("exam schedule", 16), ("airport security", 17), ("whales oceans", 18), ("concert tickets", 19),
    ("emergency exit", 20), ("bank collapse", 21), ("electric bicycle", 22), ("subscribe watching", 23),
    ("hotel reception", 24), ("wildfire forest", 25), ("avalanche trail", 26), ("senator election", 27),
    ("prescriptions pharmacy", 28), ("chess tournament", 29),
)

Encoder = Callable[[list], np.ndarray]


def recall(queries: np.ndarray, gallery: np.ndarray, targets: list[int], ks=(1, 5)) -> dict[str, float]:
    """Recall@K with ties counted AGAINST the query: a tower that maps many texts to the same
    vector (all [UNK]) must not score by tying every class."""
    sims = queries @ gallery.T  # (Q, G)
    own = sims[np.arange(len(targets)), targets][:, None]
    rank = (sims >= own - 1e-6).sum(axis=1) - 1  # others at least as similar as the target
    return {f"r{k}": round(float((rank < k).mean()), 4) for k in ks}


def score(encode: Encoder) -> dict:
    """Both tasks for one encoder; also the share of object queries whose own class beats "dog"
    vs. every other class name (R@1 is that share)."""
    coco = list(COCO)
    obj_q = [q for q, _ in OBJECT_QUERIES]
    obj_t = [coco.index(c) for _, c in OBJECT_QUERIES]
    ocr_q = [q for q, _ in OCR_QUERIES]
    ocr_t = [i for _, i in OCR_QUERIES]
    g_obj, q_obj = encode(coco), encode(obj_q)
    g_ocr, q_ocr = encode(list(OCR_LINES)), encode(ocr_q)
    return {
        "objects": {"queries": len(obj_q), "gallery": len(coco), **recall(q_obj, g_obj, obj_t)},
        "ocr": {"queries": len(ocr_q), "gallery": len(OCR_LINES), **recall(q_ocr, g_ocr, ocr_t)},
    }


def misses(encode: Encoder, k: int = 1) -> list[str]:
    """Object queries whose class is not in the top k, with what came first (for reading)."""
    coco = list(COCO)
    q = encode([x for x, _ in OBJECT_QUERIES])
    sims = q @ encode(coco).T
    out = []
    for i, (query, cls) in enumerate(OBJECT_QUERIES):
        order = np.argsort(-sims[i])
        if coco.index(cls) not in order[:k]:
            out.append(f"{query} -> {coco[order[0]]} (want {cls})")
    return out


def mean_vector_encoder(tok, table: np.ndarray, centre: np.ndarray | None = None) -> Encoder:
    """The plain mean of word vectors: tokens of `tok` looked up in `table` (pieces too), averaged,
    optionally centred, L2-normalised. [UNK]/[PAD] rows are zero."""
    def encode(texts: list) -> np.ndarray:
        out = np.zeros((len(texts), table.shape[1]), np.float32)
        for i, t in enumerate(texts):
            ids = [j for j in tok.tokens(t) if j > 1]
            if ids:
                out[i] = table[ids].mean(axis=0)
        if centre is not None:
            out = out - centre
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)
    return encode
