"""Train the diagnosis models on real data shipped inside scikit-learn, export them to ONNX
and write each version's folder: model.onnx, card.md, metadata.json.

    python models/train.py            # writes models/<name>/<version>/ (committed)
    python models/train.py --imaging  # also the untrained imaging CNN, into the cache

Everything is seeded, so a rerun writes the same cards and metadata and models that answer
the same (byte for byte unless a BLAS kernel rounds a last bit differently). Every number in a
card is measured here, by running the exported ONNX file with ONNX Runtime on the held-out split.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skl2onnx import to_onnx
from threadpoolctl import threadpool_limits

from medmec.workloads.inference import imaging_cnn
from medmec.workloads.modelstore import modelcard

MODELS_DIR = Path(__file__).resolve().parent
OPSET = {"": 17, "ai.onnx.ml": 3}
SPLIT = {"test_size": 0.25, "random_state": 42, "stratify": True}

BREAST_CANCER_SOURCE = (
    "Breast Cancer Wisconsin (Diagnostic), W. N. Street, W. H. Wolberg, O. L. Mangasarian "
    "(University of Wisconsin, 1995), as shipped inside scikit-learn "
    "(`sklearn.datasets.load_breast_cancer`). UCI Machine Learning Repository, "
    "licence CC BY 4.0. 569 fine-needle-aspirate cases, 30 nuclear-shape features from "
    "digitised images; 212 malignant, 357 benign.")
DIABETES_SOURCE = (
    "Diabetes data of Efron, Hastie, Johnstone and Tibshirani, 'Least Angle Regression' "
    "(Annals of Statistics, 2004), as shipped inside scikit-learn "
    "(`sklearn.datasets.load_diabetes`, distributed under scikit-learn's BSD-3-Clause "
    "licence). 442 patients, 10 baseline measurements (age, sex, BMI, blood pressure, six "
    "serum values), mean-centred and scaled by the publisher; the target is a quantitative "
    "measure of disease progression one year after baseline.")


@dataclasses.dataclass(frozen=True)
class Dataset:
    loader: str
    features: np.ndarray
    labels: np.ndarray
    feature_names: list[str]
    classes: list[str]  # index = label; index 1 is the positive (disease) finding
    source: str


def breast_cancer() -> Dataset:
    data = load_breast_cancer()
    # scikit-learn codes malignant as 0; a diagnosis model's positive class is the disease
    return Dataset("sklearn.datasets.load_breast_cancer", data.data.astype(np.float32),
                   (1 - data.target).astype(np.int64), list(data.feature_names),
                   ["benign", "malignant"], BREAST_CANCER_SOURCE)


DIABETES_THRESHOLD = 140.0  # progression score; about the median of the 442 patients


def diabetes_progression() -> Dataset:
    data = load_diabetes()
    return Dataset("sklearn.datasets.load_diabetes", data.data.astype(np.float32),
                   (data.target > DIABETES_THRESHOLD).astype(np.int64), list(data.feature_names),
                   ["progression<=140", "progression>140"], DIABETES_SOURCE)


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    dataset: Callable[[], Dataset]
    estimator: Callable[[], object]
    description: str
    intended_use: str
    limits: str


def _logistic(**kwargs) -> Pipeline:
    return Pipeline([("scale", StandardScaler()),
                     ("classify", LogisticRegression(max_iter=2000, random_state=0, **kwargs))])


BREAST_CANCER_USE = (
    "Decision support at the hospital edge: flags fine-needle-aspirate cases whose nuclear "
    "features suggest malignancy, for review by a pathologist. Low-confidence answers are "
    "escalated to a larger model and kept for retraining.")
BREAST_CANCER_LIMITS = (
    "Trained on 426 cases from one centre (Wisconsin, early 1990s); the features must be "
    "computed the same way (Street et al.'s image analysis). Not validated on other "
    "populations, scanners or sample preparations. Never a diagnosis on its own: a "
    "pathologist decides.")

RECIPES = [
    Recipe("breast-cancer", "1", breast_cancer, _logistic,
           "Standardised logistic regression (L2, C=1) on the 30 features.",
           BREAST_CANCER_USE, BREAST_CANCER_LIMITS),
    Recipe("breast-cancer", "2", breast_cancer,
           lambda: _logistic(C=0.3, class_weight="balanced"),
           "Standardised logistic regression (L2, C=0.3) with balanced class weights, the "
           "canary candidate meant to trade specificity for sensitivity.",
           BREAST_CANCER_USE, BREAST_CANCER_LIMITS),
    Recipe("breast-cancer-large", "1", breast_cancer,
           lambda: Pipeline([("scale", StandardScaler()),
                             ("classify", MLPClassifier((128, 64), alpha=1.0, max_iter=2000,
                                                        random_state=0))]),
           "Standardised multilayer perceptron (30-128-64-2, ReLU, L2 alpha=1), the larger "
           "second-opinion model that low-confidence edge answers are escalated to.",
           BREAST_CANCER_USE, BREAST_CANCER_LIMITS),
    Recipe("diabetes-progression", "1", diabetes_progression, _logistic,
           "Standardised logistic regression (L2, C=1) on the 10 baseline measurements; "
           "positive class: a progression score above 140 one year after baseline.",
           "Research and platform demonstration of a second clinical model: ranks diabetes "
           "patients by risk of marked disease progression within a year, to prioritise "
           "follow-up review.",
           "442 patients from one study; the features are the publisher's centred and scaled "
           "values, so raw clinical measurements must be transformed the same way first. "
           "The 140 cut-off is this project's choice (about the median), not a clinical "
           "threshold. Moderate accuracy: not for individual treatment decisions."),
]


def split(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The held-out split every card reports; tests rebuild it from metadata.json."""
    return train_test_split(ds.features, ds.labels, test_size=SPLIT["test_size"],
                            random_state=SPLIT["random_state"], stratify=ds.labels)


def export(model, n_features: int, name: str) -> bytes:
    onx = to_onnx(model, initial_types=[("features", _float_type(n_features))],
                  target_opset=OPSET, options={"zipmap": False})
    onx.graph.name = name
    onx.producer_name = "medmec-models"
    onx.producer_version = "1"
    onx.doc_string = ""
    onnx.checker.check_model(onx)
    return onx.SerializeToString(deterministic=True)


def _float_type(n: int):
    from skl2onnx.common.data_types import FloatTensorType
    return FloatTensorType([None, n])


def train(recipe: Recipe, out_root: Path) -> dict:
    ds = recipe.dataset()
    x_train, x_test, y_train, y_test = split(ds)
    model = recipe.estimator()
    model.fit(x_train, y_train)
    onnx_bytes = export(model, ds.features.shape[1], recipe.name.replace("-", "_"))
    probabilities = modelcard.run_onnx(onnx_bytes, x_test)
    metrics = modelcard.binary_metrics(y_test, probabilities)
    metadata = {
        "name": recipe.name,
        "version": recipe.version,
        "format": "onnx",
        "opset": OPSET,
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, len(ds.feature_names)],
                    "description": "one row per case; columns in feature_names order"}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1],
             "description": "index of the most probable class"},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(ds.classes)],
             "description": "class probabilities in classes order; they sum to 1"}],
        "feature_names": ds.feature_names,
        "classes": ds.classes,
        "dataset": {"loader": ds.loader, "positive_class": ds.classes[1],
                    "split": {**SPLIT, "train": int(len(y_train)), "test": int(len(y_test))}},
        "metrics": metrics,
    }
    folder = out_root / recipe.name / recipe.version
    modelcard.write_version(folder, onnx_bytes, metadata, modelcard.render_card(
        metadata, recipe.description, ds.source, recipe.intended_use, recipe.limits))
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR,
                        help="root folder for <name>/<version>/ (default: models/)")
    parser.add_argument("--imaging", action="store_true",
                        help="also write the untrained imaging CNN into the model cache")
    args = parser.parse_args(argv)
    for recipe in RECIPES:
        # one BLAS thread: multithreaded sums may round differently from run to run
        with threadpool_limits(1):
            m = train(recipe, args.out)["metrics"]
        print(f"{recipe.name}:{recipe.version}  accuracy {m['accuracy']:.4f}  "
              f"sensitivity {m['sensitivity']:.4f}  specificity {m['specificity']:.4f}  "
              f"AUROC {m['auroc']:.4f}")
    if args.imaging:
        print("imaging CNN (untrained) ->", imaging_cnn.ensure())
    return 0


if __name__ == "__main__":
    sys.exit(main())
