"""Rasa 3.6 without work it repeats on every message: applied in the Rasa process before it starts.

Measured with py-spy on a Rasa worker under the dialogue load (20 conversations, README "Dialogue load
benchmark"): 62 % of its CPU went to checking the action server's reply against a JSON schema, and almost
all of that to checking the *schema itself* against the JSON Schema meta-schema, which
``jsonschema.validate`` does again on every call. The reply is still checked, against the same schema,
by a validator built once.
"""

from __future__ import annotations

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
