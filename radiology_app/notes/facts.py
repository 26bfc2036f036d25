"""Clinical facts read from a free-text note (English or Chinese), each with the span it came from.

:func:`extract_facts` returns *exactly* the fact names of the command-line contract (``FACT_NAMES``);
a fact the note does not state has ``value=None``. Yes/no facts are ``True`` (present), ``False``
(explicitly absent or denied) or ``None`` (not mentioned, or mentioned only with uncertainty:
"possible weight loss", "?TB", "发热？"). Pure Python, no model and no I/O.

Value conventions (the labelled corpus in ``tests/data/notes`` follows them):

* ``age``: whole years of the patient (not of a relative); ``sex``: ``"F"`` or ``"M"``.
* ``smoking_status``: ``never`` / ``former`` / ``current`` / ``unknown`` (``unknown`` only when the
  note says the history is unknown or cannot be obtained).
* ``pack_years``: stated ("30 pack-years", "20包年") or computed from packs (or cigarettes / 20)
  per day times years ("1 ppd x 30 yrs", "吸烟30年每天1包", "吸烟指数800年支" = 40); a bound such as
  "less than 2 pack-years" is not a value. Stated pack-years win over computed ones.
* ``years_since_quit``: from relative phrases ("quit 10 years ago", "6 months ago" = 0.5, "stopped at
  age 27" with the patient's age, "已戒烟5年"); a calendar year ("quit in 2009") is not converted,
  because the note's date is not known here.
* ``family_history_lung_cancer``: a blood relative with lung cancer; ``False`` when the note denies a
  family history of lung cancer or of any cancer ("FH: nil relevant", "否认家族肿瘤病史"). A denied
  hereditary-disease history alone ("否认家族遗传病史") says nothing about cancer and stays ``None``.
* ``personal_cancer_history`` and ``cancer_site``: any cancer of the patient, current or past (lung
  included; the screening programme's name "lung cancer screening" is not a cancer); the site is one
  of :data:`radiology_app.notes.english.CANCER_SITES` values (several joined by ``","``).
* Symptoms (``fever``, ``cough``, ``hemoptysis``, ``weight_loss``) describe the present episode;
  coughing up blood is hemoptysis, not a separate cough mention.
* ``immunosuppressed``: immunosuppressive drugs, transplant, HIV, current chemotherapy, neutropenia.
* ``tb_or_fungal_exposure``: TB disease, latent TB, a TB contact (household members included), or
  endemic-fungus exposure (histoplasmosis, coccidioidomycosis / valley fever, caves, bird or bat
  droppings).
* ``emphysema_or_copd``: COPD or emphysema (clinical or on CT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from radiology_app.notes._engine import CURRENT, PATIENT, Mention, Status

__all__ = ["FACT_NAMES", "ExtractedFacts", "Fact", "FactValue", "detect_language", "extract_facts"]

#: The fact names of the command-line contract, in contract order.
FACT_NAMES: tuple[str, ...] = (
    "age",
    "sex",
    "smoking_status",
    "pack_years",
    "years_since_quit",
    "family_history_lung_cancer",
    "personal_cancer_history",
    "cancer_site",
    "fever",
    "cough",
    "hemoptysis",
    "weight_loss",
    "immunosuppressed",
    "tb_or_fungal_exposure",
    "emphysema_or_copd",
)

FactValue = bool | int | float | str | None

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_RUN = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Fact:
    """One extracted fact.

    Attributes
    ----------
    value
        The value (``None`` when the note does not say).
    span
        ``(start, end)`` character offsets of the text it came from, or ``None``.
    text
        ``note[start:end]``, or ``None``.
    experiencer, certainty, temporality
        The context of the phrase it came from (ConText, see :mod:`radiology_app.notes._engine`):
        ``patient``/``family``/``other``; ``affirmed``/``negated``/``possible``/``hypothetical``;
        ``current``/``historical``. ``None`` when the note does not speak of the fact.
    """

    value: FactValue = None
    span: tuple[int, int] | None = None
    text: str | None = None
    experiencer: str | None = None
    certainty: str | None = None
    temporality: str | None = None


@dataclass(frozen=True)
class ExtractedFacts:
    """The facts of one note.

    Attributes
    ----------
    language
        ``"en"`` or ``"zh"``.
    facts
        One :class:`Fact` per name in :data:`FACT_NAMES`, always all of them.
    """

    language: str
    facts: dict[str, Fact] = field(default_factory=dict)

    def value(self, name: str) -> FactValue:
        """The value of fact ``name`` (``None`` when not stated).

        Raises
        ------
        KeyError
            If ``name`` is not one of :data:`FACT_NAMES`.
        """
        return self.facts[name].value

    def values(self) -> dict[str, FactValue]:
        """All values by fact name."""
        return {name: self.facts[name].value for name in FACT_NAMES}

    def to_json(self) -> dict[str, Any]:
        """The command-line contract's shape: ``{language, facts: {name: {value, span, text}}}``."""
        return {
            "language": self.language,
            "facts": {
                name: {
                    "value": fact.value,
                    "span": None if fact.span is None else [fact.span[0], fact.span[1]],
                    "text": fact.text,
                    "experiencer": fact.experiencer,
                    "certainty": fact.certainty,
                    "temporality": fact.temporality,
                }
                for name, fact in ((n, self.facts[n]) for n in FACT_NAMES)
            },
        }


def detect_language(text: str) -> str:
    """``"zh"`` when Chinese characters make up at least a fifth of the letters, else ``"en"``."""
    cjk = sum(map(len, _CJK_RUN.findall(text)))  # counted by runs: far fewer strings than characters
    latin = sum(map(len, _LATIN_RUN.findall(text)))
    return "zh" if cjk and cjk * 5 >= cjk + latin else "en"


def extract_facts(text: str, language: str | None = None) -> ExtractedFacts:
    """Read the clinical facts of a note.

    Parameters
    ----------
    text
        The note as written (any line endings).
    language
        ``"en"`` or ``"zh"``; detected from the characters when ``None``.

    Returns
    -------
    ExtractedFacts
        Every fact of :data:`FACT_NAMES`, with value, span and text.

    Raises
    ------
    ValueError
        If ``language`` is given and is neither ``"en"`` nor ``"zh"``.
    """
    lang = detect_language(text) if language is None else language
    if lang == "en":
        from radiology_app.notes.english import extract as extract_en

        found = extract_en(text)
    elif lang == "zh":
        from radiology_app.notes.chinese import extract as extract_zh

        found = extract_zh(text)
    else:
        raise ValueError(f"unsupported note language {language!r}; use 'en' or 'zh'")
    facts = {name: found.get(name, Fact()) for name in FACT_NAMES}
    return ExtractedFacts(lang, facts)


def make_fact(
    text: str,
    value: FactValue,
    start: int | None,
    end: int | None,
    *,
    mention: Mention | None = None,
    context: Fact | None = None,
) -> Fact:
    """A :class:`Fact` with its span, text and context, or without span when ``start`` is ``None``.

    The context comes from ``mention`` (the phrase the value was read from), or is copied from
    ``context``; otherwise a stated value is taken as affirmed (denied for ``False``) and current, of
    the patient.
    """
    ctx: tuple[str | None, str | None, str | None]
    if mention is not None:
        ctx = (mention.experiencer, mention.status.value, mention.temporality)
    elif context is not None:
        ctx = (context.experiencer, context.certainty, context.temporality)
    elif value is not None:
        ctx = (PATIENT, (Status.NEGATED if value is False else Status.AFFIRMED).value, CURRENT)
    else:
        ctx = (None, None, None)
    if start is None or end is None:
        return Fact(value, None, None, *ctx)
    return Fact(value, (start, end), text[start:end], *ctx)
