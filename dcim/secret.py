"""Secrets in config: given inline, or read from an environment variable or a file.

The resolved value is a pydantic SecretStr, so it never shows in repr, logs or
error messages; the reference (variable name, file path) is safe to print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, SecretStr, model_validator

from dcim.configmodel import Strict


class SecretRef(Strict):
    """`{env: NAME}` or `{file: PATH}`; exactly one of them."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            msg = "give exactly one of env or file"
            raise ValueError(msg)
        return self

    def resolve(self) -> SecretStr:
        """Read the secret now; ValueError names the variable or file, never the value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                msg = f"environment variable {self.env} is not set"
                raise ValueError(msg)
            return SecretStr(value)
        assert self.file is not None
        try:
            text = self.file.read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read secret file {self.file}: {exc.strerror}"
            raise ValueError(msg) from None
        return SecretStr(text.strip())


def resolve_secret(value: SecretStr | SecretRef | str | None) -> SecretStr | None:
    """Turn any config form of a secret into a SecretStr (or None when absent)."""
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, SecretRef):
        return value.resolve()
    return SecretStr(value)


def _resolve_ref(value: object) -> object:
    if isinstance(value, dict):
        return SecretRef.model_validate(value).resolve()
    return value


#: A config field holding a secret: inline string, `{env: VAR}` or `{file: PATH}`;
#: a SecretStr once loaded, so it is never printed.
Secret = Annotated[SecretStr, BeforeValidator(_resolve_ref)]
