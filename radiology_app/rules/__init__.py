"""Validated clinical rules as pure functions: Lung-RADS v2022, Fleischner 2017, Brock, Mayo, growth.

No I/O and no heavy imports: every function takes frozen dataclasses (sizes in mm, ages in years,
intervals in months or days as named) and returns a result that carries its ``reason`` (the table row
or the model terms that drove it), so the GUI and the report can show it. Open points of the
guidelines (🛠 in the shared clinical reference) are decided in each module's docstring.
Threshold comparisons use :func:`radiology_app.rules.rounding.round_half_up` (halves up), never
:func:`round`.
"""

from radiology_app.rules._errors import RuleInputError
from radiology_app.rules.brock import BrockInput, RiskResult, brock_probability, lobe_is_upper, risk_band
from radiology_app.rules.fleischner import (
    FleischnerInput,
    FleischnerPatient,
    FleischnerResult,
    fleischner,
    suggest_high_risk,
)
from radiology_app.rules.growth import (
    GrowthAssessment,
    assess_growth,
    percent_volume_change,
    sphere_diameter_mm,
    sphere_volume_mm3,
    vdt_band,
    volume_doubling_time_days,
    volume_doubling_time_from_diameters_days,
)
from radiology_app.rules.lungrads import (
    AirwayLevel,
    Composition,
    LungRadsInput,
    LungRadsResult,
    NoduleStatus,
    lung_rads,
    overall_lung_rads,
)
from radiology_app.rules.mayo import MayoInput, mayo_probability
from radiology_app.rules.rounding import mean_diameter_mm, round_half_up

__all__ = [
    "AirwayLevel",
    "BrockInput",
    "Composition",
    "FleischnerInput",
    "FleischnerPatient",
    "FleischnerResult",
    "GrowthAssessment",
    "LungRadsInput",
    "LungRadsResult",
    "MayoInput",
    "NoduleStatus",
    "RiskResult",
    "RuleInputError",
    "assess_growth",
    "brock_probability",
    "fleischner",
    "lobe_is_upper",
    "lung_rads",
    "mayo_probability",
    "mean_diameter_mm",
    "overall_lung_rads",
    "percent_volume_change",
    "risk_band",
    "round_half_up",
    "sphere_diameter_mm",
    "sphere_volume_mm3",
    "suggest_high_risk",
    "vdt_band",
    "volume_doubling_time_days",
    "volume_doubling_time_from_diameters_days",
]
