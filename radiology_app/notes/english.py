"""Fact extraction from English clinical notes (regular expressions with NegEx-style scopes).

Handles referral letters, ED and clinic notes, checklists ("Fever: no", "COPD: Yes", "+ cough,
- hemoptysis"), abbreviations (yo, y/o, 67M, hx, h/o, FHx, ppd, PY, ca, s/p), common misspellings of
haemoptysis, negation ("denies", "no", "afebrile", "weight stable"), uncertainty ("possible", "?",
"pending") and statements about relatives (which never become the patient's own facts).

Case-insensitive patterns are :class:`~radiology_app.notes._engine.FoldedPattern` objects written in
lower case (they run on the case-folded note); :class:`~radiology_app.notes._engine.NotePattern` ones
are case-sensitive.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache, partial

from radiology_app.notes._engine import (
    FAMILY,
    HISTORICAL,
    CueSet,
    FoldedPattern,
    Mention,
    NotePattern,
    Pattern,
    SpanSet,
    Status,
    aggregate_bool,
    clause_bounds,
    covers,
    find_mentions,
    sentence_bounds,
    status_of,
    temporality_of,
)
from radiology_app.notes.facts import Fact, FactValue, make_fact

__all__ = ["CANCER_SITES", "CUES", "extract"]

_I = re.IGNORECASE

CUES = CueSet(
    sentence_break=re.compile(
        r"\n[ \t]*(?=\n|[-*•]|[A-Za-z][\w /&()]{0,30}:|\d+[.)]\s)|"
        # the full stop comes first and the abbreviations are checked behind it, so that ``re`` can skip
        # ahead to the next break character instead of trying every position of the note
        r"\.(?<!\bDr\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bvs\.)(?<!\bapprox\.)(?<!\bno\.)"
        r"(?<!\s[A-Za-z]\.)(?<!\by\.o\.)(?=\s|$)|[;!]"
    ),
    clause_break=FoldedPattern(
        r"\b(?:but|however|although|though|except|apart from|aside from|whereas|which|who|yet)\b|;"
    ),
    pre_negation=FoldedPattern(
        r"\b(?:no|not|denies|denied|deny|denying|without|w/o|negative for|neg for|free of|absence of|"
        r"nor|never|nobody|no one|none|nil|off|ruled out)\b|\bno\b"
    ),
    pseudo_negation=FoldedPattern(
        r"\b(?:no change|no increase|not only|no longer|not sure|not certain|no further|not clear|"
        r"on and off|off and on|never[- ]+(?:a\s+)?smok\w*|never\s+smoked|never\s+touched)\b"
    ),
    pre_uncertainty=FoldedPattern(
        r"\?|\b(?:possible|possibly|probable|probably|questionable|query|queried|suspected|suspect|"
        r"suspicious(?: for| of)?|suspicion (?:of|for)|concerning(?: for)?|concern for|worrying for|"
        r"worrisome for|c/f|suggestive of|may|might|could|cannot rule out|can't rule out|rule out|r/o|"
        r"unclear|uncertain|unsure|not sure|cannot exclude|versus|vs|"
        r"differential(?: diagnosis)?(?: includes?| of)?|ddx|d/?dx|to exclude|exclude|work-?up for|likely)\b"
    ),
    post_negation=FoldedPattern(
        r"\s*(?:[:\-–—]\s*)?(?:no|none|nil|neg|negative|denies|denied|absent|not present|not diagnosed|"
        r"n)\b(?!\s*(?:change|increase))|\s*\((?:-|neg|−)\)|"
        r"\s+(?:(?:test|was|is|were|screen)\s+)?(?:\([^()\n]{1,20}\)\s+)?(?:negative|neg|absent|not present|"
        r"ruled out)\b|\)\s+(?:negative|neg)\b|"
        r"[ \t]+(?:exposure|contact|history|hx|status|symptoms?)[ \t]*:[ \t]*"
        r"(?:no|none|nil|neg|negative|n)\b"
    ),
    post_uncertainty=FoldedPattern(
        r"\s*\?|\s+(?:\w+\s+)?(?:pending|unclear|not known|unknown)\b|\s*-\s*pt unsure|"
        r"\s+(?:is\s+|was\s+)?(?:suspected|possible|queried|likely|probable|considered)\b"
    ),
    post_affirmation=FoldedPattern(
        r"\s*(?::\s*)?(?:yes|\(\+\)|positive|present|y)\b|\s*\(\+\)|"
        r"[ \t]+(?:exposure|contact|history|hx|status|symptoms?)[ \t]*:[ \t]*(?:yes|y)\b"
    ),
    scope_breaker=FoldedPattern(
        r",\s*(?:and\s+|but\s+)?(?:he\s+|she\s+|pt\s+|patient\s+)?(?:reports?|reported|has|have|had|complains?|c/o|endorses?|admits?|presents?|notes?|"
        r"positive for|with|and (?:he|she|his|her|the patient|pt))\b"
    ),
    subject_verb=FoldedPattern(r"\s+(?:is|was|has been|remains|are|were)\b"),
    pre_hypothetical=FoldedPattern(
        r"(?:^|(?<=[.;:\n]))\s*should\b|"  # "Should the biopsy confirm cancer, ...": a condition
        r"\b(?:if|should (?:he|she|they|the patient|pt|there be)|in case of|in the event of|unless|"
        r"return (?:if|for|with)|watch for|look out for|safety[- ]net(?:ting)?(?: advice)?(?: for)?)\b"
    ),
    historical=FoldedPattern(
        r"\b(?:history of|hx of|h/o|pmhx?|past (?:medical )?history|previous(?:ly)?|prior|s/p|status post|"
        r"treated|resected|remote|in remission|years? ago|months? ago|(?:in|since) (?:19|20)\d\d|"
        r"had (?:a |an )?)\b"
    ),
    pseudo_cue=FoldedPattern(
        r"\b(?:(?:grateful|thankful|obliged|appreciate(?: it)?)\s+if\s+you\s+(?:could|would|can)|"
        r"if\s+you\s+(?:could|would|can)\s+(?:kindly\s+|please\s+)?(?:see|review|assess)|could you)\b"
    ),
    narrow_negation=FoldedPattern(
        r"\s+(?:currently\s+)?(?:on|taking|receiving|using|started|starting|yet)\b"
    ),
)

_RELATIVE = FoldedPattern(
    r"\b(?:mother|father|mum|mom|mam|dad|brother|sister|sibling|son|daughter|aunt|uncle|grand(?:mother|father|parent)|"
    r"cousin|parents?|wife|husband|spouse|partner|niece|nephew|twin|relatives?)s?\b"
)
#: Not a blood relative: their lung cancer is no family history (experiencer "other").
_SPOUSE = FoldedPattern(r"\b(?:wife|husband|spouse|partner)s?\b")
#: "she herself", "her own": the person just named as the informant, not the patient.
_REFLEXIVE_WORDS = r"\b(?:herself|himself|themselves|(?:her|his|their)\s+own)"
_REFLEXIVE = FoldedPattern(_REFLEXIVE_WORDS + r"\b")
#: Without the closing boundary: a reflexive found in any sentence starts one of these in the whole note.
_REFLEXIVE_START = FoldedPattern(_REFLEXIVE_WORDS)
_FAMILY_WORD = FoldedPattern(r"\b(?:family|fhx|fh|fam hx|family hx)\b")
_FAMILY_HEADER = FoldedPattern(r"^[ \t\-*•]*(?:fhx|fh|family (?:history|hx))\s*[:\-][^\n]*", re.MULTILINE)

# --- yes/no symptom and history triggers ---------------------------------------------------

_FEVER: list[Pattern] = [
    FoldedPattern(
        r"\b(?:fevers?|febrile|pyrexi(?:a|al)|feverish|high temperatures?|temperatures? to 3[89])\b"
    ),
    NotePattern(
        r"\b(?:temp(?:erature)?|T)\s*(?:of|to|now|max|was)?\s*(?:3[89](?:\.\d)?|4[01](?:\.\d)?)\s*(?:°?\s*C)?\b"
    ),
    NotePattern(r"\bF/C\b"),
]
_FEVER_NEG = [
    FoldedPattern(r"\b(?:afebrile|apyrexial|temperature (?:is )?normal|no temperature)\b"),
]
_FEVER_EXCLUDE = FoldedPattern(
    r"\b(?:valley|hay|scarlet|rheumatic|yellow|q|dengue|typhoid)\s+fever\b|\bfever clinic\b"
)
_COUGH = [
    FoldedPattern(r"\bproductive\s+(?:of\s+)?sputum\b|\bsputum\s+production\b"),
    FoldedPattern(r"\bcough(?:s|ing|ed)?\b(?!\s+up\b)(?!\s+(?:of\s+)?blood)"),
]
_HEMOPTYSIS = [
    FoldedPattern(r"\bh(?:ae|e|a|ea)mopt\w*"),
    FoldedPattern(r"\b(?:cough(?:s|ing|ed)?|brought|bringing|brings)\s+up\b(?:\s+\S+){0,4}?\s+blood\b"),
    FoldedPattern(r"\bblood[- ](?:streaked|stained|tinged|streaks?)\b|\bstreaky blood\b"),
    FoldedPattern(r"\bblood\s+in\s+(?:the\s+|his\s+|her\s+)?(?:sputum|phlegm)\b|\bbloody\s+sputum\b"),
]
_WEIGHT_LOSS = [
    FoldedPattern(r"\b(?:weight|wt)[-\s]+loss\b"),
    FoldedPattern(r"\blos(?:t|ing|es)\s+(?:\S+\s+){0,2}?(?:weight|wt)\b"),
    FoldedPattern(
        r"\blost\s+(?:(?:approximately|about|around|approx\.?|~)\s*)?\d+(?:\.\d+)?\s*"
        r"(?:kg|kgs|kilos?|kilograms?|lb|lbs|pounds|stone|st)\b"
    ),
    FoldedPattern(r"\blost\s+(?:about\s+)?(?:half\s+)?(?:a\s+)?stone\b"),
    FoldedPattern(r"\b(?:weight|wt)\s+drop\b"),
    FoldedPattern(r"\b(?:weight|wt)\s+(?:has\s+)?(?:dropped|fallen|decreased|gone down|down)\b"),
]
_HEMOPTYSIS_NEG = [
    FoldedPattern(r"(?<=cough)(?:s|ing|ed)?[^.;]{0,60}?\b(?:without|no)\s+(?:sputum|phlegm)\s+or\s+blood\b"),
    FoldedPattern(
        r"(?<=cough)(?:s|ing|ed)?[^.;]{0,60}?\bno\s+blood\b(?!\s+(?:pressure|test|transfusion|loss))"
    ),
]
_WEIGHT_NEG = [
    FoldedPattern(r"\bno\s+(?:significant\s+)?(?:weight|wt)\s+change\b"),
    FoldedPattern(
        r"\b(?:weight|wt)\s+(?:is\s+|has been\s+|remains\s+)?(?:stable|steady|unchanged|maintained)\b"
    ),
]
_IMMUNO = [
    FoldedPattern(
        r"\b(?:immuno-?suppress\w*|immuno-?compromis\w*|immuno-?deficien\w*|tacrolimus|cyclosporin\w*|"
        r"ciclosporin|mycophenolate|mmf|azathioprine|methotrexate|sirolimus|everolimus|infliximab|"
        r"adalimumab|etanercept|rituximab|tocilizumab|ibrutinib|biologics?|neutropeni\w*|aids|"
        r"chemotherapy|transplant(?:ed|ation)?)\b"
    ),
    FoldedPattern(r"\bhiv\b(?:\s*\+|\s*positive|\s+infection)?"),
    FoldedPattern(
        r"\b(?:receiving|undergoing|currently on|on|started)\s+(?:\w+\s+)?(?:chemo|folfox|folfiri|folfirinox|"
        r"carboplatin|cisplatin|docetaxel|paclitaxel|gemcitabine|pemetrexed|doxorubicin|cyclophosphamide|"
        r"capecitabine|oxaliplatin|irinotecan|etoposide|vinorelbine|5-?fu|fluorouracil|temozolomide)\b"
    ),
    FoldedPattern(r"\b(?:prednisone|prednisolone|steroids?|corticosteroids?|dexamethasone)\b"),
]
_IMMUNO_EXCLUDE = FoldedPattern(
    r"\b(?:completed|finished|prior|previous|adjuvant)\s+(?:\w+\s+)?chemotherapy\b|"
    r"\bchemotherapy\s+(?:in|completed|finished)\b|\binhaled\s+(?:cortico)?steroids?\b|"
    r"\b(?:previously|formerly|no longer)\s+(?:on|took|taking|received)\s+[\w-]+|"
    r"\b(?:awaiting|listed for|waiting for|assessment for|work-?up for|candidate for|referred for|"
    r"being assessed for)"
    r"\s+(?:(?:a|an|the|\w+)\s+){0,2}?transplant\w*|\btransplant\s+(?:assessment|work-?up|evaluation|list|"
    r"candidate|referral)\b"
)
_TB = [
    FoldedPattern(
        r"\b(?:tb|tuberculosis|tuberculous|ltbi|mantoux|isoniazid|inh|quanti-?feron|igra|"
        r"histoplasm\w*|coccidioid\w*|valley fever|blastomyc\w*|spelunking|caves?|caving|bat colon\w*|"
        r"bat guano|bird droppings|chicken coops?|pigeon droppings|"
        r"(?:mississippi|ohio)(?:\s+river)?\s+valley)\b"
    ),
    FoldedPattern(r"\b(?:positive\s+ppd|ppd\s+(?:positive|\+))\b"),
    FoldedPattern(r"\bppd\b(?=\s*(?:negative|neg))"),
]
_COPD = [
    FoldedPattern(
        r"\b(?:copd|emphysema\w*|chronic obstructive (?:pulmonary|lung|airways?) disease|gold\s*[1-4i]+)\b"
    ),
]
_COPD_NEG_ONLY = FoldedPattern(r"\b(?:no|without|denies)\s+(?:known\s+)?(?:chronic\s+)?lung disease\b")

# --- cancer ----------------------------------------------------------------------------------

_CANCER_CI = FoldedPattern(
    r"\b(?:cancers?|carcinomas?|adenocarcinomas?|malignan(?:cy|cies|t)|melanomas?|lymphomas?|"
    r"leuka?emias?|myelomas?|\w*sarcomas?|neoplasms?|tumou?rs?|seminomas?|hodgkin'?s(?!\s+lymphoma))\b|"
    r"\bclark level\b"
)
_CA_ABBREV = NotePattern(r"\b(?:ca|Ca|CA|NSCLC|SCLC|RCC|HCC|DCIS|CLL|CML|AML|ALL|CRC|SCC|TCC)\b")
#: Basal cell carcinoma is not counted as a cancer history (it practically never spreads to the lung).
_BASAL_CELL = FoldedPattern(
    r"\bbasal[- ]cell\b|\bbccs?\b|\brodent ulcer\b|\bnon-?melanoma(?:tous)? skin\b|\bnmsc\b"
)
_NOT_A_CANCER = FoldedPattern(
    r"\b(?:lung )?cancer screening\b|\bscreening for (?:lung )?cancer\b|"
    r"\bcancer (?:risk|centre|center|clinic|pathway)\b|"
    r"\bbenign (?:tumou?r|neoplasm)\b|\bmesotheliomas?\b|\bca(?:\s*2\+|\s+\d+\.\d+)|\b2[- ]week wait\b"
)

#: Site words -> normalised cancer site.
CANCER_SITES: dict[str, str] = {
    r"breast|mastectomy|lumpectomy|DCIS": "breast",
    r"colon|colorectal|CRC|rectal|rectum|bowel|sigmoid|hemicolectomy|colectomy|caecal|cecal": "colorectal",
    r"prostate|prostatic|PSA": "prostate",
    r"kidney|renal|RCC|nephrectomy": "kidney",
    r"bladder|urothelial|TURBT|TCC": "bladder",
    r"thyroid|thyroidectomy|papillary": "thyroid",
    r"tongue|laryn\w*|pharyn\w*|oropharyn\w*|tonsil\w*|head and neck|head & neck|oral": "head_and_neck",
    r"cervix|cervical": "cervix",
    r"ovary|ovarian": "ovary",
    r"endometri\w*|uterine|uterus": "uterus",
    r"stomach|gastric": "stomach",
    r"o?esophag\w*": "esophagus",
    r"liver|hepatocellular|HCC": "liver",
    r"pancrea\w*": "pancreas",
    r"lung|NSCLC|SCLC|lobectomy|pulmonary": "lung",
    r"testicular|testis|testes|testicle|seminoma|orchidectomy": "testis",
    r"skin": "skin",
    r"melanoma|Clark level": "melanoma",
    r"lymphoma|hodgkin\w*(?:'s)?": "lymphoma",
    r"leuka?emia|CLL|CML|AML|ALL": "leukemia",
    r"myeloma": "myeloma",
    r"\w*sarcoma": "sarcoma",
}
_SITE_PATTERNS = [(re.compile(rf"\b(?:{k})\b", _I), v) for k, v in CANCER_SITES.items()]
_LUNG_CANCER = FoldedPattern(
    r"\blung\s+(?:cancer|ca|carcinoma|adenocarcinoma|malignancy|tumou?r)\b|\bnsclc\b|\bsclc\b|"
    r"\b(?:lung|bronchogenic)\s+(?:adeno)?carcinoma\b|\badenocarcinoma of the lung\b|\bcancer of the lung\b"
)
_PERSONAL_NIL = FoldedPattern(
    r"\b(?:onc(?:ology)?|cancer|malignancy)\s+(?:hx|history)\s*[:\-]?\s*(?:nil|none|negative|no)\b"
)
_FAMILY_NIL = FoldedPattern(
    r"\b(?:fhx|fh|family (?:history|hx))\s*[:\-]?\s*(?:nil(?: relevant| of note)?|non-?contributory|"
    r"unremarkable|negative|none)\b"
)

# --- smoking ---------------------------------------------------------------------------------

_SMOKE_WORD = FoldedPattern(r"\b(?:smok\w*|cig\w*|tobacco|pipe|roll-?ups|pack|ppd|py)\b")
_NEVER = FoldedPattern(
    r"\b(?:never[-\s]+(?:a\s+)?smok\w*|never\s+(?:has\s+|have\s+)?smoked|has never smoked|never used tobacco|"
    r"lifelong non-?[- ]?smoker|non-?[- ]?smok\w*|nonsmok\w*|no smoking history|no history of smoking|"
    r"no tobacco(?: use)?|denies (?:any )?(?:smoking|tobacco)|"
    r"(?:does not|doesn't) smoke,? and never (?:has|did)|"
    r"(?:smoking|tobacco)(?:\s+status)?\s*:\s*(?:none|never|nil|no)|"
    r"(?:lifelong\s+)?abstainer from tobacco|never\s+touched\s+(?:a\s+)?cig\w*)\b"
)
_FORMER = FoldedPattern(
    r"\b(?:ex-?[- ]?smoker|former(?:ly)?\s+(?:a\s+)?smok\w*|"
    r"(?:tobacco|smoking)(?: status)?\s*:\s*(?:former|ex)|"
    r"previous(?:ly)? smok\w*|quit|stopped|gave up|given up|ceased|kicked the habit)\b"
)
_CURRENT = FoldedPattern(
    r"\b(?:current(?:ly)?(?: every day)?\s+smok\w*|still\s+smok\w*|continues\s+to\s+smoke|smokes|"
    r"active smoker|heavy smoker|smoker|has smoked\b(?=.{0,40}\bsince\b)|"
    r"(?:tobacco|smoking)\s*:\s*(?:current|yes|still))\b|"
    r"\bcurrent\b(?=[,.\s]*$)",
    re.MULTILINE,
)
#: "trying to quit", "advised to stop": intentions, not a former smoker.
_NOT_QUIT = FoldedPattern(
    r"\b(?:trying|tries|try|wants?|wanting|plans?|planning|advised|encouraged|counsell?ed|thinking about|"
    r"considering|ready|unable|attempting|attempts?|hopes?|intends?)\s+(?:to\s+|on\s+)?$"
)

#: Current-smoking cues that outrank a "quit" in the same note ("quit cigarettes but still smokes cigars").
_EXPLICIT_CURRENT = FoldedPattern(
    r"(?:current(?:ly)?(?: every day)?\s+smok\w*|still\s+smok\w*|continues\s+to\s+smoke|"
    r"(?:tobacco|smoking)\s*:\s*(?:current|still))"
)
_UNKNOWN_SMOKING = FoldedPattern(
    r"\bsmok\w*\s+(?:hx|history|status)\s+(?:is\s+)?(?:unknown|not known|unclear|unobtainable)|"
    r"\b(?:unable\s+to\s+(?:give|obtain)|no)\s+(?:a\s+)?(?:history|hx)\s+(?:re|regarding|of|about)\s+smok\w*|"
    r"\b(?:not\s+sure|unsure)\s+(?:whether|if)\s+(?:\w+\s+){0,3}(?:ever\s+)?smoked\b"
)

_NUM = r"(\d+(?:\.\d+)?|\d+/\d+|half(?:\s+a)?|a|one|two|three|four|five|six|ten|twenty|thirty|forty|fifty)"
_PACK_YEARS = FoldedPattern(
    r"(?:(less\s+than|under|fewer\s+than|more\s+than|over|<|>)\s*)?(?:approx\.?\s*|about\s+|~\s*|estimated\s+|c\.\s*)?"
    r"(\d+(?:\.\d+)?)\s*(?:-|\s)?(?:pack|pk)s?[- ]?(?:years?|yrs?|yr|y)\b|"
    r"(?:(less\s+than|under|more\s+than|over|<|>)\s*)?(\d+(?:\.\d+)?)\s*py\b|"
    r"\bpack[- ]?years?\s*[:=]\s*(\d+(?:\.\d+)?)"
)
_PER_DAY = FoldedPattern(
    rf"{_NUM}\s*(?:ppd\b|packs?\s*(?:/|per|a|each)\s*day\b|packs?\s+daily\b|pack\s+per\s+day\b)|"
    rf"(\d+)\s*(?:cigarettes|cigs?|cig|roll-?ups)?\s*(?:/|per|a|each)\s*day\b"
)
_APPROX = r"(?:about|around|approximately|approx\.?|~|nearly|roughly|some)?\s*"
#: "x 30 yrs", "for about 45 years", ", 40 years" right after the amount per day ("20/day, 40 years").
_FOR_YEARS = FoldedPattern(
    rf"\s*(?:,?\s*(?:x|×|for|over)\s*{_APPROX}|,\s*)(\d+(?:\.\d+)?)\s*(?:years?|yrs?|y)\b(?!\s+(?:ago|old))"
)
_SINCE_AGE = FoldedPattern(r"\bsince\s+(?:age\s+|the age of\s+|(?:he|she) was\s+)(\d{1,2})\b")
_QUIT_AGO = FoldedPattern(
    rf"\b(?:quit|stopped|gave up|given up|ceased|kicked the habit)(?:\s+smoking)?\s*(?:-\s*)?"
    rf"(?:around|about|approx\.?|~|roughly|some)?\s*"
    rf"{_NUM}\s*(years?|yrs?|y|months?|mos?|weeks?|wks?)(?:\s+ago\b|(?=\s*(?:[.,;)]|$)))",
    re.MULTILINE,
)
_QUIT_AT_AGE = FoldedPattern(
    r"\b(?:quit|stopped|gave up)(?:\s+smoking)?\s+at\s+(?:(?:the\s+)?age\s+(?:of\s+)?)?(\d{1,2})\b"
    r"(?!\s*(?:mm|cm|kg|%|pm|am))"
)
_FROM_UNTIL_AGE = FoldedPattern(
    r"\bfrom\s+(?:age\s+)?(\d{1,2})\s+(?:until|till|to)\s+(?:(?:he|she)\s+(?:stopped|quit)\s+at\s+)?"
    r"(?:age\s+)?(\d{1,2})\b"
)
_SMOKED_FROM_UNTIL = FoldedPattern(
    r"\bsmoked\b[^.;\n]{0,40}?(?=\bfrom\s+(?:age\s+)?\d{1,2}\s+(?:until|till|to)\b)"
)
_YEARS_BEFORE_PACKS = FoldedPattern(
    rf"\bfor\s+(\d+(?:\.\d+)?)\s*(?:years?|yrs?)\s*,?\s*(?:at\s+)?{_NUM}\s*"
    rf"(?:packs?\s*(?:/|per|a|each)\s*day|ppd)\b"
)

# --- age and sex -------------------------------------------------------------------------------

_WORDNUM = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
#: A patient named by kinship in a note to or from a relative: "Mum, 84, has had a cough".
_KIN_APPOSITION = NotePattern(
    r"(?:^|[.\n]\s*)(Mum|Mom|Mam|Mother|Dad|Father)\s*,\s*(\d{2,3})\s*,", re.MULTILINE
)
_AGE_PATTERNS: list[tuple[Pattern, int]] = [
    (FoldedPattern(r"\b(\d{1,3})\s*-?\s*(?:years?|yrs?|yr)[\s-]*old\b"), 1),
    (FoldedPattern(r"\b(\d{1,3})\s*(?:yo|y/o|y\.o\.?|yrs?|yr)\b"), 1),
    (NotePattern(r"\b(\d{1,3})\s*(?:yo|y)?[MF]\b"), 1),
    (NotePattern(r"\b[MF]\s*[,/]\s*(\d{1,3})\b"), 1),
    (FoldedPattern(r"\b(?:age|aged)\s*:?\s*(\d{1,3})\b"), 1),
    (FoldedPattern(r"\bage/sex\s*:\s*(\d{1,3})"), 1),
    (
        NotePattern(
            r"\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+(?:[A-Z]\.\s*)?[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?\s*(?:,\s*|\s+is\s+|\s+\(?aged?\s+)"
            r"(\d{1,3})\b(?!\s*(?:mm|cm|kg|%))"
        ),
        1,
    ),
    (FoldedPattern(r"\b(?:pt|patient)\s+is\s+(?:a\s+)?(\d{1,3})\b(?!\s*(?:mm|cm|kg|%))"), 1),
    (
        FoldedPattern(
            r"\b(?:she|he)\s+is\s+(?:now\s+)?(\d{1,3})\b(?!\s*(?:mm|cm|kg|%|/40|weeks?|wks?|days?|months?|mo|st))"
        ),
        1,
    ),
    (_KIN_APPOSITION, 2),
    (NotePattern(r"\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?\s*\((\d{1,3})\)"), 1),
    (
        FoldedPattern(
            r"\b((?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
            r"(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?)[- ]years?[- ]old\b"
        ),
        1,
    ),
]
_SEX_PATTERNS: list[tuple[Pattern, int]] = [
    (NotePattern(r"\b\d{1,3}\s*(?:yo|y/o|y\.o\.?|yrs?|yr|y)?\s*([MF])\b"), 1),
    (NotePattern(r"\b([MF])\s*[,/]\s*\d{1,3}\b"), 1),
    (FoldedPattern(r"\b(?:age/sex\s*:\s*\d{1,3}\s*/\s*|sex\s*:\s*)([mf]|male|female)\b"), 1),
    (
        FoldedPattern(
            r"\b(male|female|man|woman|gentleman|lady|boy|girl)\b(?!\s+(?:nurse|doctor|partner|friend|relative))"
        ),
        1,
    ),
    (NotePattern(r"\b(Mr|Mrs|Ms|Miss)\b\.?"), 1),
]
_HE = FoldedPattern(r"\b(?:he|him|his)\b")
_SHE = FoldedPattern(r"\b(?:she|her|hers)\b")
_MALE_WORDS = {"m", "male", "man", "gentleman", "boy", "mr"}


_INFORMANT_BEFORE = FoldedPattern(
    r"\b(?:per|from|by|according\s+to|via)\s+(?:the\s+|his\s+|her\s+|pt'?s\s+)?$"
)
_INFORMANT_AFTER = FoldedPattern(
    r"\s+(?:reports|reported|says|said|states|stated|tells|informs|gives|interpreting|interprets|translating|"
    r"asking|asks|asked|called|calls|rang|phoned|mentioned|mentions)\b"
)


# --- small patterns used near each mention (compiled once) ------------------------------------

_COMMA = re.compile(r",")
_THE_PATIENT = re.compile(r"\b(?:he|she|pt|patient)\b", _I)
_COMMA_THE_PATIENT = re.compile(r",\s*(?:and\s+)?(?:he|she|pt|patient)\b", _I)
_BENIGN_BEFORE = re.compile(r"\bbenign\s*$")
_PERSONAL = FoldedPattern(r"\bpersonal\b")
_MELANOMA = re.compile(r"melanoma", _I)
_PASSIVE = re.compile(r"passive", _I)
#: "since 40", "at 65": a number after these is not the patient's age (the text before is in lower case).
_NOT_AN_AGE_AFTER = re.compile(r"\b(?:since|at|from|until|till|by|in (?:his|her))\s*$")
#: Review-of-systems markers just before a mention: ", - fever" negates, "+ cough" affirms.
_ROS_MINUS = re.compile(r"(?:^|[,:(]\s?)[-–]\s?$")
_ROS_MINUS_AFTER_COMMA = re.compile(r"[,:]\s*[-–]\s?$")
_ROS_PLUS = re.compile(r"\+\s?$")


@lru_cache(maxsize=8)
def _all_relatives(text: str) -> tuple[tuple[re.Match[str], ...], tuple[int, ...]]:
    """Every relative word of the note that names a relative, and their start offsets (found once)."""
    found = tuple(
        m
        for m in _RELATIVE.finditer(text)
        if not _INFORMANT_BEFORE.search(text[max(0, m.start() - 30) : m.start()])
        and not _INFORMANT_AFTER.match(text, m.end())
    )
    return found, tuple(m.start() for m in found)


def _relatives(text: str, start: int = 0, end: int | None = None) -> list[re.Match[str]]:
    """Relative words in ``text[start:end]`` that name a relative, not the informant ("Hx per wife",
    "daughter reports")."""
    stop = len(text) if end is None else end
    found, starts = _all_relatives(text)
    return [m for m in found[bisect_left(starts, start) : bisect_left(starts, stop)] if m.end() <= stop]


@lru_cache(maxsize=64)
def _family_header_spans(text: str) -> SpanSet:
    return SpanSet(m.span() for m in _FAMILY_HEADER.finditer(text))


def _spans_of(pattern: Pattern, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)]


def _family_clause(text: str, pos: int, s: int, e: int) -> bool:
    """Whether the clause ``text[s:e]`` around ``pos`` (:func:`_relative_bounds`) speaks of a relative or
    of the family."""
    if _relatives(text, s, e) or _FAMILY_WORD.search(text[s:e]):
        return True
    return _family_header_spans(text).covers(pos)


def _relative_bounds(text: str, pos: int) -> tuple[int, int]:
    s, e = clause_bounds(text, pos, CUES)
    # a comma also separates two people: "Dad had lung ca, mum had bowel cancer"
    for m in _COMMA.finditer(text[s:pos]):
        s_candidate = s + m.end()
        if _RELATIVE.search(text[s_candidate:pos]) is None and _THE_PATIENT.search(text[s_candidate:pos]):
            s = s_candidate
    nxt = _COMMA_THE_PATIENT.search(text[pos:e])
    if nxt:
        e = pos + nxt.start()
    return s, e


def _relative_spans(text: str) -> list[tuple[int, int]]:
    """Clauses that are about a relative (for smoking, pack-years, age)."""
    spans: list[tuple[int, int]] = []
    for m in _relatives(text):
        s, e = clause_bounds(text, m.start(), CUES)
        # "non-smoker but husband smoked": the clause starts at the relative's side of "but";
        # "45F, never smoker, FH of lung cancer (aunt)": and after the comma before the relative
        comma = max(text.rfind(",", s, m.start()), text.rfind(";", s, m.start()))
        if comma >= 0:
            s = comma + 1
        spans.append((s, e))
    return spans


def _informant_before(text: str, pos: int) -> re.Match[str] | None:
    """The last relative named as the informant ("daughter says", "Hx per wife") shortly before ``pos``."""
    last: re.Match[str] | None = None
    for m in _RELATIVE.finditer(text, max(0, pos - 300), pos):
        if _INFORMANT_BEFORE.search(text[max(0, m.start() - 30) : m.start()]) or _INFORMANT_AFTER.match(
            text, m.end()
        ):
            last = m
    return last


def _informant_own(text: str, pos: int) -> re.Match[str] | None:
    """The informant a reflexive in the sentence of ``pos`` points at ("she herself", "her own").

    Returns the informant's relative word, or ``None`` when the sentence is about the patient.
    """
    if not _may_name_a_reflexive(text):
        return None
    s, e = sentence_bounds(text, pos, CUES)
    refl = _REFLEXIVE.search(text, s, e)
    if refl is None:
        return None
    return _informant_before(text, refl.start())


@lru_cache(maxsize=8)
def _may_name_a_reflexive(text: str) -> bool:
    """``False`` when no sentence of the note holds a reflexive (not searched for mention by mention)."""
    return _REFLEXIVE_START.search(text) is not None


def _informant_spans(text: str) -> list[tuple[int, int]]:
    """Sentences about the informant's own health ("Wife reports she has COPD herself")."""
    spans: list[tuple[int, int]] = []
    for refl in _REFLEXIVE.finditer(text):
        if _informant_before(text, refl.start()) is not None:
            spans.append(sentence_bounds(text, refl.start(), CUES))
    return spans


def _in(spans: Sequence[tuple[int, int]], pos: int) -> bool:
    return covers(spans, pos)


def _number(token: str) -> float | None:
    t = token.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    if re.fullmatch(r"\d+/\d+", t):
        a, b = t.split("/")
        return float(a) / float(b) if float(b) else None
    if t in ("half", "half a"):
        return 0.5
    if t in ("a", "one"):
        return 1.0
    words = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10, "twenty": 20, "thirty": 30}
    words |= {"forty": 40, "fifty": 50}
    return float(words[t]) if t in words else None


def _word_age(token: str) -> int | None:
    parts = re.split(r"[- ]", token.lower())
    total = 0
    for p in parts:
        if p not in _WORDNUM:
            return None
        total += _WORDNUM[p]
    return total


# --- fact extractors -------------------------------------------------------------------------


def _age(text: str, relatives: Sequence[tuple[int, int]]) -> tuple[Fact, tuple[int, int] | None]:
    """The patient's age: the first stated age outside a relative's clause, else the first stated age."""
    candidates: list[tuple[int, int, int, int]] = []  # in_relative, start, end, value
    for pat, group in _AGE_PATTERNS:
        for m in pat.finditer(text):
            raw = m.group(group)
            value = int(raw) if raw.isdigit() else _word_age(raw)
            if value is None or not 0 < value < 120:
                continue
            before = text[max(0, m.start() - 12) : m.start()].lower()
            if _NOT_AN_AGE_AFTER.search(before):
                continue
            in_relative = _in(relatives, m.start())
            candidates.append((int(in_relative), m.start(group), m.end(group), value))
            if not in_relative:
                break  # this pattern's later ages come after this one: none of them can be chosen
    if not candidates:
        return Fact(), None
    candidates.sort()
    _, s, e, value = candidates[0]
    return make_fact(text, value, s, e), (s, e)


def _sex(text: str, relatives: Sequence[tuple[int, int]]) -> Fact:
    for pat, group in _SEX_PATTERNS:
        for m in pat.finditer(text):
            if _in(relatives, m.start()):
                continue
            word = m.group(group).lower()
            sex = "M" if word in _MALE_WORDS else "F"
            return make_fact(text, sex, m.start(group), m.end(group))
    others = SpanSet([*relatives, *_informant_spans(text)])
    he = [m for m in _HE.finditer(text) if not _in(others, m.start())]
    she = [m for m in _SHE.finditer(text) if not _in(others, m.start())]
    if he or she:
        best = he[0] if len(he) > len(she) else she[0]
        return make_fact(text, "M" if len(he) > len(she) else "F", best.start(), best.end())
    kin = _KIN_APPOSITION.search(text)
    if kin is not None:
        word = kin.group(1).lower()
        return make_fact(text, "M" if word in ("dad", "father") else "F", kin.start(1), kin.end(1))
    return Fact()


def _smoking(text: str, relatives: Sequence[tuple[int, int]], age: int | None) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    smoke_words = [m.start() for m in _SMOKE_WORD.finditer(text) if not _in(relatives, m.start())]
    smoking_sentences = SpanSet(
        sentence_bounds(text, w, CUES)
        for w in smoke_words
        if not _PASSIVE.match(text[max(0, w - 8) : w].strip())
    )

    def in_smoking_sentence(pos: int) -> bool:
        # same sentence, or a smoking word shortly before on the same line ("smoker - 30 pk yrs; stopped")
        if _in(smoking_sentences, pos):
            return True
        near = smoke_words[bisect_left(smoke_words, pos - 60) : bisect_right(smoke_words, pos)]
        return any("\n" not in text[w:pos] for w in near)

    taken = SpanSet(())
    hits: dict[str, tuple[int, int]] = {}
    for status, pat, needs_context in (
        ("never", _NEVER, False),
        ("former", _FORMER, True),
        ("current", _CURRENT, True),
    ):
        for m in pat.finditer(text):
            s, e = m.span()
            if _in(relatives, s) or taken.overlaps(s, e):
                continue
            if needs_context and not in_smoking_sentence(s):
                continue
            if status == "former" and _NOT_QUIT.search(text[max(0, s - 30) : s]):
                continue
            if status == "current" and status_of(text, s, e, CUES) is Status.NEGATED:
                continue
            if "passive" in text[max(0, s - 12) : s].lower():
                continue
            taken.add(s, e)
            hits.setdefault(status, (s, e))
            if status == "current":
                break  # the last kind: its later hits would only be marked taken, which nothing reads now
    current_hit = hits.get("current")
    explicit_current = current_hit is not None and _EXPLICIT_CURRENT.fullmatch(text, *current_hit) is not None
    order = ("current", "former", "never") if explicit_current else ("former", "current", "never")
    chosen = next((st for st in order if st in hits), None)
    stopped_at: int | None = None  # "smoked ... from age 20 to 55": the age at which smoking stopped
    for sm in _SMOKED_FROM_UNTIL.finditer(text):
        ages = _FROM_UNTIL_AGE.match(text, sm.end())
        if ages is not None and not _in(relatives, sm.start()) and int(ages.group(1)) < int(ages.group(2)):
            stopped_at = int(ages.group(2))
            if chosen is None:
                chosen, hits["former"] = "former", (sm.start(), ages.end())
            break
    if chosen is None:
        unknown = _UNKNOWN_SMOKING.search(text)
        if unknown:
            out["smoking_status"] = make_fact(text, "unknown", unknown.start(), unknown.end())
    else:
        s, e = hits[chosen]
        out["smoking_status"] = make_fact(text, chosen, s, e)

    # pack-years: stated beats computed
    for m in _PACK_YEARS.finditer(text):
        if _in(relatives, m.start()):
            continue
        bound = m.group(1) or m.group(3)
        raw = m.group(2) or m.group(4) or m.group(5)
        if bound:
            out.setdefault("pack_years", make_fact(text, None, m.start(), m.end()))
            continue
        out["pack_years"] = make_fact(text, float(raw), m.start(), m.end())
        break
    if out.get("pack_years") is None or out["pack_years"].span is None:
        for yb in _YEARS_BEFORE_PACKS.finditer(text):
            packs_yb = _number(yb.group(2))
            if packs_yb is not None and not _in(relatives, yb.start()):
                out["pack_years"] = make_fact(
                    text, round(packs_yb * float(yb.group(1)), 1), yb.start(), yb.end()
                )
                break
    if out.get("pack_years") is None or out["pack_years"].span is None:
        for m in _PER_DAY.finditer(text):
            if _in(relatives, m.start()) or not in_smoking_sentence(m.start()):
                continue
            packs = _number(m.group(1)) if m.group(1) is not None else float(m.group(2)) / 20.0
            if packs is None:
                continue
            years: float | None = None
            end = m.end()
            fy = _FOR_YEARS.match(text, m.end())
            _, s_end = sentence_bounds(text, m.start(), CUES)
            if fy is None:
                fy = re.search(
                    rf"(?:x|×|for|over)\s*{_APPROX}(\d+(?:\.\d+)?)\s*(?:years?|yrs?|y)\b",
                    text[m.end() : s_end],
                    _I,
                )
                if fy is not None:
                    years, end = float(fy.group(1)), m.end() + fy.end()
            else:
                years, end = float(fy.group(1)), fy.end()
            if years is None:
                span_ages = _FROM_UNTIL_AGE.search(text, m.end(), s_end)
                if span_ages is not None and int(span_ages.group(1)) < int(span_ages.group(2)):
                    years, end = float(int(span_ages.group(2)) - int(span_ages.group(1))), span_ages.end()
            if years is None and age is not None:
                since = _SINCE_AGE.search(text, m.end(), s_end)
                if since is not None and int(since.group(1)) < age:
                    years, end = float(age - int(since.group(1))), since.end()
            if years is not None:
                out["pack_years"] = make_fact(text, round(packs * years, 1), m.start(), end)
                break
    if "pack_years" in out and out["pack_years"].value is not None:
        v = out["pack_years"].value
        if isinstance(v, float) and v.is_integer():
            out["pack_years"] = replace(out["pack_years"], value=int(v))

    m2 = _QUIT_AGO.search(text)
    if m2 is not None and not _in(relatives, m2.start()):
        n = _number(m2.group(1))
        if n is not None:
            unit = m2.group(2).lower()
            years_q = n / 12.0 if unit.startswith("m") else n / 52.0 if unit.startswith("w") else n
            val: FactValue = int(years_q) if float(years_q).is_integer() else round(years_q, 2)
            out["years_since_quit"] = make_fact(text, val, m2.start(), m2.end())
    else:
        m3 = _QUIT_AT_AGE.search(text)
        if m3 is not None and age is not None and int(m3.group(1)) <= age:
            out["years_since_quit"] = make_fact(text, age - int(m3.group(1)), m3.start(), m3.end())
        elif chosen == "former" and stopped_at is not None and age is not None and stopped_at <= age:
            s, e = hits["former"]
            out["years_since_quit"] = make_fact(text, age - stopped_at, s, e)
    return out


def _cancer(text: str) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    hidden = _spans_of(_NOT_A_CANCER, text)
    personal: list[Mention] = []
    family: list[Mention] = []
    sites: list[tuple[int, str, int, int]] = []
    mentions = [m for m in _CANCER_CI.finditer(text)] + [m for m in _CA_ABBREV.finditer(text)]
    mentions.sort(key=lambda m: m.start())
    hidden_set = SpanSet(hidden)
    seen = SpanSet(())
    for m in mentions:
        s, e = m.span()
        if hidden_set.overlaps(s, e) or seen.overlaps(s, e):
            continue
        seen.add(s, e)
        before = text[max(0, s - 25) : s].lower()
        if _BENIGN_BEFORE.search(before) or _basal_cell(text, s, e):
            continue
        status = status_of(text, s, e, CUES)
        when = temporality_of(text, s, CUES)
        c_start, c_end = _relative_bounds(text, s)
        clause = text[c_start:c_end]
        informant = _informant_own(text, s)
        if informant is not None:
            # "Daughter says she herself was diagnosed with breast cancer": the informant's own
            if _SPOUSE.fullmatch(informant.group(0)) or not _LUNG_CANCER.search(clause):
                continue
            family.append(Mention("family_history_lung_cancer", s, e, status, experiencer=FAMILY))
            continue
        is_family = _family_clause(text, s, c_start, c_end)
        if is_family and _spouse_only(text, c_start, c_end):
            continue  # a spouse's or partner's cancer: neither the patient's nor a blood relative's
        is_personal = not is_family or _PERSONAL.search(clause) is not None
        if is_family:
            lung = _LUNG_CANCER.search(clause)
            generic = lung is None and not _CANCER_CI.search(clause[: s - c_start])
            lung_here = lung is not None and lung.start() <= s - c_start + 4 <= lung.end() + 4
            if lung_here or (status is Status.NEGATED and (generic or lung is None)):
                family.append(Mention("family_history_lung_cancer", s, e, status, experiencer=FAMILY))
        if is_personal:
            personal.append(Mention("personal_cancer_history", s, e, status, temporality=when))
            if status is Status.AFFIRMED:
                near = _site_near(text, s, e, c_start, c_end)
                if near is not None:
                    sites.append((s, near[0], near[1], near[2]))
    own_nil = _PERSONAL_NIL.search(text)
    if own_nil is not None:
        personal.append(
            Mention(
                "personal_cancer_history",
                own_nil.start(),
                own_nil.end(),
                Status.NEGATED,
                temporality=HISTORICAL,
            )
        )
    nil = _FAMILY_NIL.search(text)
    if nil is not None:
        family.append(
            Mention("family_history_lung_cancer", nil.start(), nil.end(), Status.NEGATED, experiencer=FAMILY)
        )
    for name, ms in (("personal_cancer_history", personal), ("family_history_lung_cancer", family)):
        value, mention = aggregate_bool(ms)
        if mention is not None:
            out[name] = make_fact(text, value, mention.start, mention.end, mention=mention)
    if out.get("personal_cancer_history", Fact()).value is True and sites:
        names: list[str] = []
        for _, site, _, _ in sites:
            if site not in names:
                names.append(site)
        if "melanoma" in names and "skin" in names:
            names.remove("skin")  # "skin cancer (melanoma)": the more specific name
        first = sites[0]
        out["cancer_site"] = make_fact(
            text, ",".join(names), first[2], first[3], context=out["personal_cancer_history"]
        )
    return out


def _basal_cell(text: str, s: int, e: int) -> bool:
    """Whether the cancer word at ``[s, e)`` is a basal cell carcinoma (same comma-delimited phrase)."""
    lo = max(0, s - 40)
    hi = min(len(text), e + 40)
    left = max(text.rfind(",", lo, s), text.rfind(";", lo, s), text.rfind("\n", lo, s))
    right = [i for i in (text.find(",", e, hi), text.find(";", e, hi), text.find("\n", e, hi)) if i >= 0]
    phrase = text[left + 1 if left >= 0 else lo : min(right) if right else hi]
    return _BASAL_CELL.search(phrase) is not None and _MELANOMA.search(phrase) is None


def _spouse_only(text: str, start: int, end: int) -> bool:
    """Whether every relative named in ``text[start:end]`` is a spouse or partner (not a blood relative)."""
    rels = _relatives(text, start, end)
    if not rels or not all(_SPOUSE.fullmatch(m.group(0)) for m in rels):
        return False
    return _FAMILY_WORD.search(text, start, end) is None


def _site_near(text: str, s: int, e: int, c_start: int, c_end: int) -> tuple[str, int, int] | None:
    """The cancer site named nearest to the mention ``[s, e)`` within its clause."""
    lo = max(c_start, s - 45)
    hi = min(c_end, e + 45)
    best: tuple[int, str, int, int] | None = None
    for pat, site in _SITE_PATTERNS:
        for m in pat.finditer(text, lo, hi):
            dist = 0 if m.start() < e and s < m.end() else min(abs(m.start() - e), abs(s - m.end()))
            if best is None or dist < best[0]:
                best = (dist, site, m.start(), m.end())
    if best is None:
        return None
    return best[1], min(best[2], s), max(best[3], e)


def _bool_fact(text: str, mentions: list[Mention]) -> Fact | None:
    value, mention = aggregate_bool(mentions)
    if mention is None:
        return None
    return make_fact(text, value, mention.start, mention.end, mention=mention)


def _ros_marked(text: str, m: Mention) -> Mention:
    """Apply a review-of-systems marker: ``, - fever`` negates and ``+ cough`` affirms."""
    before = text[max(0, m.start - 4) : m.start]
    if _ROS_MINUS.search(before) or _ROS_MINUS_AFTER_COMMA.search(text[max(0, m.start - 5) : m.start]):
        return Mention(m.fact, m.start, m.end, Status.NEGATED, m.value, m.experiencer, m.temporality)
    if _ROS_PLUS.search(before):
        return Mention(m.fact, m.start, m.end, Status.AFFIRMED, m.value, m.experiencer, m.temporality)
    return m


def extract(text: str) -> dict[str, Fact]:
    """Extract every fact from an English note.

    Parameters
    ----------
    text
        The note.

    Returns
    -------
    dict of str to Fact
        Facts found (absent names mean not stated).
    """
    relatives = SpanSet(_relative_spans(text))
    out: dict[str, Fact] = {}
    age_fact, _ = _age(text, relatives)
    out["age"] = age_fact
    out["sex"] = _sex(text, relatives)
    age = age_fact.value if isinstance(age_fact.value, int) else None
    out.update(_smoking(text, relatives, age))
    out.update(_cancer(text))

    simple: list[tuple[str, Sequence[Pattern], Sequence[Pattern], Pattern | None]] = [
        ("fever", _FEVER, _FEVER_NEG, _FEVER_EXCLUDE),
        ("cough", _COUGH, [], None),
        ("hemoptysis", _HEMOPTYSIS, _HEMOPTYSIS_NEG, None),
        ("weight_loss", _WEIGHT_LOSS, _WEIGHT_NEG, None),
        ("immunosuppressed", _IMMUNO, [], _IMMUNO_EXCLUDE),
        ("tb_or_fungal_exposure", _TB, [], None),
        ("emphysema_or_copd", _COPD, [_COPD_NEG_ONLY], None),
    ]
    informant_own = _informant_spans(text)
    for name, pats, negs, exclude in simple:
        ros = partial(_ros_marked, text) if name in ("fever", "cough", "hemoptysis", "weight_loss") else None
        mentions = find_mentions(
            text, name, pats, CUES, negs, exclude, skip=informant_own, adjust=ros, until_affirmed=True
        )
        fact = _bool_fact(text, mentions)
        if fact is not None:
            out[name] = fact
    return out
