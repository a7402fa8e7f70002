"""Rasa 3.6 without work and memory it spends for nothing: applied in the Rasa process before it starts.

Measured with py-spy on a Rasa worker under the dialogue load (20 conversations, README "Dialogue load
benchmark"): 62 % of its CPU went to checking the action server's reply against a JSON schema, and almost
all of that to checking the *schema itself* against the JSON Schema meta-schema, which
``jsonschema.validate`` does again on every call. The reply is still checked, against the same schema,
by a validator built once.

Measured with psutil: TensorFlow was 280-410 MB of the Rasa server's 575-714 MB resident, imported by
Rasa's own modules (the policy base class, through its featurizers and ``rasa.utils.train_utils``) although
no component of our model uses it. Where the model needs none, TensorFlow is not loaded at all.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
import tarfile
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def check_action_replies_with_one_validator() -> None:
    """Make Rasa's remote action check each action-server reply with a validator built once.

    Same schema, same error (the most relevant one, as ``jsonschema.validate`` picks it, with Rasa's own
    hint appended), same refusal of a malformed reply; only the per-call check of the constant schema goes.
    """
    from jsonschema import validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    hint = (
        ". Failed to validate Action server response from API, make sure your response from the Action "
        f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )

    def validate(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is not None:
            error.message += hint
            raise error
        return True

    RemoteAction._validate_action_result = validate  # type: ignore[method-assign]


def find_event_classes_in_one_table() -> None:
    """Make Rasa find an event's class by its type name in a table instead of walking every subclass.

    Rasa rebuilds the tracker from its stored events on every message, and for each event
    ``Event.resolve_by_type`` walks all subclasses of ``Event`` (checking each for abstractness): 14 % of a
    loaded Rasa worker's CPU in a py-spy profile (capacity run, Redis tracker store), growing with the length
    of the conversation. The table holds what that walk finds, the first class of each type name in the
    same order; a name it lacks (an event class defined after the table was built) is looked up by Rasa's
    own walk, so the answers are Rasa's.
    """
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    walk = Event.resolve_by_type
    table: dict[str, Any] = {}
    for cls in all_subclasses(Event):
        table.setdefault(cls.type_name, cls)

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        found = table.get(type_name)
        return found if found is not None else walk(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign, assignment]


def leave_out_jax() -> None:
    """Keep TensorFlow from loading JAX into the Rasa server: about 100 MB less resident memory.

    TensorFlow 2.12 (Rasa's) imports JAX only for TFLite's converter and goes on without it when the import
    fails; nothing Rasa serves with our pipeline (no TensorFlow component) uses it. Must run before anything
    imports TensorFlow.
    """
    import sys

    if "tensorflow" in sys.modules:
        raise RuntimeError("leave_out_jax() must run before TensorFlow is imported")
    sys.modules["jax"] = None  # type: ignore[assignment]  # `import jax` then raises ImportError


# Components of a trained model (its metadata's "uses") that serve without calling TensorFlow: those of
# bot/config.yml, the graph parts Rasa adds around them, and a few common TensorFlow-free alternatives.
# Anything else (DIETClassifier, TEDPolicy, ResponseSelector, LanguageModelFeaturizer...) keeps TensorFlow.
TENSORFLOW_FREE_COMPONENTS = frozenset(
    {
        "rasa.core.policies.ensemble.DefaultPolicyPredictionEnsemble",
        "rasa.core.policies.memoization.MemoizationPolicy",
        "rasa.core.policies.memoization.AugmentedMemoizationPolicy",
        "rasa.core.policies.rule_policy.RulePolicy",
        "rasa.graph_components.converters.nlu_message_converter.NLUMessageConverter",
        "rasa.graph_components.providers.domain_provider.DomainProvider",
        "rasa.graph_components.providers.rule_only_provider.RuleOnlyDataProvider",
        "rasa.nlu.classifiers.fallback_classifier.FallbackClassifier",
        "rasa.nlu.classifiers.keyword_intent_classifier.KeywordIntentClassifier",
        "rasa.nlu.classifiers.logistic_regression_classifier.LogisticRegressionClassifier",
        "rasa.nlu.classifiers.regex_message_handler.RegexMessageHandler",
        "rasa.nlu.classifiers.sklearn_intent_classifier.SklearnIntentClassifier",
        "rasa.nlu.extractors.crf_entity_extractor.CRFEntityExtractor",
        "rasa.nlu.extractors.entity_synonyms.EntitySynonymMapper",
        "rasa.nlu.extractors.regex_entity_extractor.RegexEntityExtractor",
        "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer.CountVectorsFeaturizer",
        "rasa.nlu.featurizers.sparse_featurizer.lexical_syntactic_featurizer.LexicalSyntacticFeaturizer",
        "rasa.nlu.featurizers.sparse_featurizer.regex_featurizer.RegexFeaturizer",
        "rasa.nlu.tokenizers.jieba_tokenizer.JiebaTokenizer",
        "rasa.nlu.tokenizers.whitespace_tokenizer.WhitespaceTokenizer",
    }
)

# The packages a Rasa server without TensorFlow gets stand-ins for (Rasa imports both by name).
_LEFT_OUT_PACKAGES = ("tensorflow", "keras")


def components_needing_tensorflow(model: str | Path) -> list[str]:
    """The components the trained Rasa model serves with that may need TensorFlow (empty: none does).

    Read from the model archive's ``metadata.json`` (its prediction graph), so a model trained with another
    pipeline than today's bot/config.yml is judged by what it holds.

    Raises:
        ValueError: the file is not a Rasa model archive.
    """
    try:
        with tarfile.open(model, "r:gz") as archive:
            member = next((m for m in archive.getmembers() if m.name.lstrip("/") == "metadata.json"), None)
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                raise ValueError(f"{model} holds no metadata.json: not a Rasa model")
            metadata = json.load(handle)
        nodes = metadata["predict_schema"]["nodes"].values()
        used = sorted({node["uses"] for node in nodes})
    except (OSError, tarfile.TarError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{model} is not a readable Rasa model: {error}") from error
    return [name for name in used if name not in TENSORFLOW_FREE_COMPONENTS]


class TensorFlowLeftOut(RuntimeError):
    """Something in a Rasa server started without TensorFlow tried to use it."""


class _AbsentName(type):
    """A TensorFlow or Keras name in a Rasa server that left them out.

    Rasa's modules use such names at import time as base classes (``tf.keras.layers.Layer``), in
    annotations (``tf.Tensor``) and in ``isinstance`` checks, which all work with a class; creating one
    (using TensorFlow) raises, so a component that needs TensorFlow fails loudly instead of half-working.
    """

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _absent(f"{cls.__qualname__}.{name}", cls.__module__, cls)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TensorFlowLeftOut(
            f"{cls.__qualname__} needs TensorFlow, which this Rasa server did not load because no component of "
            "its model needed it; a model with a TensorFlow component (DIETClassifier, TEDPolicy...) loads it"
        )


def _absent(qualname: str, module: str, owner: Any) -> _AbsentName:
    """A new absent name, kept on its owner so that every later lookup gets the same class."""
    name = qualname.rsplit(".", 1)[-1]
    value = _AbsentName(name, (), {"__module__": module, "__qualname__": qualname})
    setattr(owner, name, value)
    return value


class _StandInModule(types.ModuleType):
    """``tensorflow``, ``keras`` and their submodules in a Rasa server that left them out."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _absent(f"{self.__name__}.{name}", self.__name__, self)


class _StandInLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandInModule(spec.name)
        module.__path__ = []  # a package, so that `from tensorflow.keras.utils import Sequence` finds its parts
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _StandInFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] not in _LEFT_OUT_PACKAGES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _StandInLoader(), is_package=True)


def leave_out_tensorflow() -> None:
    """Serve Rasa without loading TensorFlow (280-410 MB less resident memory).

    ``tensorflow`` and ``keras`` are imported as stand-ins whose names can be subclassed, annotated with
    and checked against, but not used. Only for a model of which :func:`components_needing_tensorflow`
    finds nothing; must run before anything imports TensorFlow.
    """
    if any(name in sys.modules for name in _LEFT_OUT_PACKAGES):
        raise RuntimeError("leave_out_tensorflow() must run before TensorFlow is imported")
    if not any(isinstance(finder, _StandInFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _StandInFinder())


def leave_out_what_the_model_does_not_use(model: str | Path) -> str:
    """Leave TensorFlow out when no component of ``model`` needs it, else only JAX; says which, for the log.

    Must run before anything imports TensorFlow.
    """
    needing = components_needing_tensorflow(model)
    if needing:
        leave_out_jax()
        return "TensorFlow loaded: the model uses " + ", ".join(name.rsplit(".", 1)[-1] for name in needing)
    leave_out_tensorflow()
    return "TensorFlow not loaded: no component of the model needs it"
