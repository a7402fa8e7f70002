"""Whether the Rasa server may leave TensorFlow out (bot/channels/tuning.py: standard library only), and
how its stand-ins behave. Fake model archives here; the real trained model in tests/dialogue/test_rasa_tuning.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bot.channels.tuning import TENSORFLOW_FREE_COMPONENTS, components_needing_tensorflow
from tests.conftest import REPO

pytestmark = pytest.mark.unit

OURS = [
    "rasa.nlu.tokenizers.jieba_tokenizer.JiebaTokenizer",
    "rasa.nlu.classifiers.logistic_regression_classifier.LogisticRegressionClassifier",
    "rasa.core.policies.rule_policy.RulePolicy",
]


def fake_model(path: Path, uses: list[str], *, member: str = "/metadata.json", metadata: object = None) -> Path:
    """A gzipped tar shaped like a Rasa 3.6 model archive, holding only its metadata."""
    if metadata is None:
        nodes = {f"run_{k}": {"uses": name, "fn": "process"} for k, name in enumerate(uses)}
        metadata = {"predict_schema": {"nodes": nodes}, "train_schema": {"nodes": {}}}
    data = json.dumps(metadata).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_a_model_of_tensorflow_free_components_needs_none(tmp_path):
    assert set(OURS) <= TENSORFLOW_FREE_COMPONENTS
    assert components_needing_tensorflow(fake_model(tmp_path / "m.tar.gz", OURS)) == []


def test_a_tensorflow_component_or_an_unknown_one_keeps_tensorflow(tmp_path):
    uses = [*OURS, "rasa.nlu.classifiers.diet_classifier.DIETClassifier", "rasa.core.policies.ted_policy.TEDPolicy"]
    uses.append("custom.components.MyClassifier")  # not known to be free of TensorFlow: kept, to be safe
    assert components_needing_tensorflow(fake_model(tmp_path / "m.tar.gz", uses)) == [
        "custom.components.MyClassifier",
        "rasa.core.policies.ted_policy.TEDPolicy",
        "rasa.nlu.classifiers.diet_classifier.DIETClassifier",
    ]


def test_what_is_not_a_rasa_model_is_refused_with_the_reason(tmp_path):
    text = tmp_path / "notes.tar.gz"
    text.write_text("不是模型", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable Rasa model"):
        components_needing_tensorflow(text)
    with pytest.raises(ValueError, match=r"no metadata\.json"):
        components_needing_tensorflow(fake_model(tmp_path / "a.tar.gz", OURS, member="other.json"))
    with pytest.raises(ValueError, match="not a readable Rasa model"):
        components_needing_tensorflow(fake_model(tmp_path / "b.tar.gz", [], metadata={"train_schema": {}}))
    with pytest.raises(ValueError, match="not a readable Rasa model"):
        components_needing_tensorflow(tmp_path / "missing.tar.gz")


# Run in a fresh interpreter: the stand-ins replace TensorFlow for the whole process.
STAND_INS = """
import json, sys
from bot.channels.tuning import TensorFlowLeftOut, leave_out_tensorflow

leave_out_tensorflow()
import tensorflow as tf
from tensorflow.keras.utils import Sequence
from keras.utils.control_flow_util import smart_cond

class Batches(Sequence):  # as rasa.utils.tensorflow.data_generator does at import
    pass

def calls(thing):
    try:
        thing()
    except TensorFlowLeftOut as error:
        return str(error)
    return "called"

try:
    leave_out_tensorflow()
    again = "allowed"
except RuntimeError:
    again = "refused"
print(json.dumps({
    "same": tf.Tensor is tf.Tensor and tf.keras.layers.Layer is tf.keras.layers.Layer,
    "isinstance": isinstance(1.0, tf.Tensor),
    "subclass": issubclass(Batches, Sequence),
    "constant": calls(lambda: tf.constant(1)),
    "batches": calls(Batches),
    "smart_cond": calls(smart_cond),
    "again": again,
}, ensure_ascii=False))
"""


def test_stand_ins_import_subclass_and_compare_but_refuse_any_use():
    done = subprocess.run(
        [sys.executable, "-c", STAND_INS], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["same"] is True and result["isinstance"] is False and result["subclass"] is True
    for used in ("constant", "batches", "smart_cond"):
        assert "needs TensorFlow" in result[used], used
    assert "tensorflow.constant needs TensorFlow" in result["constant"]
    assert result["again"] == "refused"


# The start-up choice scripts/bot.sh makes, each in a fresh interpreter (it changes the import system).
CHOICE = """
import json, sys
from bot.channels.tuning import leave_out_what_the_model_does_not_use
said = leave_out_what_the_model_does_not_use(sys.argv[1])
print(json.dumps({"said": said, "jax": "jax" in sys.modules and sys.modules["jax"] is None,
                  "stand_ins": any(type(f).__name__ == "_StandInFinder" for f in sys.meta_path)}))
"""


def test_start_up_leaves_out_tensorflow_only_for_a_model_that_needs_none(tmp_path):
    free = fake_model(tmp_path / "free.tar.gz", OURS)
    diet = fake_model(tmp_path / "diet.tar.gz", [*OURS, "rasa.nlu.classifiers.diet_classifier.DIETClassifier"])
    outcomes = []
    for model in (free, diet):
        done = subprocess.run(
            [sys.executable, "-c", CHOICE, str(model)], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outcomes.append(json.loads(done.stdout))
    assert outcomes[0] == {"said": "TensorFlow not loaded: no component of the model needs it", "jax": False,
                           "stand_ins": True}  # fmt: skip
    assert outcomes[1] == {"said": "TensorFlow loaded: the model uses DIETClassifier", "jax": True,
                           "stand_ins": False}  # fmt: skip
