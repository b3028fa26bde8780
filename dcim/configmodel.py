"""The base of the config and data-file models: unknown keys are errors, loaded values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A model that refuses keys it does not know (a typo is an error, not a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
