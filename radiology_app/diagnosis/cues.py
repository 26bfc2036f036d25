"""Bilingual (English/Chinese), negation-aware clinical cues read from a free-text note.

The default text backbone (all-MiniLM-L6-v2) has an English WordPiece vocabulary that maps most Chinese
characters to ``[UNK]``, so the text branch of the fused model also receives this small cue vector. It is
computed by a fixed lexicon (no learning) and doubles as the note-informativeness quality signal and as a
source of evidence spans. Phrasings outside the lexicon are left to the backbone (and to site adaptation).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Names of the entries of the cue vector, in order.
CUE_NAMES: tuple[str, ...] = (
    "age",  # age in years / 100, 0 when absent
    "age_known",
    "female",
    "male",
    "smoker_current",
    "smoker_former",
    "smoker_never",
    "pack_years",  # pack-years / 100
    "prior_cancer",
    "fever",
    "cough",
    "hemoptysis",
    "weight_loss",
    "immunosuppressed",
    "tb_or_fungal_exposure",
    "family_history",
    "course_new",
    "course_stable",
    "course_growing",
    "course_resolving",
    "asymptomatic",
    "recurrent_infection",
    "central_location",
    "peripheral_location",
    "neuroendocrine_paraneoplastic",  # SIADH / hyponatraemia, ectopic Cushing, Lambert-Eaton
    "hypercalcaemia",
    "mediastinal_lymphadenopathy",
    "course_rapid",  # doubling within weeks
)
N_CUES = len(CUE_NAMES)

# Yes/no cues: name -> regular expressions (English, Chinese). Matching is case-insensitive.
_YES_NO: dict[str, tuple[str, ...]] = {
    "prior_cancer": (
        r"(?<!family )(history of|hx of|known|treated|prior|previous|resected|metastatic)\s+[\w\s-]{0,30}?"
        r"(cancer|carcinoma|melanoma|sarcoma|malignan\w*|tumou?r)",
        r"(breast|colon|colorectal|renal|kidney|thyroid|prostate|head and neck)\s+(cancer|carcinoma)",
        r"(melanoma|osteosarcoma)",
        r"(cancer|malignancy) history",
        r"(乳腺癌|结肠癌|直肠癌|肾癌|甲状腺癌|黑色素瘤|骨肉瘤|前列腺癌|恶性肿瘤|鼻咽癌|癌症)",
    ),
    "fever": (r"fever\w*|febrile|temperature (of )?3[89]", r"发热|发烧|高热"),
    "cough": (r"cough\w*", r"咳嗽"),
    "hemoptysis": (r"h(a)?emoptysis|coughing up blood|blood[- ]streaked sputum", r"咯血|痰中带血"),
    "weight_loss": (r"weight loss|lost \d+ ?kg|losing weight", r"体重下降|消瘦|体重减轻"),
    "immunosuppressed": (
        r"immunosuppress\w*|immunocompromised|transplant|chemotherapy|\bhiv\b|on steroids|neutropeni\w*",
        r"免疫抑制|器官移植|化疗|艾滋|激素治疗",
    ),
    "tb_or_fungal_exposure": (
        r"tuberculosis|\btb\b|histoplasm\w*|coccidioid\w*|fungal|endemic|caving|grain farm\w*|ohio river",
        r"结核|真菌|疫区|洞穴",
    ),
    "family_history": (
        r"family history of lung cancer|(father|mother|brother|sister) (had|with) lung cancer",
        r"家族史|(父亲|母亲|兄弟|姐妹)(患)?肺癌",
    ),
    "asymptomatic": (r"asymptomatic|incidental\w*|no symptoms|routine|screening", r"无症状|体检|偶然发现"),
    "recurrent_infection": (
        r"recurrent (pneumonia|infection|chest infection)s?|same lobe",
        r"反复(肺炎|感染)|同一肺叶",
    ),
    "central_location": (r"\b(central|hilar|perihilar|endobronchial)\b", r"中央型|肺门区|肺门旁"),
    "peripheral_location": (r"\b(peripheral|subpleural)\b", r"周围型|外周型"),
    "neuroendocrine_paraneoplastic": (
        r"siadh|hyponat\w*|low sodium|cushing\w*|\bacth\b|lambert[- ]eaton",
        r"低钠血症|抗利尿激素|库欣|Lambert-Eaton",
    ),
    "hypercalcaemia": (r"hypercalc\w*|raised calcium|high calcium", r"高钙血症|血钙升高"),
    "mediastinal_lymphadenopathy": (
        r"lymphadenopathy|(enlarged|bulky) (mediastinal |hilar )?(lymph )?nodes",
        r"淋巴结肿大|肿大淋巴结",
    ),
}

# Course of the nodule (no negation handling: the phrases carry their own meaning).
_COURSE: dict[str, tuple[str, ...]] = {
    "course_new": (
        r"new (since|on|compared)|newly (appeared|developed)|appeared (within|over|in) (the )?(last )?\d+",
        r"not (seen|present) on (the )?(prior|previous)",
        r"新出现|新发|近期出现",
    ),
    "course_stable": (
        r"stable (for|over|since)|unchanged (for|over|since)|no change (for|over|in)",
        r"稳定|无变化|未见变化",
    ),
    "course_growing": (r"(slowly |slow )?(growing|enlarg\w*|increased in size|grown)", r"增大|生长|长大"),
    "course_rapid": (
        r"rapid(ly)? (enlarg\w*|grow\w*|increas\w*)|doubled in size|doubling time of \d+ (days|weeks)",
        r"迅速增大|快速增大",
    ),
    "course_resolving": (
        r"(shrank|decreased|resolv\w*|smaller) (after|with|following)|partial resolution",
        r"缩小|吸收|好转",
    ),
}

_NEGATION = re.compile(
    r"\b(no|not|denies|denied|deny|without|negative for|free of|never had|none)\b|否认|无|没有|未|不伴",
    re.IGNORECASE,
)
_CLAUSE_SPLIT = re.compile(r"[.;:\n。；，,!?！？]")

_AGE = (
    re.compile(r"(\d{2})[- ]?(?:year[- ]old|yo\b|y/o|yrs?\b|years? of age)", re.IGNORECASE),
    re.compile(r"\bage[d:]?\s*(\d{2})\b", re.IGNORECASE),
    re.compile(r"(\d{2})\s*岁"),
)
_FEMALE = re.compile(r"\b(female|woman|lady|she|her|mrs|ms)\b|女", re.IGNORECASE)
_MALE = re.compile(r"\b(male|man|gentleman|he|his|mr)\b|男", re.IGNORECASE)
_PACK_YEARS = re.compile(r"(\d{1,3})\s*(?:pack[- ]?years?|py\b|pk-?yrs?|包年)", re.IGNORECASE)
_SMOKE_NEVER = re.compile(
    r"never[- ]smok\w*|non-?smoker|never smoked|lifelong non|不吸烟|从不吸烟|否认吸烟", re.IGNORECASE
)
_SMOKE_FORMER = re.compile(
    r"former smoker|ex-?smoker|quit (smoking )?\d+|stopped smoking|戒烟", re.IGNORECASE
)
_SMOKE_CURRENT = re.compile(
    r"current(ly)? smok\w*|active smoker|smokes \d+|still smok\w*|吸烟|抽烟", re.IGNORECASE
)


@dataclass(frozen=True)
class CueHit:
    """One lexicon match.

    Attributes
    ----------
    name
        Cue name (one of :data:`CUE_NAMES`).
    value
        +1 present, -1 explicitly denied (numeric cues: the scaled value).
    span
        ``(start, end)`` character offsets of the matched phrase in the note.
    """

    name: str
    value: float
    span: tuple[int, int]


@dataclass(frozen=True)
class NoteCues:
    """The cue vector of a note and the matches behind it."""

    vector: npt.NDArray[np.float32]
    hits: tuple[CueHit, ...]

    @property
    def informativeness(self) -> float:
        """Fraction of clinically discriminating cues the note states, in [0, 1]."""
        named = {h.name for h in self.hits if h.name not in {"age", "female", "male"}}
        return min(1.0, len(named) / 6.0)


def _clause_bounds(text: str, pos: int) -> tuple[int, int]:
    start = 0
    for m in _CLAUSE_SPLIT.finditer(text, 0, pos):
        start = m.end()
    m2 = _CLAUSE_SPLIT.search(text, pos)
    end = m2.start() if m2 else len(text)
    return start, end


def _negated(text: str, match_start: int) -> bool:
    start, _ = _clause_bounds(text, match_start)
    return _NEGATION.search(text[start:match_start]) is not None


def extract_cues(text: str) -> NoteCues:
    """Read the cue vector of a note.

    Parameters
    ----------
    text
        Free-text clinical note, English and/or Chinese; may be empty.

    Returns
    -------
    NoteCues
        ``vector`` of length :data:`N_CUES` (float32) and the matched spans.
    """
    vec = np.zeros(N_CUES, dtype=np.float32)
    hits: list[CueHit] = []
    idx = {n: i for i, n in enumerate(CUE_NAMES)}
    if not text.strip():
        return NoteCues(vec, ())

    for pat in _AGE:
        m = pat.search(text)
        if m:
            age = float(m.group(1))
            vec[idx["age"]] = age / 100.0
            vec[idx["age_known"]] = 1.0
            hits.append(CueHit("age", age / 100.0, m.span()))
            break
    mf, mm = _FEMALE.search(text), _MALE.search(text)
    if mf and (not mm or mf.start() <= mm.start()):
        vec[idx["female"]] = 1.0
        hits.append(CueHit("female", 1.0, mf.span()))
    elif mm:
        vec[idx["male"]] = 1.0
        hits.append(CueHit("male", 1.0, mm.span()))

    m = _PACK_YEARS.search(text)
    if m:
        vec[idx["pack_years"]] = min(float(m.group(1)), 150.0) / 100.0
        hits.append(CueHit("pack_years", vec[idx["pack_years"]], m.span()))
    for name, pat in (
        ("smoker_never", _SMOKE_NEVER),
        ("smoker_former", _SMOKE_FORMER),
        ("smoker_current", _SMOKE_CURRENT),
    ):
        m = pat.search(text)
        if m:
            vec[idx[name]] = 1.0
            hits.append(CueHit(name, 1.0, m.span()))
            break

    for name, pats in _YES_NO.items():
        for p in pats:
            found = None
            for m in re.finditer(p, text, re.IGNORECASE):
                found = m
                if not _negated(text, m.start()):
                    break
            if found is not None:
                value = -1.0 if _negated(text, found.start()) else 1.0
                if name == "asymptomatic" and value < 0:
                    continue
                vec[idx[name]] = value
                hits.append(CueHit(name, value, found.span()))
                break

    for name, pats in _COURSE.items():
        for p in pats:
            m = re.search(p, text, re.IGNORECASE)
            if m and not (name == "course_growing" and _negated(text, m.start())):
                vec[idx[name]] = 1.0
                hits.append(CueHit(name, 1.0, m.span()))
                break
    return NoteCues(vec, tuple(hits))


#: Structured note facts (CLI-contract names) that replace lexicon cues when the caller has them.
_FACT_CUES: dict[str, str] = {
    "personal_cancer_history": "prior_cancer",
    "family_history_lung_cancer": "family_history",
    "fever": "fever",
    "cough": "cough",
    "hemoptysis": "hemoptysis",
    "weight_loss": "weight_loss",
    "immunosuppressed": "immunosuppressed",
    "tb_or_fungal_exposure": "tb_or_fungal_exposure",
}


def with_facts(vector: npt.NDArray[np.float32], facts: Mapping[str, object]) -> npt.NDArray[np.float32]:
    """The cue vector with its patient-fact entries taken from structured facts.

    ``facts`` maps CLI-contract fact names to values read *in context* (only what the note affirms or
    denies about the patient; a relative's or a suspected diagnosis is ``None``). Those facts replace the
    lexicon's reading, which cannot tell whose cancer a phrase names: ``True`` -> +1, ``False`` -> -1,
    ``None`` -> 0. Age (years), sex (``"F"``/``"M"``), smoking status and pack-years replace theirs when
    known.
    """
    out = np.array(vector, dtype=np.float32, copy=True)
    idx = {n: i for i, n in enumerate(CUE_NAMES)}
    for fact, cue in _FACT_CUES.items():
        if fact in facts:
            v = facts[fact]
            out[idx[cue]] = 1.0 if v is True else -1.0 if v is False else 0.0
    age = facts.get("age")
    if isinstance(age, (int, float)) and not isinstance(age, bool):
        out[idx["age"]], out[idx["age_known"]] = float(age) / 100.0, 1.0
    sex = facts.get("sex")
    if sex in ("F", "M"):
        out[idx["female"]], out[idx["male"]] = float(sex == "F"), float(sex == "M")
    status = facts.get("smoking_status")
    if status in ("never", "former", "current"):
        for s in ("never", "former", "current"):
            out[idx[f"smoker_{s}"]] = float(status == s)
    packs = facts.get("pack_years")
    if isinstance(packs, (int, float)) and not isinstance(packs, bool):
        out[idx["pack_years"]] = min(float(packs), 150.0) / 100.0
    return out
