"""Synthetic cases for the fused diagnosis model: diagnosis -> patient facts + free-text note + nodule crop.

Each case samples a diagnosis (:data:`~radiology_app.diagnosis.classes.CLASS_NAMES`), then patient facts
from class-conditional distributions loosely following the clinical reference's differential table (§7),
writes them as a note (English or Chinese, several styles, negations, irrelevant sentences, facts left
out at random) and renders a nodule phenotype drawn from the same table. The pairs are built so that neither
modality alone suffices:

* metastasis vs a solid primary: same round solid image; the note's known primary cancer separates them;
* granuloma vs hamartoma vs intrapulmonary lymph node: similar incidental, stable notes; the image's
  calcification pattern, fat and lentiform juxtapleural shape separate them;
* infection vs subsolid adenocarcinoma: both subsolid / irregular on the image; fever, immune status and
  a rapid course (or resolution) in the note separate them;
* squamous vs small cell: both central masses in heavy smokers. The note may add what separates them
  clinically (small cell: heavier current smoking, a neuroendocrine paraneoplastic syndrome such as SIADH,
  Cushing or Lambert-Eaton, doubling within weeks, mediastinal lymphadenopathy; squamous: hypercalcaemia,
  haemoptysis) and the image what separates them radiologically (squamous: cavitation with a thick wall,
  spiculation; small cell: a lobulated solid mass with enlarged lymph nodes beside it). Each is stated or
  visible in only part of the cases, so only the fused evidence separates most of them;
* hamartoma: macroscopic fat and popcorn calcification large enough to survive partial volume.

``domain="site_b"`` produces a shifted domain for the site-adaptation demonstration: other phrasings and
abbreviations (most outside the cue lexicon), more Chinese notes with other wording, and noisier,
thicker-slice images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from radiology_app.diagnosis.classes import CLASS_NAMES
from radiology_app.diagnosis.phantom import NodulePhenotype
from radiology_app.diagnosis.training.note_forms import NoteOptions, draw_options, write_note_v4

DOMAINS = ("base", "site_b")

#: Version of the generator and phantom; part of every cache file name, so cases rendered by an earlier
#: generator are never reused (2: location, paraneoplastic syndromes, staging nodes, rapid growth;
#: larger hamartoma fat and popcorn calcification; lymph nodes beside small cell carcinomas; 3: the
#: phenotype refinement of :func:`refine_v3` applied on top of version 2).
GENERATOR_VERSION = 4

#: Share of generator-version-4 cases (base domain) whose crop comes from the segmentation phantom
#: outlined by the shipped U-Net (:mod:`radiology_app.diagnosis.training.seg_crops`).
SEGMENTATION_RENDERER_SHARE = 0.3
#: Renderers of a case's crop: this package's phantom, or the segmentation phantom through the
#: pipeline's crop path.
RENDERERS = ("diagnosis", "segmentation")


@dataclass(frozen=True)
class PatientFacts:
    """The clinical facts behind a synthetic note (``None`` = not applicable / unknown)."""

    age: int
    sex: str
    smoking: str  # never / former / current
    pack_years: int
    prior_cancer: str | None
    fever: bool
    cough: bool
    hemoptysis: bool
    weight_loss: bool
    immunosuppressed: bool
    tb_exposure: bool
    family_history: bool
    course: str | None  # new / stable / growing / rapid / resolving
    recurrent_infection: bool
    location: str | None = None  # central / peripheral
    paraneoplastic: str | None = None  # siadh / cushing / lems / hypercalcaemia
    lymphadenopathy: bool = False


@dataclass(frozen=True)
class SyntheticCase:
    """One synthetic case.

    Attributes
    ----------
    label
        Index into :data:`CLASS_NAMES`.
    facts
        The sampled patient facts.
    note
        The free-text note.
    language
        ``"en"`` or ``"zh"``.
    phenotype
        The nodule's phenotype.
    noise_hu
        Image noise, HU.
    slice_thickness_mm
        Slice thickness, mm.
    seed
        Seed for rendering the crop (:func:`render_case`).
    renderer
        ``"diagnosis"`` (:mod:`radiology_app.diagnosis.phantom`) or ``"segmentation"`` (the segmentation
        phantom outlined by the U-Net and cropped like the pipeline).
    note_seed, note_options
        How a version-4 note was written (:func:`~radiology_app.diagnosis.training.note_forms.write_note_v4`);
        ``note_options`` is ``None`` for earlier versions and the site-B domain.
    variant
        For a counterfactual twin (:func:`counterfactual_twin`): what was changed in the note.
    twin_of
        For a twin: the index of its original case in the list it was made from; -1 otherwise.
    """

    label: int
    facts: PatientFacts
    note: str
    language: str
    phenotype: NodulePhenotype
    noise_hu: float
    slice_thickness_mm: float
    seed: int
    renderer: str = "diagnosis"
    note_seed: int = 0
    note_options: NoteOptions | None = None
    variant: str = ""
    twin_of: int = -1

    @property
    def diagnosis(self) -> str:
        """Class name of the label."""
        return CLASS_NAMES[self.label]


# name: (p never, former, current), pack-years range, p prior cancer, fever, cough, hemoptysis, weight loss,
# immunosuppressed, tb exposure, family history, recurrent infection, course probabilities, age range,
# p female; optional: p central location, paraneoplastic syndrome probabilities, p mediastinal
# lymphadenopathy
_CLINICAL: dict[str, dict[str, object]] = {
    "adenocarcinoma": dict(
        smoke=(0.4, 0.3, 0.3),
        py=(5, 40),
        prior=0.06,
        fever=0.04,
        cough=0.3,
        hemo=0.08,
        wl=0.2,
        immuno=0.05,
        tb=0.08,
        fam=0.2,
        recur=0.03,
        course={"growing": 0.45, "stable": 0.05, "new": 0.05},
        age=(45, 82),
        female=0.55,
        central=0.1,
        nodes=0.1,
    ),
    "squamous_cell_carcinoma": dict(
        smoke=(0.03, 0.47, 0.5),
        py=(25, 80),
        prior=0.06,
        fever=0.08,
        cough=0.6,
        hemo=0.4,
        wl=0.35,
        immuno=0.05,
        tb=0.08,
        fam=0.15,
        recur=0.05,
        course={"growing": 0.4, "rapid": 0.08},
        age=(55, 85),
        female=0.3,
        central=0.65,
        para={"hypercalcaemia": 0.3},
        nodes=0.2,
    ),
    "small_cell_carcinoma": dict(
        smoke=(0.02, 0.18, 0.8),
        py=(40, 110),
        prior=0.06,
        fever=0.08,
        cough=0.6,
        hemo=0.1,
        wl=0.55,
        immuno=0.05,
        tb=0.08,
        fam=0.15,
        recur=0.05,
        course={"rapid": 0.45, "growing": 0.2},
        age=(55, 85),
        female=0.4,
        central=0.8,
        para={"siadh": 0.3, "cushing": 0.08, "lems": 0.07},
        nodes=0.55,
    ),
    "carcinoid": dict(
        smoke=(0.7, 0.2, 0.1),
        py=(1, 15),
        prior=0.04,
        fever=0.1,
        cough=0.5,
        hemo=0.4,
        wl=0.05,
        immuno=0.05,
        tb=0.08,
        fam=0.05,
        recur=0.5,
        course={"growing": 0.2, "stable": 0.2},
        age=(28, 65),
        female=0.6,
        central=0.6,
    ),
    "metastasis": dict(
        smoke=(0.45, 0.35, 0.2),
        py=(5, 40),
        prior=0.92,
        fever=0.05,
        cough=0.2,
        hemo=0.05,
        wl=0.3,
        immuno=0.15,
        tb=0.05,
        fam=0.1,
        recur=0.03,
        course={"new": 0.3, "growing": 0.3},
        age=(35, 82),
        female=0.5,
        central=0.05,
        para={"hypercalcaemia": 0.03},
        nodes=0.05,
    ),
    "granuloma": dict(
        smoke=(0.5, 0.3, 0.2),
        py=(1, 30),
        prior=0.08,
        fever=0.05,
        cough=0.15,
        hemo=0.03,
        wl=0.03,
        immuno=0.1,
        tb=0.6,
        fam=0.1,
        recur=0.05,
        course={"stable": 0.6},
        age=(30, 82),
        female=0.5,
    ),
    "hamartoma": dict(
        smoke=(0.5, 0.3, 0.2),
        py=(1, 30),
        prior=0.08,
        fever=0.03,
        cough=0.1,
        hemo=0.02,
        wl=0.02,
        immuno=0.05,
        tb=0.1,
        fam=0.1,
        recur=0.05,
        course={"stable": 0.5, "growing": 0.15},
        age=(35, 78),
        female=0.5,
    ),
    "infection": dict(
        smoke=(0.45, 0.3, 0.25),
        py=(1, 40),
        prior=0.1,
        fever=0.8,
        cough=0.8,
        hemo=0.15,
        wl=0.1,
        immuno=0.35,
        tb=0.12,
        fam=0.1,
        recur=0.1,
        course={"new": 0.6, "resolving": 0.25},
        age=(20, 85),
        female=0.5,
        central=0.1,
        nodes=0.1,
    ),
    "intrapulmonary_lymph_node": dict(
        smoke=(0.45, 0.35, 0.2),
        py=(1, 40),
        prior=0.08,
        fever=0.03,
        cough=0.1,
        hemo=0.02,
        wl=0.02,
        immuno=0.05,
        tb=0.1,
        fam=0.1,
        recur=0.03,
        course={"stable": 0.55},
        age=(40, 80),
        female=0.5,
    ),
}

_CANCER_SITES = ("breast", "colon", "kidney", "melanoma", "head_neck", "osteosarcoma", "thyroid")


def _sample_facts(name: str, rng: np.random.Generator) -> PatientFacts:
    c = _CLINICAL[name]
    smoke_p = np.asarray(c["smoke"], dtype=float)
    smoking = ("never", "former", "current")[int(rng.choice(3, p=smoke_p / smoke_p.sum()))]
    py_range: tuple[int, int] = c["py"]  # type: ignore[assignment]
    lo, hi = py_range
    py = 0 if smoking == "never" else int(rng.integers(lo, hi + 1))
    course_p: dict[str, float] = c["course"]  # type: ignore[assignment]
    names = [*course_p.keys(), "none"]
    probs = np.asarray([*course_p.values(), max(0.0, 1.0 - sum(course_p.values()))])
    course = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    age_range: tuple[int, int] = c["age"]  # type: ignore[assignment]
    a_lo, a_hi = age_range

    def flag(key: str) -> bool:
        return bool(rng.random() < float(c[key]))  # type: ignore[arg-type]

    p_central = float(c.get("central", 0.05))  # type: ignore[arg-type]
    location = ("central" if rng.random() < p_central else "peripheral") if rng.random() < 0.7 else None
    para_p: dict[str, float] = c.get("para", {})  # type: ignore[assignment]
    para = None
    u = rng.random()
    for syndrome, p in para_p.items():
        if u < p:
            para = syndrome
            break
        u -= p
    nodes = bool(rng.random() < float(c.get("nodes", 0.02)))  # type: ignore[arg-type]
    return PatientFacts(
        age=int(rng.integers(a_lo, a_hi + 1)),
        sex="F" if rng.random() < float(c["female"]) else "M",  # type: ignore[arg-type]
        smoking=smoking,
        pack_years=py,
        prior_cancer=str(rng.choice(_CANCER_SITES)) if flag("prior") else None,
        fever=flag("fever"),
        cough=flag("cough"),
        hemoptysis=flag("hemo"),
        weight_loss=flag("wl"),
        immunosuppressed=flag("immuno"),
        tb_exposure=flag("tb"),
        family_history=flag("fam"),
        course=None if course == "none" else course,
        recurrent_infection=flag("recur"),
        location=location,
        paraneoplastic=para,
        lymphadenopathy=nodes,
    )


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_phenotype(name: str, rng: np.random.Generator) -> NodulePhenotype:
    """Sample a nodule phenotype for a diagnosis (imaging columns of the clinical reference's table)."""
    r = rng.random()
    if name == "adenocarcinoma":
        if r < 0.35:
            d = _u(rng, 8, 26)
            return NodulePhenotype(
                "part_solid",
                d,
                str(rng.choice(["lobulated", "spiculated", "smooth"])),
                solid_diameter_mm=d * _u(rng, 0.25, 0.6),
            )
        if r < 0.55:
            return NodulePhenotype("ground_glass", _u(rng, 8, 24), str(rng.choice(["smooth", "lobulated"])))
        return NodulePhenotype(
            "solid", _u(rng, 8, 26), str(rng.choice(["spiculated", "lobulated", "smooth"], p=[0.5, 0.3, 0.2]))
        )
    if name == "squamous_cell_carcinoma":
        cav = _u(rng, 3, 8) if r < 0.55 else 0.0
        return NodulePhenotype(
            "solid",
            _u(rng, 14, 30),
            str(rng.choice(["spiculated", "lobulated"], p=[0.65, 0.35])),
            cavity_wall_mm=cav,
            adjacent_nodes=1 if rng.random() < 0.12 else 0,
        )
    if name == "small_cell_carcinoma":
        return NodulePhenotype(
            "solid",
            _u(rng, 15, 30),
            str(rng.choice(["lobulated", "smooth", "spiculated"], p=[0.6, 0.3, 0.1])),
            adjacent_nodes=int(rng.choice([0, 1, 2], p=[0.4, 0.35, 0.25])),
        )
    if name == "carcinoid":
        cal = str(rng.choice(["punctate", "eccentric"])) if r < 0.3 else "none"
        return NodulePhenotype(
            "solid",
            _u(rng, 8, 20),
            str(rng.choice(["smooth", "lobulated"])),
            calcification=cal,
            elongation=_u(rng, 1.3, 1.8),
        )
    if name == "metastasis":
        cav = _u(rng, 1.5, 3) if r < 0.08 else 0.0
        return NodulePhenotype(
            "solid",
            _u(rng, 5, 20),
            "smooth",
            cavity_wall_mm=cav,
            elongation=_u(rng, 1.0, 1.15),
            juxtapleural=bool(rng.random() < 0.2),
        )
    if name == "granuloma":
        cal = str(rng.choice(["central", "diffuse", "laminated"])) if r < 0.65 else "none"
        return NodulePhenotype(
            "solid", _u(rng, 4, 15), "smooth", calcification=cal, elongation=_u(rng, 1.0, 1.2)
        )
    if name == "hamartoma":
        fat = bool(rng.random() < 0.75)
        cal = "popcorn" if rng.random() < 0.4 else "none"
        return NodulePhenotype(
            "solid", _u(rng, 8, 25), str(rng.choice(["smooth", "lobulated"])), calcification=cal, fat=fat
        )
    if name == "infection":
        if r < 0.4:
            d = _u(rng, 10, 28)
            return NodulePhenotype(
                "part_solid",
                d,
                str(rng.choice(["lobulated", "spiculated", "smooth"])),
                solid_diameter_mm=d * _u(rng, 0.3, 0.6),
            )
        if r < 0.6:
            return NodulePhenotype("ground_glass", _u(rng, 10, 26), str(rng.choice(["smooth", "lobulated"])))
        cav = _u(rng, 1.5, 4) if rng.random() < 0.35 else 0.0
        return NodulePhenotype(
            "solid", _u(rng, 8, 26), str(rng.choice(["lobulated", "spiculated"])), cavity_wall_mm=cav
        )
    if name == "intrapulmonary_lymph_node":
        return NodulePhenotype(
            "solid", _u(rng, 4, 11), "smooth", elongation=_u(rng, 1.6, 2.5), juxtapleural=True
        )
    raise ValueError(f"unknown diagnosis {name!r}")


# --- notes --------------------------------------------------------------------------------------------

_IRRELEVANT_EN = (
    "Appendectomy in 1998.",
    "Allergic to penicillin.",
    "Hypertension on amlodipine.",
    "Lives with spouse.",
    "Type 2 diabetes, well controlled.",
    "Works as a teacher.",
    "Knee replacement 2015.",
    "Referred by the GP.",
    "Has two dogs.",
    "Hypothyroidism on levothyroxine.",
    "Cataract surgery last year.",
)
_IRRELEVANT_ZH = (
    "高血压病史10年。",
    "青霉素过敏。",
    "阑尾切除术后。",
    "2型糖尿病，血糖控制可。",
    "退休教师。",
    "膝关节置换术后。",
    "甲状腺功能减退，口服优甲乐。",
    "睡眠饮食可。",
)
_SITE_EN = {
    "breast": "breast cancer",
    "colon": "colon cancer",
    "kidney": "renal cell carcinoma",
    "melanoma": "melanoma",
    "head_neck": "head and neck cancer",
    "osteosarcoma": "osteosarcoma",
    "thyroid": "thyroid cancer",
}
_SITE_ZH = {
    "breast": "乳腺癌",
    "colon": "结肠癌",
    "kidney": "肾癌",
    "melanoma": "黑色素瘤",
    "head_neck": "鼻咽癌",
    "osteosarcoma": "骨肉瘤",
    "thyroid": "甲状腺癌",
}
_SITE_B_EN = {
    "breast": "ca breast s/p mastectomy",
    "colon": "CRC s/p hemicolectomy",
    "kidney": "RCC s/p nephrectomy",
    "melanoma": "Clark level IV skin lesion excised",
    "head_neck": "laryngeal SCC s/p chemoradiation",
    "osteosarcoma": "femoral bone sarcoma s/p resection",
    "thyroid": "papillary thyroid ca s/p thyroidectomy",
}
_SITE_B_ZH = {
    "breast": "乳腺Ca术后",
    "colon": "结肠Ca根治术后",
    "kidney": "肾Ca切除术后",
    "melanoma": "足底恶黑切除术后",
    "head_neck": "鼻咽Ca放化疗后",
    "osteosarcoma": "股骨肉瘤术后",
    "thyroid": "甲状腺乳头状Ca术后",
}


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _en_sentences(f: PatientFacts, rng: np.random.Generator, site_b: bool) -> list[str]:
    out: list[str] = []
    mention_neg = 0.35

    def maybe(p: float) -> bool:
        return bool(rng.random() < p)

    # smoking
    if maybe(0.9):
        if site_b:
            out.append(
                {
                    "never": _pick(rng, ("Lifelong abstainer from tobacco.", "Tobacco: nil.")),
                    "former": f"Quit tobacco years ago, {f.pack_years} pk yrs.",
                    "current": f"Tobacco: still {max(1, f.pack_years // 30)} ppd, "
                    f"{f.pack_years} pk yrs total.",
                }[f.smoking]
            )
        else:
            out.append(
                {
                    "never": _pick(rng, ("Never smoker.", "Non-smoker.", "Has never smoked.")),
                    "former": _pick(
                        rng,
                        (
                            f"Former smoker, {f.pack_years} pack-years.",
                            f"Ex-smoker ({f.pack_years} pack-years), quit 10 years ago.",
                        ),
                    ),
                    "current": _pick(
                        rng,
                        (
                            f"Current smoker, {f.pack_years} pack-years.",
                            f"Smokes 20 a day; {f.pack_years} pack-years.",
                        ),
                    ),
                }[f.smoking]
            )
    if f.prior_cancer and maybe(0.92):
        site = (_SITE_B_EN if site_b else _SITE_EN)[f.prior_cancer]
        out.append(
            f"PMHx: {site}."
            if site_b
            else _pick(
                rng, (f"History of {site}, treated 3 years ago.", f"Known {site}.", f"Prior {site} resected.")
            )
        )
    elif not f.prior_cancer and maybe(mention_neg):
        out.append("No known malignancy." if not site_b else "Onc hx nil.")
    sym = [
        ("apyrexial", f.fever, "fever", "pyrexial to 38.8 with rigors"),
        ("Chest clear, nil sputum", f.cough, "cough", "productive sputum for weeks"),
        ("Sputum never blood-tinged", f.hemoptysis, "hemoptysis", "some blood-tinged sputum"),
        ("Wt steady", f.weight_loss, "weight loss", "unintentional wt drop of 6 kg"),
    ]
    for neg_b, val, en, en_b in sym:
        if val and maybe(0.9):
            out.append(
                en_b.capitalize() + "."
                if site_b
                else _pick(
                    rng, (f"Reports {en}.", f"{en.capitalize()} for two weeks.", f"Presents with {en}.")
                )
            )
        elif not val and maybe(mention_neg):
            out.append(f"{neg_b.capitalize()}." if site_b else _pick(rng, (f"Denies {en}.", f"No {en}.")))
    if f.immunosuppressed and maybe(0.9):
        out.append(
            _pick(rng, ("On tacrolimus after renal tx.", "Receiving FOLFOX."))
            if site_b
            else _pick(
                rng, ("Immunosuppressed after kidney transplant.", "On chemotherapy, immunocompromised.")
            )
        )
    if f.tb_exposure and maybe(0.9):
        out.append(
            _pick(rng, ("IGRA positive.", "Grew up in the Mississippi valley."))
            if site_b
            else _pick(
                rng, ("Prior TB exposure.", "Lived in a histoplasmosis endemic area.", "Enjoys caving.")
            )
        )
    elif not f.tb_exposure and maybe(mention_neg * 0.5):
        out.append("No TB contacts." if not site_b else "IGRA negative.")
    if f.family_history and maybe(0.8):
        out.append("Family history of lung cancer." if not site_b else "FHx: father d. lung ca.")
    if f.recurrent_infection and maybe(0.9):
        out.append(
            "Recurrent pneumonia in the same lobe." if not site_b else "Several chest infections, same lobe."
        )
    if f.course and maybe(0.85):
        if site_b:
            out.append(
                {
                    "new": "Not on the CT from 6 weeks ago.",
                    "stable": "No interval change vs CT 2y prior.",
                    "growing": "Bigger than on prior imaging.",
                    "rapid": "Twice the size vs 5 wks ago.",
                    "resolving": "Smaller post abx.",
                }[f.course]
            )
        else:
            out.append(
                {
                    "new": _pick(rng, ("New since the CT 4 weeks ago.", "Appeared within 3 weeks.")),
                    "stable": _pick(rng, ("Stable for 2 years.", "Unchanged since 2021.")),
                    "growing": _pick(
                        rng, ("Slowly growing on serial CT.", "Increased in size since last year.")
                    ),
                    "rapid": _pick(
                        rng, ("Rapidly enlarging over 6 weeks.", "Doubled in size within a month.")
                    ),
                    "resolving": "Decreased after antibiotics.",
                }[f.course]
            )
    out.extend(_en_staging(f, rng, site_b, mention_neg))
    if not (f.fever or f.cough or f.hemoptysis or f.weight_loss) and maybe(0.4):
        out.append("Asymptomatic, incidental finding." if not site_b else "Found on a cardiac CT.")
    return out


_PARA_EN = {
    "siadh": ("Hyponatraemia (Na 124), SIADH suspected.", "Low sodium, likely SIADH."),
    "cushing": ("Cushingoid features with raised ACTH.", "Ectopic Cushing syndrome suspected."),
    "lems": ("Proximal weakness, Lambert-Eaton syndrome suspected.", "Lambert-Eaton myasthenic picture."),
    "hypercalcaemia": ("Hypercalcaemia, corrected calcium 3.1.", "Raised calcium on bloods."),
}
_PARA_B_EN = {
    "siadh": "Serum Na 124 mmol/L, urine osm high.",
    "cushing": "Cortisol raised, moon facies.",
    "lems": "Proximal myopathy, VGCC antibodies +.",
    "hypercalcaemia": "Adj Ca 3.05.",
}
_PARA_ZH = {
    "siadh": "低钠血症，考虑抗利尿激素分泌异常。",
    "cushing": "库欣综合征表现。",
    "lems": "近端肌无力，考虑Lambert-Eaton综合征。",
    "hypercalcaemia": "高钙血症。",
}
_PARA_B_ZH = {
    "siadh": "血钠124。",
    "cushing": "皮质醇升高。",
    "lems": "VGCC抗体阳性。",
    "hypercalcaemia": "血钙3.1。",
}


def _en_staging(f: PatientFacts, rng: np.random.Generator, site_b: bool, mention_neg: float) -> list[str]:
    """Location on the chest film, paraneoplastic syndromes and staging nodes (English)."""
    out: list[str] = []
    if f.location and rng.random() < 0.85:
        if site_b:
            out.append(
                "Lesion abutting the hilum." if f.location == "central" else "Out in the lung periphery."
            )
        elif f.location == "central":
            out.append(_pick(rng, ("Central hilar mass on chest X-ray.", "Perihilar opacity on the CXR.")))
        else:
            out.append(_pick(rng, ("Peripheral lesion on chest X-ray.", "Subpleural opacity on the CXR.")))
    if f.paraneoplastic and rng.random() < 0.9:
        out.append(_PARA_B_EN[f.paraneoplastic] if site_b else _pick(rng, _PARA_EN[f.paraneoplastic]))
    if f.lymphadenopathy and rng.random() < 0.85:
        out.append(
            "Bulky N2 disease on PET."
            if site_b
            else _pick(
                rng, ("Enlarged mediastinal lymph nodes on staging CT.", "Mediastinal lymphadenopathy.")
            )
        )
    elif not f.lymphadenopathy and rng.random() < mention_neg * 0.5:
        out.append("N0 on PET." if site_b else "No mediastinal lymphadenopathy.")
    return out


def _zh_sentences(f: PatientFacts, rng: np.random.Generator, site_b: bool) -> list[str]:
    out: list[str] = []

    def maybe(p: float) -> bool:
        return bool(rng.random() < p)

    if maybe(0.9):
        if site_b:
            out.append(
                {
                    "never": "无烟草嗜好。",
                    "former": f"烟龄{f.pack_years}包年，已停。",
                    "current": f"嗜烟，{f.pack_years}包年。",
                }[f.smoking]
            )
        else:
            out.append(
                {
                    "never": "否认吸烟史。",
                    "former": f"既往吸烟{f.pack_years}包年，已戒烟。",
                    "current": f"吸烟{f.pack_years}包年，仍在吸烟。",
                }[f.smoking]
            )
    if f.prior_cancer and maybe(0.92):
        out.append(
            f"既往{(_SITE_B_ZH if site_b else _SITE_ZH)[f.prior_cancer]}" + ("。" if site_b else "病史。")
        )
    elif not f.prior_cancer and maybe(0.35):
        out.append("否认肿瘤病史。")
    sym = [
        (f.fever, "发热", "体温38.9℃"),
        (f.cough, "咳嗽", "咳痰"),
        (f.hemoptysis, "咯血", "痰中见血丝"),
        (f.weight_loss, "体重下降", "近期消瘦明显"),
    ]
    for val, zh, zh_b in sym:
        if val and maybe(0.9):
            out.append(f"{zh_b}。" if site_b else _pick(rng, (f"{zh}两周。", f"主诉{zh}。")))
        elif not val and maybe(0.35):
            out.append(f"否认{zh}。")
    if f.immunosuppressed and maybe(0.9):
        out.append("肾移植术后服他克莫司。" if site_b else "肾移植术后，长期免疫抑制治疗。")
    if f.tb_exposure and maybe(0.9):
        out.append("IGRA阳性。" if site_b else "有结核接触史。")
    if f.family_history and maybe(0.8):
        out.append("父亲患肺癌。")
    if f.recurrent_infection and maybe(0.9):
        out.append("同一部位多次肺部感染。" if site_b else "反复肺炎，同一肺叶。")
    if f.course and maybe(0.85):
        out.append(
            (
                {
                    "new": "6周前CT未见。",
                    "stable": "与两年前CT对比大小一致。",
                    "growing": "较前片明显变大。",
                    "rapid": "5周内体积翻倍。",
                    "resolving": "抗感染后较前变小。",
                }
                if site_b
                else {
                    "new": "近期新出现。",
                    "stable": "随访两年稳定。",
                    "growing": "随访逐渐增大。",
                    "rapid": "短期内迅速增大。",
                    "resolving": "抗感染治疗后缩小。",
                }
            )[f.course]
        )
    if f.location and maybe(0.85):
        central = f.location == "central"
        if site_b:
            out.append("靠近肺门。" if central else "位于肺外带。")
        else:
            out.append("中央型肿物，位于肺门区。" if central else "周围型结节。")
    if f.paraneoplastic and maybe(0.9):
        out.append((_PARA_B_ZH if site_b else _PARA_ZH)[f.paraneoplastic])
    if f.lymphadenopathy and maybe(0.85):
        out.append("PET示N2淋巴结高代谢。" if site_b else "纵隔淋巴结肿大。")
    elif not f.lymphadenopathy and maybe(0.175):
        out.append("PET未见淋巴结转移征象。" if site_b else "纵隔未见肿大淋巴结。")
    if not (f.fever or f.cough or f.hemoptysis or f.weight_loss) and maybe(0.4):
        out.append("体检发现，无症状。" if not site_b else "心脏CT时发现。")
    return out


def write_note(f: PatientFacts, rng: np.random.Generator, *, language: str, domain: str = "base") -> str:
    """Write the facts as a free-text note.

    Parameters
    ----------
    f
        The facts.
    rng
        Random generator (style, order, omissions).
    language
        ``"en"`` or ``"zh"``.
    domain
        ``"base"`` or ``"site_b"`` (other phrasings).

    Returns
    -------
    str
        The note; may be empty (about 4 % of base notes, to train the missing-note case).
    """
    site_b = domain == "site_b"
    if not site_b and rng.random() < 0.04:
        return ""
    if language == "zh":
        sents = _zh_sentences(f, rng, site_b)
        head = (
            f"{'女' if f.sex == 'F' else '男'}/{f.age}。"
            if site_b
            else f"患者{'女' if f.sex == 'F' else '男'}，{f.age}岁。"
        )
        irr = list(_IRRELEVANT_ZH)
    else:
        sents = _en_sentences(f, rng, site_b)
        sexw = "woman" if f.sex == "F" else "man"
        head = (
            f"{f.sex}/{f.age}."
            if site_b
            else _pick(
                rng,
                (
                    f"{f.age}-year-old {sexw} with a lung nodule.",
                    f"{f.age} yo {'F' if f.sex == 'F' else 'M'}.",
                    f"Patient is a {f.age}-year-old {sexw}.",
                ),
            )
        )
        irr = list(_IRRELEVANT_EN)
    order = rng.permutation(len(sents))
    body = [sents[i] for i in order]
    for _ in range(int(rng.integers(0, 3))):
        body.insert(int(rng.integers(0, len(body) + 1)), _pick(rng, irr))
    style = rng.random()
    if language == "en" and not site_b and style < 0.25:
        return head + "\n" + "\n".join(f"- {s}" for s in body)
    joiner = "" if language == "zh" else " "
    return head + joiner + joiner.join(body)


def refine_v3(
    name: str, facts: PatientFacts, phenotype: NodulePhenotype, rng: np.random.Generator
) -> tuple[PatientFacts, NodulePhenotype]:
    """Generator version 3: move version 2's phenotypes closer to the clinical reference's table (§7).

    Drawn from a separate random stream per case (:func:`generate_cases`), so a version-2 case that this
    leaves alone stays identical (same note, same crop) and caches can be carried over. Each change is
    partial, so every class keeps cases that only the fused evidence separates:

    * adenocarcinoma: half of the smooth solid ones become spiculated (smooth share of the solid ones
      0.2 -> 0.1), half of the remaining non-spiculated solid ones become part-solid (subsolid share
      0.55 -> about 0.64; "virtually all subsolid cancers are adenocarcinomas"), and 40 % of those with no
      stated course are growing (0.45 -> about 0.63);
    * small cell carcinoma: mediastinal lymphadenopathy on staging 0.55 -> about 0.73 and enlarged nodes
      beside the mass in the image 0.6 -> 0.8 ("central/hilar mass with bulky mediastinal
      lymphadenopathy");
    * hamartoma: macroscopic fat 0.75 -> about 0.88, and 40 % of those with no stated course stable
      (0.5 -> about 0.64; "slow growth", "usually asymptomatic").

    Returns
    -------
    tuple
        The (possibly) changed facts and phenotype.
    """
    u = rng.random(4)
    if name == "adenocarcinoma":
        if phenotype.kind == "solid" and phenotype.margin == "smooth" and u[0] < 0.5:
            phenotype = replace(phenotype, margin="spiculated")
        elif phenotype.kind == "solid" and phenotype.margin != "spiculated" and u[1] < 0.5:
            d = phenotype.diameter_mm
            phenotype = replace(phenotype, kind="part_solid", solid_diameter_mm=d * (0.45 + 0.3 * u[3]))
        if facts.course is None and u[2] < 0.4:
            facts = replace(facts, course="growing")
    elif name == "small_cell_carcinoma":
        if not facts.lymphadenopathy and u[0] < 0.4:
            facts = replace(facts, lymphadenopathy=True)
        if phenotype.adjacent_nodes == 0 and u[1] < 0.5:
            phenotype = replace(phenotype, adjacent_nodes=1 + int(u[3] < 0.4))
    elif name == "hamartoma":
        if not phenotype.fat and u[0] < 0.5:
            phenotype = replace(phenotype, fat=True)
        if facts.course is None and u[2] < 0.4:
            facts = replace(facts, course="stable")
    return facts, phenotype


def generate_cases(
    n: int,
    seed: int,
    *,
    domain: str = "base",
    zh_fraction: float | None = None,
    version: int = GENERATOR_VERSION,
) -> list[SyntheticCase]:
    """Generate ``n`` synthetic cases (balanced classes in random order).

    Parameters
    ----------
    n
        Number of cases.
    seed
        Random seed; training, validation and evaluation use disjoint seeds.
    domain
        ``"base"`` or ``"site_b"``.
    zh_fraction
        Share of Chinese notes (default 0.3 for base, 0.5 for site_b).
    version
        Generator version (2 or 3; 3 applies :func:`refine_v3` from a per-case stream seeded by the
        case's rendering seed; a case whose facts change gets its note rewritten from that stream).

    Returns
    -------
    list of SyntheticCase
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}")
    if version not in (2, 3, 4):
        raise ValueError(f"unknown generator version {version!r}")
    rng = np.random.default_rng(seed)
    zh = (0.3 if domain == "base" else 0.5) if zh_fraction is None else zh_fraction
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES))
    cases = []
    for lab in labels:
        name = CLASS_NAMES[int(lab)]
        facts = _sample_facts(name, rng)
        language = "zh" if rng.random() < zh else "en"
        note = write_note(facts, rng, language=language, domain=domain)
        ph = sample_phenotype(name, rng)
        if domain == "base":
            noise = float(rng.uniform(8, 35))
            thick = float(rng.choice([0.625, 1.0, 1.25, 1.5, 2.0]))
        else:
            noise = float(rng.uniform(55, 90))
            thick = float(rng.choice([2.5, 3.0]))
        case_seed = int(rng.integers(2**31))
        if version >= 3:
            sub = np.random.default_rng([case_seed, 3])
            facts3, ph = refine_v3(name, facts, ph, sub)
            if facts3 != facts and note:
                new_note = ""
                while not new_note:  # an empty note stays reserved for the cases version 2 left empty
                    new_note = write_note(facts3, sub, language=language, domain=domain)
                note = new_note
            facts = facts3
        if version >= 4 and domain == "base":
            cases.append(_version_4(int(lab), facts, note, language, ph, noise, thick, case_seed))
            continue
        cases.append(SyntheticCase(int(lab), facts, note, language, ph, noise, thick, case_seed))
    return cases


def _version_4(
    label: int,
    facts: PatientFacts,
    note: str,
    language: str,
    ph: NodulePhenotype,
    noise: float,
    thick: float,
    case_seed: int,
) -> SyntheticCase:
    """Generator version 4 on top of a version-3 case (separate per-case stream, same crop seed).

    * a metastasis always has a personal cancer history, and a version-4 note always states a personal
      cancer history the patient has (labels follow the facts);
    * the note is rewritten by :func:`~radiology_app.diagnosis.training.note_forms.write_note_v4`
      (document forms, paraphrases, traps) unless version 3 left it empty;
    * :data:`SEGMENTATION_RENDERER_SHARE` of the crops come from the segmentation phantom.
    """
    sub = np.random.default_rng([case_seed, 4])
    u = sub.random(3)
    if CLASS_NAMES[label] == "metastasis" and facts.prior_cancer is None:
        facts = replace(facts, prior_cancer=str(_CANCER_SITES[int(u[0] * len(_CANCER_SITES))]))
    renderer = "segmentation" if u[1] < SEGMENTATION_RENDERER_SHARE else "diagnosis"
    note_seed = int(sub.integers(2**31))
    options = draw_options(sub, language)
    if note:
        note = write_note_v4(facts, note_seed, language=language, options=options)
    return SyntheticCase(
        label,
        facts,
        note,
        language,
        ph,
        noise,
        thick,
        case_seed,
        renderer,
        note_seed,
        options if note else None,
    )


#: Counterfactual edits of a note (:func:`counterfactual_twin`).
TWIN_VARIANTS = ("cancer_to_relative", "cancer_removed", "cancer_added", "relative_added", "suspected_added")


def definitive_image_sign(name: str, ph: NodulePhenotype) -> bool:
    """Whether the image alone establishes the class in this generator (section 7's definitive signs).

    Granuloma: a benign calcification pattern (central, diffuse, laminated); hamartoma: macroscopic fat or
    popcorn calcification; intrapulmonary lymph node: the lentiform juxtapleural shape; adenocarcinoma: a
    subsolid nodule ("virtually all subsolid cancers are adenocarcinomas").
    """
    if name == "granuloma":
        return ph.calcification in ("central", "diffuse", "laminated")
    if name == "hamartoma":
        return ph.fat or ph.calcification == "popcorn"
    if name == "intrapulmonary_lymph_node":
        return ph.juxtapleural and ph.elongation >= 1.5
    if name == "adenocarcinoma":
        return ph.kind in ("part_solid", "ground_glass")
    return False


def counterfactual_label(
    label: int, phenotype: NodulePhenotype, before: PatientFacts, after: PatientFacts
) -> int | None:
    """The label of a case whose facts changed from ``before`` to ``after``, or ``None`` to drop it.

    A metastasis needs an affirmed personal cancer history: without one (moved to a relative, removed)
    the same nodule is not labelled metastasis; it is dropped, because the generator has no single
    class for a round solid nodule without one. A personal cancer history added to a non-metastasis case
    keeps its label only when the image carries a definitive sign (:func:`definitive_image_sign`);
    otherwise a metastasis becomes plausible and the case is dropped. Other edits keep the label.
    """
    name = CLASS_NAMES[label]
    if name == "metastasis":
        return label if after.prior_cancer else None
    if after.prior_cancer and not before.prior_cancer:
        return label if definitive_image_sign(name, phenotype) else None
    return label


def edit_case(case: SyntheticCase, variant: str, rng: np.random.Generator) -> SyntheticCase | None:
    """The same case with one edit of its note's facts or traps, label *unchanged* (``None`` when the edit
    does not apply). :func:`counterfactual_twin` relabels; evaluation measures the edit's effect.

    Variants (:data:`TWIN_VARIANTS`): the personal cancer history moved to a relative or removed (stated
    as denied), a personal cancer history added, a relative's cancer added, a suspected diagnosis added.
    The edited case has the same crop (phenotype, scanner, seeds, renderer) and the same note apart from
    the edited statement.
    """
    o = case.note_options
    if o is None or not case.note:
        return None
    f, opts = case.facts, o
    if variant == "cancer_to_relative" and f.prior_cancer:
        opts = replace(o, relative_cancer=f.prior_cancer)
        f = replace(f, prior_cancer=None)
    elif variant == "cancer_removed" and f.prior_cancer:
        opts = replace(o, negate_cancer=True)
        f = replace(f, prior_cancer=None)
    elif variant == "cancer_added" and not f.prior_cancer:
        f = replace(f, prior_cancer=str(_CANCER_SITES[int(rng.integers(len(_CANCER_SITES)))]))
    elif variant == "relative_added" and not o.relative_cancer:
        from radiology_app.diagnosis.training.note_forms import RELATIVE_SITES

        opts = replace(o, relative_cancer=str(RELATIVE_SITES[int(rng.integers(len(RELATIVE_SITES)))]))
    elif variant == "suspected_added" and not o.suspected:
        opts = replace(o, suspected=True)
    else:
        return None
    note = write_note_v4(f, case.note_seed, language=case.language, options=opts)
    return replace(case, facts=f, note=note, note_options=opts, variant=variant)


def counterfactual_twin(case: SyntheticCase, variant: str, rng: np.random.Generator) -> SyntheticCase | None:
    """:func:`edit_case` relabelled by :func:`counterfactual_label` (``None`` when the edit does not apply
    or the twin is dropped)."""
    edited = edit_case(case, variant, rng)
    if edited is None:
        return None
    label = counterfactual_label(case.label, case.phenotype, case.facts, edited.facts)
    if label is None:
        return None
    return replace(edited, label=label)


def with_twins(cases: list[SyntheticCase], seed: int, share: float = 0.25) -> list[SyntheticCase]:
    """``cases`` followed by counterfactual twins of about ``share`` of them (``twin_of`` set; dropped
    twins are left out, so fewer than ``share`` remain)."""
    rng = np.random.default_rng([seed, 44])
    twins = []
    for i, c in enumerate(cases):
        if rng.random() >= share or c.note_options is None:
            continue
        o = c.note_options
        usable = (
            (["cancer_to_relative", "cancer_removed"] if c.facts.prior_cancer else ["cancer_added"])
            + (["relative_added"] if not o.relative_cancer else [])
            + (["suspected_added"] if not o.suspected else [])
        )
        variant = usable[int(rng.integers(len(usable)))]
        t = counterfactual_twin(c, variant, rng)
        if t is not None:
            twins.append(replace(t, twin_of=i))
    return [*cases, *twins]


def render_case(case: SyntheticCase) -> tuple[np.ndarray, np.ndarray]:
    """Render a case's crop ``(hu float32, mask uint8)`` on the diagnosis crop grid (deterministic).

    A case of the segmentation renderer goes through
    :func:`radiology_app.diagnosis.training.seg_crops.render_segmentation_case` (the segmentation
    phantom, the U-Net's outline, the pipeline's crop).
    """
    from radiology_app.diagnosis.phantom import render_phenotype

    if case.renderer == "segmentation":
        from radiology_app.diagnosis.training.seg_crops import render_segmentation_case

        crop = render_segmentation_case(case)
        return crop.hu, crop.mask

    rng = np.random.default_rng(case.seed)
    return render_phenotype(
        case.phenotype, rng, noise_hu=case.noise_hu, slice_thickness_mm=case.slice_thickness_mm
    )
