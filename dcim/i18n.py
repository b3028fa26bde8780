"""Message catalogs for user-facing text (the board; notifications can use the same).

The catalogs are gettext `.po` files under `dcim/locale/<lang>/LC_MESSAGES/dcim.po`,
compiled in memory with Babel when first needed, so the package ships no build
artefact that could fall behind its source. English is the source language (no
catalog needed); `translations("vi")` gives Vietnamese. `pick_language` chooses
from what the user asked, then the browser's Accept-Language, then a default.

Update the catalogs with `make i18n` (pybabel extract + update), then translate.
"""

from __future__ import annotations

import gettext
import io
import logging
from collections.abc import Sequence
from functools import cache
from importlib import resources

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DOMAIN = "dcim"
SOURCE_LANGUAGE = "en"
#: Languages with a catalog, plus the source language.
LANGUAGES: tuple[str, ...] = ("en", "vi")


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of `language` (the source language, or an unknown one: pass-through)."""
    if language == SOURCE_LANGUAGE or language not in LANGUAGES:
        return gettext.NullTranslations()
    path = resources.files("dcim").joinpath(f"locale/{language}/LC_MESSAGES/{DOMAIN}.po")
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most wanted first (q=0 dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def pick_language(
    wanted: Sequence[str | None], accept_language: str, default: str = SOURCE_LANGUAGE
) -> str:
    """The first of `wanted` we have, else the browser's best match, else `default`."""
    for language in wanted:
        if language in LANGUAGES:
            return language
    for tag in parse_accept_language(accept_language):
        try:
            locale = Locale.parse(tag.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language in LANGUAGES:
            return locale.language
    return default
