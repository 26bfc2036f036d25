"""Training notes as varied as real ones (generator version 4): document forms, paraphrases and traps.

A note is assembled from *items* (one per fact: age and sex, smoking, the personal cancer history, each
symptom, the course, ...), each phrased from its own random stream (seeded by the case's note seed and the
item's fixed number). Changing one fact therefore changes only that item's sentence: the counterfactual
twins of :func:`radiology_app.diagnosis.synthetic.counterfactual_twin` are the same note with one
statement changed. The items are laid out in one of several document forms (referral letter, emergency
department note, consult, admission history and physical, discharge summary, CT request form, telephone
and nursing notes, plain prose or bullets; in Chinese 门诊/急诊/入院/出院/会诊 records and a CT
request) with section headers.

Traps that must not move the diagnosis are written independently of the diagnosis: a relative's cancer,
a suspected or differential diagnosis ("?ca", "r/o malignancy", "考虑肺癌可能"), a negated cancer
history, unrelated problems, typos and abbreviations. A personal cancer treated long ago is a personal
cancer history (it is written as such and read as such).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from radiology_app.diagnosis.synthetic import PatientFacts

#: Document forms of English and Chinese notes.
FORMS_EN: tuple[str, ...] = (
    "plain",
    "bullets",
    "referral",
    "ed",
    "consult",
    "admission",
    "discharge",
    "ct_request",
    "telephone",
    "nursing",
)
FORMS_ZH: tuple[str, ...] = (
    "plain",
    "outpatient",
    "emergency",
    "admission",
    "discharge",
    "consult",
    "ct_request",
)

#: Sites a relative's cancer is drawn from (a relative's lung cancer is the family-history fact instead).
RELATIVE_SITES: tuple[str, ...] = ("breast", "colon", "prostate", "stomach", "ovary", "pancreas", "liver")

_REL_EN = ("mother", "father", "sister", "brother", "aunt", "uncle", "grandmother", "grandfather")
_REL_ZH = ("母亲", "父亲", "姐姐", "哥哥", "姑姑", "舅舅", "外婆", "爷爷")
_REL_SITE_EN = {
    "breast": ("breast cancer", "breast ca"),
    "colon": ("colon cancer", "bowel cancer"),
    "prostate": ("prostate cancer", "prostate ca"),
    "stomach": ("stomach cancer", "gastric cancer"),
    "ovary": ("ovarian cancer", "ovarian ca"),
    "pancreas": ("pancreatic cancer", "pancreatic ca"),
    "liver": ("liver cancer", "hepatocellular carcinoma"),
    # the personal sites, used when a personal history is moved to a relative
    "kidney": ("kidney cancer", "renal cell carcinoma"),
    "melanoma": ("melanoma", "a melanoma"),
    "head_neck": ("throat cancer", "head and neck cancer"),
    "osteosarcoma": ("bone cancer", "osteosarcoma"),
    "thyroid": ("thyroid cancer", "thyroid ca"),
}
_REL_SITE_ZH = {
    "breast": "乳腺癌",
    "colon": "结肠癌",
    "prostate": "前列腺癌",
    "stomach": "胃癌",
    "ovary": "卵巢癌",
    "pancreas": "胰腺癌",
    "liver": "肝癌",
    "kidney": "肾癌",
    "melanoma": "黑色素瘤",
    "head_neck": "鼻咽癌",
    "osteosarcoma": "骨肉瘤",
    "thyroid": "甲状腺癌",
}
_OWN_SITE_EN = {
    "breast": ("breast cancer", "breast ca", "carcinoma of the left breast", "ductal breast carcinoma"),
    "colon": ("colon cancer", "colorectal cancer", "sigmoid adenocarcinoma", "colon ca"),
    "kidney": ("renal cell carcinoma", "RCC", "kidney cancer"),
    "melanoma": ("melanoma", "malignant melanoma of the back", "cutaneous melanoma"),
    "head_neck": ("head and neck cancer", "laryngeal cancer", "oropharyngeal SCC"),
    "osteosarcoma": ("osteosarcoma", "osteosarcoma of the femur"),
    "thyroid": ("thyroid cancer", "papillary thyroid carcinoma", "thyroid ca"),
}
_OWN_SITE_ZH = {
    "breast": ("乳腺癌", "左乳癌"),
    "colon": ("结肠癌", "直肠癌"),
    "kidney": ("肾癌", "肾透明细胞癌"),
    "melanoma": ("黑色素瘤", "恶性黑色素瘤"),
    "head_neck": ("鼻咽癌", "喉癌"),
    "osteosarcoma": ("骨肉瘤",),
    "thyroid": ("甲状腺癌", "甲状腺乳头状癌"),
}
_TREATMENT_EN = {
    "breast": "s/p mastectomy",
    "colon": "s/p hemicolectomy",
    "kidney": "s/p nephrectomy",
    "melanoma": "excised",
    "head_neck": "treated with chemoradiation",
    "osteosarcoma": "resected",
    "thyroid": "s/p thyroidectomy",
}
_SUSPECTED_EN = (
    "?ca",
    "?malignancy",
    "r/o malignancy",
    "?mets",
    "to exclude malignancy",
    "query primary lung cancer",
    "differential includes metastasis vs primary",
    "possible neoplasm",
    "rule out lung cancer",
    "suspicious for malignancy?",
)
_SUSPECTED_ZH = (
    "考虑肺癌可能",
    "不除外转移",
    "肺癌待排",
    "性质待定，恶性不除外",
    "转移瘤？",
    "肺Ca?",
)
_UNRELATED_EN = (
    "Appendectomy in 1998.",
    "Allergic to penicillin.",
    "Hypertension on amlodipine.",
    "Type 2 diabetes, well controlled.",
    "Knee replacement 2015.",
    "Hypothyroidism on levothyroxine.",
    "Cataract surgery last year.",
    "AF on apixaban.",
    "CKD stage 3.",
    "GORD on omeprazole.",
    "Osteoarthritis of both knees.",
    "BPH on tamsulosin.",
    "Depression, on sertraline.",
    "Gout, on allopurinol.",
    "Previous cholecystectomy.",
    "Hyperlipidaemia on a statin.",
    "Mild asthma as a child.",
    "Benign breast cyst aspirated 2010.",
    "Colonic polyps removed, benign.",
    "Hernia repair 2003.",
)
_UNRELATED_ZH = (
    "高血压病史10年。",
    "青霉素过敏。",
    "阑尾切除术后。",
    "2型糖尿病，血糖控制可。",
    "膝关节置换术后。",
    "甲状腺功能减退，口服优甲乐。",
    "睡眠饮食可。",
    "房颤，口服华法林。",
    "慢性胃炎病史。",
    "胆囊切除术后。",
    "痛风病史。",
    "腰椎间盘突出。",
    "子宫肌瘤术后。",
    "前列腺增生。",
)
_ABBREV_EN = (
    ("history of", "h/o"),
    ("History of", "Hx"),
    ("patient", "pt"),
    ("years", "yrs"),
    ("with", "w/"),
    ("without", "w/o"),
    ("reports", "c/o"),
    ("weeks", "wks"),
    ("smoker", "smoker"),
    ("pack-years", "pk-yrs"),
    ("cancer", "ca"),
    ("fever", "pyrexia"),
)


@dataclass(frozen=True)
class NoteOptions:
    """How a note is written, apart from the facts.

    Attributes
    ----------
    form
        Document form (:data:`FORMS_EN` / :data:`FORMS_ZH`).
    relative_cancer
        Site of a relative's cancer stated as a trap (:data:`RELATIVE_SITES` or a personal site moved to a
        relative), or ``None``.
    suspected
        Whether a suspected or differential diagnosis is written (it is no fact).
    negate_cancer
        Whether a missing personal cancer history is stated as denied.
    remote_cancer
        Whether a personal cancer is phrased as treated long ago.
    typos
        Share of words given a typo or an abbreviation (English).
    n_unrelated
        How many unrelated problems are mentioned.
    """

    form: str = "plain"
    relative_cancer: str | None = None
    suspected: bool = False
    negate_cancer: bool = False
    remote_cancer: bool = False
    typos: float = 0.0
    n_unrelated: int = 0


def draw_options(rng: np.random.Generator, language: str) -> NoteOptions:
    """Draw the writing options of a note (independent of the diagnosis)."""
    forms = FORMS_ZH if language == "zh" else FORMS_EN
    u = rng.random(6)
    return NoteOptions(
        form=str(forms[int(rng.integers(len(forms)))]),
        relative_cancer=str(RELATIVE_SITES[int(rng.integers(len(RELATIVE_SITES)))]) if u[0] < 0.25 else None,
        suspected=bool(u[1] < 0.3),
        negate_cancer=bool(u[2] < 0.3),
        remote_cancer=bool(u[3] < 0.3),
        typos=float(rng.uniform(0.02, 0.08)) if u[4] < 0.3 else 0.0,
        n_unrelated=int(rng.integers(0, 4)),
    )


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _item_rng(seed: int, item: int) -> np.random.Generator:
    return np.random.default_rng([seed, 40 + item])


# --- English items -------------------------------------------------------------------------------------


def _en_items(f: PatientFacts, seed: int, o: NoteOptions) -> dict[str, list[str]]:
    """Sentences per section: ``pc`` (presentation), ``pmh``, ``sh``, ``fh``, ``inv``, ``imp``."""
    s: dict[str, list[str]] = {k: [] for k in ("pc", "pmh", "sh", "fh", "inv", "imp")}
    sexw = "woman" if f.sex == "F" else "man"

    r = _item_rng(seed, 1)
    if r.random() < 0.9:
        s["sh"].append(
            {
                "never": _pick(
                    r, ("Never smoker.", "Non-smoker.", "Has never smoked.", "Lifelong non-smoker.")
                ),
                "former": _pick(
                    r,
                    (
                        f"Former smoker, {f.pack_years} pack-years.",
                        f"Ex-smoker ({f.pack_years} pack-years), quit 10 years ago.",
                        f"Stopped smoking in 2015; {f.pack_years} pack-years before that.",
                        f"Ex-smoker, {f.pack_years} py.",
                    ),
                ),
                "current": _pick(
                    r,
                    (
                        f"Current smoker, {f.pack_years} pack-years.",
                        f"Smokes 20 a day; {f.pack_years} pack-years.",
                        f"Still smoking, {f.pack_years} pack-years.",
                        f"Current smoker ({f.pack_years} py).",
                    ),
                ),
            }[f.smoking]
        )

    r = _item_rng(seed, 2)
    if f.prior_cancer:
        site = _pick(r, _OWN_SITE_EN.get(f.prior_cancer, (f.prior_cancer + " cancer",)))
        treat = _TREATMENT_EN.get(f.prior_cancer, "treated")
        if o.remote_cancer:
            yrs = int(r.integers(12, 30))
            s["pmh"].append(
                _pick(
                    r,
                    (
                        f"History of {site}, treated {yrs} years ago, no recurrence since.",
                        f"{site[0].upper() + site[1:]} {treat} in {2026 - yrs}, "
                        "discharged from oncology follow-up.",
                        f"Remote history of {site} ({2026 - yrs}), in remission.",
                    ),
                )
            )
        else:
            s["pmh"].append(
                _pick(
                    r,
                    (
                        f"History of {site}, treated 3 years ago.",
                        f"Known {site}.",
                        f"Prior {site} resected.",
                        f"PMH: {site} {treat} 2022.",
                        f"Hx {site} {treat}, on surveillance.",
                        f"Under oncology follow-up for {site}.",
                    ),
                )
            )
    elif o.negate_cancer:
        s["pmh"].append(
            _pick(
                r,
                (
                    "No known malignancy.",
                    "No personal history of cancer.",
                    "Denies any history of malignancy.",
                    "No previous cancer.",
                ),
            )
        )

    sym = (
        (3, f.fever, ("fever", "fevers", "a temperature of 38.6"), "apyrexial"),
        (4, f.cough, ("cough", "a productive cough", "a dry cough"), "no cough"),
        (5, f.hemoptysis, ("hemoptysis", "coughing up blood", "blood-streaked sputum"), "no haemoptysis"),
        (6, f.weight_loss, ("weight loss", "losing weight", "weight loss of 6 kg"), "weight stable"),
    )
    for k, val, pos, neg in sym:
        r = _item_rng(seed, k)
        if val and r.random() < 0.9:
            w = _pick(r, pos)
            s["pc"].append(
                _pick(r, (f"Reports {w}.", f"{w[0].upper() + w[1:]} for two weeks.", f"Presents with {w}."))
            )
        elif not val and r.random() < 0.3:
            s["pc"].append(_pick(r, (f"Denies {pos[0]}.", f"No {pos[0]}.", f"{neg[0].upper() + neg[1:]}.")))

    r = _item_rng(seed, 7)
    if f.immunosuppressed and r.random() < 0.9:
        s["pmh"].append(
            _pick(
                r,
                (
                    "Immunosuppressed after kidney transplant.",
                    "On chemotherapy, immunocompromised.",
                    "Renal transplant on tacrolimus and prednisolone.",
                    "HIV with a low CD4 count.",
                    "On long-term high-dose steroids.",
                ),
            )
        )
    r = _item_rng(seed, 8)
    if f.tb_exposure and r.random() < 0.9:
        s["pmh"].append(
            _pick(
                r,
                (
                    "Prior TB exposure.",
                    "Lived in a histoplasmosis endemic area.",
                    "Enjoys caving.",
                    "Household TB contact as a child.",
                    "Grain farmer in the Ohio River valley.",
                ),
            )
        )
    elif not f.tb_exposure and r.random() < 0.15:
        s["pmh"].append("No TB contacts.")
    r = _item_rng(seed, 9)
    if f.family_history and r.random() < 0.85:
        rel = _pick(r, _REL_EN[:6])
        s["fh"].append(
            _pick(
                r,
                (
                    "Family history of lung cancer.",
                    f"{rel.capitalize()} had lung cancer.",
                    f"{rel.capitalize()} died of lung cancer.",
                    f"FHx: {rel} - lung ca.",
                ),
            )
        )
    r = _item_rng(seed, 10)
    if o.relative_cancer:
        rel = _pick(r, _REL_EN)
        site = _pick(r, _REL_SITE_EN.get(o.relative_cancer, (o.relative_cancer + " cancer",)))
        s["fh"].append(
            _pick(
                r,
                (
                    f"{rel.capitalize()} had {site}.",
                    f"Family history: {rel} with {site}.",
                    f"{rel.capitalize()} died of {site}.",
                    f"FHx {site} ({rel}).",
                    f"Her {rel} was treated for {site}."
                    if f.sex == "F"
                    else f"His {rel} was treated for {site}.",
                ),
            )
        )
    r = _item_rng(seed, 11)
    if f.recurrent_infection and r.random() < 0.9:
        s["pmh"].append(
            _pick(
                r, ("Recurrent pneumonia in the same lobe.", "Three chest infections this year, same lobe.")
            )
        )
    r = _item_rng(seed, 12)
    if f.course and r.random() < 0.85:
        s["inv"].append(
            _pick(
                r,
                {
                    "new": (
                        "New since the CT 4 weeks ago.",
                        "Appeared within 3 weeks.",
                        "Not seen on the prior CT.",
                    ),
                    "stable": (
                        "Stable for 2 years.",
                        "Unchanged since 2021.",
                        "No change over 3 years of follow-up.",
                    ),
                    "growing": (
                        "Slowly growing on serial CT.",
                        "Increased in size since last year.",
                        "Enlarging compared with the previous scan.",
                    ),
                    "rapid": (
                        "Rapidly enlarging over 6 weeks.",
                        "Doubled in size within a month.",
                        "Rapid growth, doubling time of 30 days.",
                    ),
                    "resolving": (
                        "Decreased after antibiotics.",
                        "Partial resolution after a course of antibiotics.",
                        "Smaller after treatment for pneumonia.",
                    ),
                }[f.course],
            )
        )
    r = _item_rng(seed, 13)
    if f.location and r.random() < 0.85:
        s["inv"].append(
            _pick(r, ("Central hilar mass on chest X-ray.", "Perihilar opacity on the CXR."))
            if f.location == "central"
            else _pick(r, ("Peripheral lesion on chest X-ray.", "Subpleural opacity on the CXR."))
        )
    r = _item_rng(seed, 14)
    if f.paraneoplastic and r.random() < 0.9:
        s["inv"].append(
            _pick(
                r,
                {
                    "siadh": ("Hyponatraemia (Na 124), SIADH suspected.", "Low sodium, likely SIADH."),
                    "cushing": (
                        "Cushingoid features with raised ACTH.",
                        "Ectopic Cushing syndrome suspected.",
                    ),
                    "lems": (
                        "Proximal weakness, Lambert-Eaton syndrome suspected.",
                        "Lambert-Eaton picture.",
                    ),
                    "hypercalcaemia": ("Hypercalcaemia, corrected calcium 3.1.", "Raised calcium on bloods."),
                }[f.paraneoplastic],
            )
        )
    r = _item_rng(seed, 15)
    if f.lymphadenopathy and r.random() < 0.85:
        s["inv"].append(
            _pick(r, ("Enlarged mediastinal lymph nodes on staging CT.", "Mediastinal lymphadenopathy."))
        )
    elif not f.lymphadenopathy and r.random() < 0.15:
        s["inv"].append("No mediastinal lymphadenopathy.")
    r = _item_rng(seed, 16)
    if not (f.fever or f.cough or f.hemoptysis or f.weight_loss) and r.random() < 0.4:
        s["pc"].append(
            _pick(
                r,
                ("Asymptomatic, incidental finding.", "Incidental finding on a cardiac CT.", "No symptoms."),
            )
        )
    r = _item_rng(seed, 17)
    if o.suspected:
        s["imp"].append(
            _pick(
                r,
                (
                    f"Lung nodule, {_pick(r, _SUSPECTED_EN)}.",
                    f"Impression: {_pick(r, _SUSPECTED_EN)}.",
                    f"Nodule - {_pick(r, _SUSPECTED_EN)}.",
                ),
            )
        )
    r = _item_rng(seed, 18)
    for k in r.permutation(len(_UNRELATED_EN))[: o.n_unrelated]:
        s["pmh"].append(_UNRELATED_EN[int(k)])
    r = _item_rng(seed, 0)
    s["demo"] = [
        _pick(
            r,
            (
                f"{f.age}-year-old {sexw} with a lung nodule.",
                f"{f.age} yo {f.sex}.",
                f"Patient is a {f.age}-year-old {sexw}.",
                f"{f.age}{f.sex}.",
                f"{'Mrs' if f.sex == 'F' else 'Mr'} X, {f.age} years old.",
            ),
        )
    ]
    return s


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 5 or not word.isalpha():
        return word
    i = int(rng.integers(1, len(word) - 2))
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind < 0.7:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _roughen_en(text: str, share: float, rng: np.random.Generator) -> str:
    """Abbreviations and typos in about ``share`` of the words."""
    if share <= 0:
        return text
    for full, short in _ABBREV_EN:
        if rng.random() < 0.5:
            text = text.replace(full, short)
    words = text.split(" ")
    return " ".join(_typo(w, rng) if rng.random() < share else w for w in words)


def _join(sents: list[str]) -> str:
    return " ".join(sents)


def _layout_en(form: str, s: dict[str, list[str]], f: PatientFacts, rng: np.random.Generator) -> str:
    demo = s["demo"][0]
    pc, pmh, sh, fh, inv, imp = (s[k] for k in ("pc", "pmh", "sh", "fh", "inv", "imp"))
    sexw = "woman" if f.sex == "F" else "man"
    if form in ("plain", "bullets"):
        body = [*pc, *pmh, *sh, *fh, *inv, *imp]
        order = rng.permutation(len(body))
        body = [body[int(i)] for i in order]
        if form == "bullets":
            return demo + "\n" + "\n".join(f"- {b}" for b in body)
        return demo + " " + _join(body)
    if form == "referral":
        doc = _pick(rng, ("Dr Patel", "Dr Smith", "Dr Chen", "Dr Okafor"))
        return (
            f"Dear {doc},\nRe: {f.age}-year-old {sexw}\n"
            f"Thank you for seeing this {f.age}-year-old {sexw} with a lung nodule on CT. "
            + _join([*pc, *inv])
            + ("\nBackground: " + _join(pmh) if pmh else "")
            + ("\n" + _join(sh + fh) if sh or fh else "")
            + ("\nQuery: " + _join(imp) if imp else "")
            + "\nYours sincerely,\nDr Jones (GP)"
        )
    if form == "ed":
        return (
            f"EMERGENCY DEPARTMENT NOTE\nPC: {_join(pc) or 'abnormal chest imaging'}\nHPI: {demo} "
            + _join(inv)
            + f"\nPMH: {_join(pmh) or 'nil significant'}\nSH: {_join(sh) or 'not recorded'}"
            + (f"\nFH: {_join(fh)}" if fh else "")
            + f"\nImp: {_join(imp) or 'lung nodule, outpatient CT follow-up'}"
        )
    if form == "consult":
        return (
            "Respiratory medicine consult\nReason for consult: pulmonary nodule on CT\n"
            f"History: {demo} {_join(pc + inv)}\nBackground: {_join(pmh) or 'nil'}\n"
            f"Social: {_join(sh) or 'n/a'}\nFamily: {_join(fh) or 'non-contributory'}\n"
            f"Assessment: {_join(imp) or 'nodule as above, see recommendations'}"
        )
    if form == "admission":
        return (
            f"ADMISSION H&P\nCC: {_pick(rng, ('cough', 'abnormal CT', 'breathlessness', 'chest pain'))}\n"
            f"HPI: {demo} {_join(pc + inv)}\nPMH: {_join(pmh) or 'none'}\n"
            f"Meds: {_pick(rng, ('see list', 'amlodipine, metformin', 'nil regular'))}\n"
            f"Allergies: {_pick(rng, ('NKDA', 'penicillin'))}\nSocial hx: {_join(sh) or 'not documented'}\n"
            f"Family hx: {_join(fh) or 'noncontributory'}\n"
            f"A/P: {_join(imp) or 'CT chest, review with results'}"
        )
    if form == "discharge":
        return (
            f"DISCHARGE SUMMARY\n{demo}\n"
            f"Admitted with {_pick(rng, ('chest pain', 'a fall', 'cough', 'pneumonia'))}. "
            f"Incidental lung nodule on CT. {_join(inv)}\nPresentation: {_join(pc) or 'as above'}\n"
            f"Background: {_join(pmh) or 'nil'} {_join(sh)}\n"
            + (f"Family: {_join(fh)}\n" if fh else "")
            + f"Discharge diagnosis: {_join(imp) or 'lung nodule for outpatient follow-up'}"
        )
    if form == "ct_request":
        return (
            f"CT CHEST REQUEST\nPatient: {f.age}{f.sex}\n"
            f"Clinical details: {_join(pc + inv) or 'nodule on CXR'}\n"
            f"Relevant history: {_join(pmh + sh + fh) or 'nil'}\n"
            f"Question: {_join(imp) or 'characterise nodule'}"
        )
    if form == "telephone":
        return (
            f"Telephone encounter. Spoke with the patient ({f.age}{f.sex}). "
            + _join([*pc, *pmh, *sh, *fh, *inv, *imp])
            + " Advised to attend for CT."
        )
    return (
        f"Nursing note: {demo} Obs stable. "
        + _join([*pc, *pmh, *sh, *fh, *inv, *imp])
        + " Patient settled, family updated."
    )


# --- Chinese items -------------------------------------------------------------------------------------


def _zh_items(f: PatientFacts, seed: int, o: NoteOptions) -> dict[str, list[str]]:
    s: dict[str, list[str]] = {k: [] for k in ("pc", "pmh", "sh", "fh", "inv", "imp")}
    r = _item_rng(seed, 1)
    if r.random() < 0.9:
        s["sh"].append(
            {
                "never": _pick(r, ("否认吸烟史。", "不吸烟。", "从不吸烟。")),
                "former": _pick(
                    r, (f"既往吸烟{f.pack_years}包年，已戒烟。", f"吸烟{f.pack_years}包年，戒烟5年。")
                ),
                "current": _pick(r, (f"吸烟{f.pack_years}包年，仍在吸烟。", f"现吸烟，{f.pack_years}包年。")),
            }[f.smoking]
        )
    r = _item_rng(seed, 2)
    if f.prior_cancer:
        site = _pick(r, _OWN_SITE_ZH.get(f.prior_cancer, ("恶性肿瘤",)))
        if o.remote_cancer:
            yrs = int(r.integers(12, 30))
            s["pmh"].append(
                _pick(r, (f"{yrs}年前行{site}手术，术后无复发。", f"既往{site}病史{yrs}年，已治愈。"))
            )
        else:
            s["pmh"].append(_pick(r, (f"既往{site}病史。", f"{site}术后3年。", f"{site}术后，定期复查。")))
    elif o.negate_cancer:
        s["pmh"].append(_pick(r, ("否认肿瘤病史。", "否认恶性肿瘤病史。", "无肿瘤病史。")))
    sym = (
        (3, f.fever, "发热"),
        (4, f.cough, "咳嗽"),
        (5, f.hemoptysis, "咯血"),
        (6, f.weight_loss, "体重下降"),
    )
    for k, val, zh in sym:
        r = _item_rng(seed, k)
        if val and r.random() < 0.9:
            s["pc"].append(_pick(r, (f"{zh}两周。", f"主诉{zh}。", f"近期{zh}。")))
        elif not val and r.random() < 0.3:
            s["pc"].append(f"否认{zh}。")
    r = _item_rng(seed, 7)
    if f.immunosuppressed and r.random() < 0.9:
        s["pmh"].append(_pick(r, ("肾移植术后，长期免疫抑制治疗。", "正在化疗中。", "长期服用激素治疗。")))
    r = _item_rng(seed, 8)
    if f.tb_exposure and r.random() < 0.9:
        s["pmh"].append(_pick(r, ("有结核接触史。", "既往肺结核病史。", "曾在真菌疫区生活。")))
    r = _item_rng(seed, 9)
    if f.family_history and r.random() < 0.85:
        s["fh"].append(_pick(r, ("父亲患肺癌。", "母亲肺癌去世。", "家族史：哥哥患肺癌。")))
    r = _item_rng(seed, 10)
    if o.relative_cancer:
        rel = _pick(r, _REL_ZH)
        site = _REL_SITE_ZH.get(o.relative_cancer, "恶性肿瘤")
        s["fh"].append(_pick(r, (f"{rel}患{site}。", f"家族史：{rel}{site}。", f"{rel}因{site}去世。")))
    r = _item_rng(seed, 11)
    if f.recurrent_infection and r.random() < 0.9:
        s["pmh"].append("反复肺炎，同一肺叶。")
    r = _item_rng(seed, 12)
    if f.course and r.random() < 0.85:
        s["inv"].append(
            _pick(
                r,
                {
                    "new": ("近期新出现。", "1月前CT未见。"),
                    "stable": ("随访两年稳定。", "与2年前比较无变化。"),
                    "growing": ("随访逐渐增大。", "较前增大。"),
                    "rapid": ("短期内迅速增大。", "6周内迅速增大。"),
                    "resolving": ("抗感染治疗后缩小。", "抗感染后明显吸收。"),
                }[f.course],
            )
        )
    r = _item_rng(seed, 13)
    if f.location and r.random() < 0.85:
        s["inv"].append("中央型肿物，位于肺门区。" if f.location == "central" else "周围型结节。")
    r = _item_rng(seed, 14)
    if f.paraneoplastic and r.random() < 0.9:
        s["inv"].append(
            {
                "siadh": "低钠血症，考虑抗利尿激素分泌异常。",
                "cushing": "库欣综合征表现。",
                "lems": "近端肌无力，考虑Lambert-Eaton综合征。",
                "hypercalcaemia": "高钙血症。",
            }[f.paraneoplastic]
        )
    r = _item_rng(seed, 15)
    if f.lymphadenopathy and r.random() < 0.85:
        s["inv"].append("纵隔淋巴结肿大。")
    elif not f.lymphadenopathy and r.random() < 0.15:
        s["inv"].append("纵隔未见肿大淋巴结。")
    r = _item_rng(seed, 16)
    if not (f.fever or f.cough or f.hemoptysis or f.weight_loss) and r.random() < 0.4:
        s["pc"].append(_pick(r, ("体检发现，无症状。", "无明显症状，体检CT发现。")))
    r = _item_rng(seed, 17)
    if o.suspected:
        s["imp"].append(f"肺结节，{_pick(r, _SUSPECTED_ZH)}。")
    r = _item_rng(seed, 18)
    for k in r.permutation(len(_UNRELATED_ZH))[: o.n_unrelated]:
        s["pmh"].append(_UNRELATED_ZH[int(k)])
    r = _item_rng(seed, 0)
    sex = "女" if f.sex == "F" else "男"
    s["demo"] = [_pick(r, (f"患者{sex}，{f.age}岁。", f"{sex}，{f.age}岁。", f"{sex}/{f.age}岁。"))]
    return s


def _layout_zh(form: str, s: dict[str, list[str]], rng: np.random.Generator) -> str:
    demo = s["demo"][0]
    pc, pmh, sh, fh, inv, imp = ("".join(s[k]) for k in ("pc", "pmh", "sh", "fh", "inv", "imp"))
    if form == "plain":
        body = [*s["pc"], *s["pmh"], *s["sh"], *s["fh"], *s["inv"], *s["imp"]]
        order = rng.permutation(len(body))
        return demo + "".join(body[int(i)] for i in order)
    if form == "outpatient":
        return (
            f"门诊病历\n{demo}\n主诉：{pc or '体检发现肺结节。'}\n现病史：{inv or '外院CT示肺结节。'}\n"
            f"既往史：{pmh or '无特殊。'}\n个人史：{sh or '无特殊。'}\n家族史：{fh or '无特殊。'}\n"
            f"初步诊断：{imp or '肺结节。'}"
        )
    if form == "emergency":
        return (
            f"急诊记录\n{demo}{pc or '因胸痛就诊。'}{inv}\n既往史：{pmh or '无。'}\n"
            f"个人史：{sh or '不详。'}\n{('家族史：' + fh) if fh else ''}\n"
            f"急诊诊断：{imp or '肺结节，建议门诊随访。'}"
        )
    if form == "admission":
        return (
            f"入院记录\n{demo}\n主诉：{pc or '发现肺结节。'}\n现病史：{inv or '胸部CT发现肺结节。'}\n"
            f"既往史：{pmh or '否认特殊病史。'}\n个人史：{sh or '无特殊。'}\n家族史：{fh or '无特殊。'}\n"
            f"入院诊断：{imp or '肺结节待查。'}"
        )
    if form == "discharge":
        return (
            f"出院小结\n{demo}\n入院情况：{pc or '发现肺结节入院。'}{inv}\n既往史：{pmh}{sh}{fh}\n"
            f"出院诊断：{imp or '肺结节，门诊随访。'}"
        )
    if form == "consult":
        return (
            f"会诊记录\n会诊目的：肺结节性质评估。\n病史摘要：{demo}{pc}{inv}{pmh}{sh}{fh}\n"
            f"会诊意见：{imp or '建议胸部薄层CT复查。'}"
        )
    return (
        f"CT申请单\n{demo}\n病史摘要：{pc}{inv}{pmh}{sh}{fh}\n"
        f"临床诊断：{imp or '肺结节。'}\n检查目的：明确结节性质。"
    )


def write_note_v4(f: PatientFacts, seed: int, *, language: str, options: NoteOptions) -> str:
    """Write a note in a document form with traps (deterministic in ``seed``, ``f`` and ``options``).

    Each fact's sentence comes from its own random stream, so two calls that differ in one fact (or one
    option) give notes that differ only in that statement.
    """
    rng = np.random.default_rng([seed, 39])
    if language == "zh":
        return _layout_zh(options.form, _zh_items(f, seed, options), rng)
    text = _layout_en(options.form, _en_items(f, seed, options), f, rng)
    return _roughen_en(text, options.typos, np.random.default_rng([seed, 38]))
