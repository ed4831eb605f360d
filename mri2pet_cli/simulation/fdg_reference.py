"""Published regional FDG uptake of cognitively normal older adults, and its effects (simulator v2).

One row per region: AAL names (without _L/_R), the mean and between-subject SD of the regional
SUVR (cerebellar cortex = 1, no partial-volume correction, ages about 60-80), the change per
decade of age, and the difference of mild-to-moderate AD dementia from CN, with the sources of
each. `scored` rows are the literature table the realism benchmark measures the simulator
against; the other rows only fill the rest of the AAL atlas (the simulator's own choice,
between their neighbours), so no AAL region is left without a value.

How the numbers were read (docs/simulation.md says the same): no single study reports every
AAL region with a cerebellar reference. The means are our reading of the cited studies'
relative uptake, rounded to 0.05 where they agree and the middle where they do not; the SDs
are the 7-10 % coefficients of variation those studies report for CN regional ratios. The
table is data, not code: a lab with a normal database of its own can replace it.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = {
    "Loessner1995": "Loessner A, Alavi A, Lewandrowski KU, et al. Regional cerebral function determined by FDG-PET "
    "in healthy volunteers: normal patterns and changes with age. J Nucl Med 1995;36:1141-1149.",
    "Minoshima1997": "Minoshima S, Giordani B, Berent S, et al. Metabolic reduction in the posterior cingulate "
    "cortex in very early Alzheimer's disease. Ann Neurol 1997;42:85-94.",
    "Herholz2002": "Herholz K, Salmon E, Perani D, et al. Discrimination between Alzheimer dementia and controls by "
    "automated analysis of multicenter FDG PET. NeuroImage 2002;17:302-316.",
    "Mosconi2008": "Mosconi L, Tsui WH, Herholz K, et al. Multicenter standardized 18F-FDG PET diagnosis of mild "
    "cognitive impairment, Alzheimer's disease, and other dementias. J Nucl Med 2008;49:390-398.",
    "Li2008": "Li Y, Rinne JO, Mosconi L, et al. Regional analysis of FDG and PIB-PET images in normal aging, mild "
    "cognitive impairment, and Alzheimer's disease. Eur J Nucl Med Mol Imaging 2008;35:2169-2181.",
    "Kalpouzos2009": "Kalpouzos G, Chetelat G, Baron JC, et al. Voxel-based mapping of brain gray matter volume and "
    "glucose metabolism profiles in normal aging. Neurobiol Aging 2009;30:112-124.",
    "Landau2011": "Landau SM, Harvey D, Madison CM, et al. Associations between cognitive, functional, and FDG-PET "
    "measures of decline in AD and MCI. Neurobiol Aging 2011;32:1207-1218.",
    "Shen2012": "Shen X, Liu H, Hu Z, Hu H, Shi P. The relationship between cerebral glucose metabolism and age: "
    "report of a large brain PET data set. PLoS One 2012;7:e51517.",
    "Bohnen2012": "Bohnen NI, Djang DSW, Herholz K, Anzai Y, Minoshima S. Effectiveness and safety of 18F-FDG PET "
    "in the evaluation of dementia: a review of the recent literature. J Nucl Med 2012;53:59-71.",
    "Chiaravalloti2014": "Chiaravalloti A, Abbatiello P, Calabria F, et al. Cortico-subcortical metabolic changes "
    "in aging brain: a 18F FDG PET/CT study. Int J Nucl Med Res 2014;1:17-23.",
    "HellJNM2018": "Normal patterns of regional brain 18F-FDG uptake in normal aging. Hell J Nucl Med 2018 "
    "(PMID 30411727): supratentorial / cerebellar SUVmean 9.14 / 6.80 = 1.34 in young adults.",
    "Nugent2020": "Nugent S, Croteau E, Potvin O, et al. Selection of the optimal intensity normalization region "
    "for FDG-PET studies of normal aging and Alzheimer's disease. Sci Rep 2020;10:9261.",
    # simulator v3: partial-volume-corrected ageing, volumetric atrophy, FDG against MRI in AD
    "Greve2016": "Greve DN, Salat DH, Bowen SL, et al. Different partial volume correction methods lead to "
    "different conclusions: an 18F-FDG-PET study of aging. NeuroImage 2016;132:334-343. "
    "doi:10.1016/j.neuroimage.2016.02.042 (99 CN aged 65-87; symmetric GTM with CSF modelled: about -7 %/decade in "
    "frontal, cingulate, primary visual and insular cortex; CSF uptake about 15 % of grey matter).",
    "Bonte2017": "Bonte S, Vandemaele P, Verleden S, et al. Healthy brain ageing assessed with 18F-FDG PET and "
    "age-dependent recovery factors after partial volume effect correction. Eur J Nucl Med Mol Imaging "
    "2017;44:838-849. doi:10.1007/s00259-016-3569-0 (after PVC: frontal and temporal grey matter fall, "
    "cerebellar and thalamic grey matter rise with age).",
    "Curiati2011": "Curiati PK, Tamashiro-Duran JH, Duran FLS, et al. Age-related metabolic profiles in cognitively "
    "healthy elders: results from a voxel-based FDG-PET study with partial volume effects correction. AJNR 2011 "
    "(after PVC no age-related decrease stayed significant in 55 healthy elders).",
    "Huang1980": "Huang SC, Phelps ME, Hoffman EJ, et al. Noninvasive determination of local cerebral metabolic rate "
    "of glucose in man. Am J Physiol 1980;238:E69-E82 (grey 7.30, white 3.41 mg/100 g/min: 0.47 before PVC).",
    "Fjell2009": "Fjell AM, Walhovd KB, Fennema-Notestine C, et al. One-year brain atrophy evident in healthy aging. "
    "J Neurosci 2009;29:15223-15231 (about -0.5 %/year in temporal and prefrontal cortex, ages 60-91).",
    "Crivello2014": "Crivello F, Tzourio-Mazoyer N, Tzourio C, Mazoyer B. Longitudinal assessment of global and "
    "regional rate of grey matter atrophy in 1,172 healthy older adults. PLoS One 2014;9:e114478 (global grey "
    "matter -0.83 %/year, ages 65-82).",
    "Fraser2015": "Fraser MA, Shaw ME, Cherbuin N. A systematic review and meta-analysis of longitudinal hippocampal "
    "atrophy in healthy human ageing. NeuroImage 2015;112:364-374 (0.85 %/year).",
    "Barnes2009": "Barnes J, Bartlett JW, van de Pol LA, et al. A meta-analysis of hippocampal atrophy rates in "
    "Alzheimer's disease. Neurobiol Aging 2009;30:1711-1723 (controls 1.41 %/year, 95 % CI 0.52-2.30).",
    "Raz2005": "Raz N, Lindenberger U, Rodrigue KM, et al. Regional brain changes in aging healthy adults: general "
    "trends, individual differences and modifiers. Cereb Cortex 2005;15:1676-1689 (caudate, cerebellum, hippocampus "
    "and association cortex shrink substantially; hippocampus and cerebellum accelerate with age).",
    "Tang2001": "Tang Y, Whitman GT, Lopez I, Baloh RW. Brain volume changes on longitudinal magnetic resonance "
    "imaging in normal older people. J Neuroimaging 2001;11:393-400 (cerebellum -1.2 +- 2.2 %/year, ages 74-87).",
    "SamperGonzalez2018": "Samper-Gonzalez J, Burgos N, Bottani S, et al. Reproducible evaluation of classification "
    "methods in Alzheimer's disease: framework and application to MRI and PET data. NeuroImage 2018;183:504-521 "
    "(ADNI, AIBL, OASIS: FDG PET outperformed T1 MRI in every classification task).",
    "Ferreira2018": "Ferreira LK, Rondina JM, Kubo R, et al. Support vector machine-based classification of "
    "neuroimaging data in Alzheimer's disease. Rev Bras Psiquiatr 2018;40:181-191 (same subjects: MRI AUC 0.67, "
    "FDG 0.77-0.81).",
}


@dataclass(frozen=True)
class RegionReference:
    name: str
    aal: tuple[str, ...]  # AAL names without the hemisphere suffix
    suvr_mean: float  # cerebellar cortex = 1
    suvr_sd: float  # between CN subjects
    age_pct_per_decade: float  # change of the regional SUVR per decade of age (CN)
    ad_pct: float  # mild-to-moderate AD dementia vs CN (per cent, negative = lower)
    sources: tuple[str, ...]
    scored: bool = True


_LEVEL = ("HellJNM2018", "Loessner1995", "Nugent2020")
_AGE = ("Kalpouzos2009", "Shen2012", "Chiaravalloti2014", "Loessner1995")
_AD = ("Herholz2002", "Mosconi2008", "Minoshima1997", "Landau2011", "Li2008", "Bohnen2012")

REGIONS: tuple[RegionReference, ...] = (
    RegionReference(
        "frontal superior", ("Frontal_Sup", "Frontal_Sup_Medial"), 1.25, 0.10, -3.0, -7.0, _LEVEL + _AGE + _AD
    ),
    RegionReference("frontal middle", ("Frontal_Mid",), 1.28, 0.10, -3.0, -8.0, _LEVEL + _AGE + _AD),
    RegionReference(
        "frontal orbital",
        ("Frontal_Sup_Orb", "Frontal_Mid_Orb", "Frontal_Inf_Orb", "Frontal_Med_Orb", "Rectus"),
        1.12,
        0.09,
        -3.0,
        -5.0,
        _LEVEL + _AGE + _AD,
    ),
    RegionReference("precentral", ("Precentral",), 1.20, 0.09, -1.0, 0.0, _LEVEL + _AD),
    RegionReference("postcentral", ("Postcentral",), 1.15, 0.09, -1.0, 0.0, _LEVEL + _AD),
    RegionReference("parietal superior", ("Parietal_Sup",), 1.20, 0.10, -1.0, -10.0, _LEVEL + _AD),
    RegionReference("parietal inferior", ("Parietal_Inf",), 1.25, 0.10, -1.0, -18.0, _LEVEL + _AD),
    RegionReference("supramarginal", ("SupraMarginal",), 1.22, 0.10, -1.0, -15.0, _LEVEL + _AD),
    RegionReference("angular", ("Angular",), 1.30, 0.10, -1.0, -20.0, _LEVEL + _AD),
    RegionReference("precuneus", ("Precuneus",), 1.35, 0.10, -0.5, -18.0, _LEVEL + _AD),
    RegionReference("anterior cingulate", ("Cingulum_Ant",), 1.20, 0.10, -3.5, -3.0, _LEVEL + _AGE + _AD),
    RegionReference("middle cingulate", ("Cingulum_Mid",), 1.25, 0.09, -1.5, -5.0, _LEVEL + _AGE + _AD),
    RegionReference("posterior cingulate", ("Cingulum_Post",), 1.38, 0.12, -0.5, -20.0, _LEVEL + _AGE + _AD),
    RegionReference(
        "lateral temporal", ("Temporal_Sup", "Temporal_Mid", "Temporal_Inf"), 1.15, 0.09, -1.0, -13.0, _LEVEL + _AD
    ),
    RegionReference("parahippocampal", ("ParaHippocampal",), 0.90, 0.07, -0.5, -10.0, _LEVEL + _AD),
    RegionReference("hippocampus", ("Hippocampus",), 0.85, 0.07, -0.5, -12.0, _LEVEL + _AD),
    RegionReference("amygdala", ("Amygdala",), 0.85, 0.08, -0.5, -10.0, _LEVEL + _AD),
    RegionReference("calcarine", ("Calcarine",), 1.40, 0.11, 0.0, 0.0, _LEVEL + _AGE + _AD),
    RegionReference("cuneus", ("Cuneus",), 1.35, 0.11, 0.0, -3.0, _LEVEL + _AGE + _AD),
    RegionReference("lingual", ("Lingual",), 1.25, 0.10, 0.0, 0.0, _LEVEL + _AGE + _AD),
    RegionReference(
        "lateral occipital", ("Occipital_Sup", "Occipital_Mid", "Occipital_Inf"), 1.30, 0.10, 0.0, -4.0, _LEVEL + _AD
    ),
    RegionReference("insula", ("Insula",), 1.15, 0.08, -2.5, -4.0, _LEVEL + _AGE + _AD),
    RegionReference("caudate", ("Caudate",), 1.20, 0.12, -2.0, 0.0, _LEVEL + _AGE),
    RegionReference("putamen", ("Putamen",), 1.40, 0.11, -1.0, 0.0, _LEVEL + _AGE),
    RegionReference("pallidum", ("Pallidum",), 1.00, 0.09, -0.5, 0.0, _LEVEL),
    RegionReference("thalamus", ("Thalamus",), 1.25, 0.10, -0.5, -3.0, _LEVEL + _AGE),
    # the rest of AAL: the simulator's choice between neighbours, not scored
    RegionReference("inferior frontal", ("Frontal_Inf_Oper", "Frontal_Inf_Tri"), 1.22, 0.10, -2.5, -7.0, (), False),
    RegionReference(
        "supplementary motor and paracentral",
        ("Supp_Motor_Area", "Paracentral_Lobule"),
        1.22,
        0.09,
        -1.5,
        0.0,
        (),
        False,
    ),
    RegionReference("rolandic operculum and Heschl", ("Rolandic_Oper", "Heschl"), 1.15, 0.09, -1.5, -3.0, (), False),
    RegionReference("temporal pole", ("Temporal_Pole_Sup", "Temporal_Pole_Mid"), 0.95, 0.08, -1.0, -10.0, (), False),
    RegionReference("fusiform", ("Fusiform",), 1.15, 0.09, -0.5, -10.0, (), False),
    RegionReference("olfactory", ("Olfactory",), 0.95, 0.08, -1.0, -3.0, (), False),
    RegionReference(
        "vermis",
        ("Vermis_1_2", "Vermis_3", "Vermis_4_5", "Vermis_6", "Vermis_7", "Vermis_8", "Vermis_9", "Vermis_10"),
        0.95,
        0.06,
        0.0,
        0.0,
        (),
        False,
    ),
)
REFERENCE_REGION = "cerebellar cortex (AAL Cerebelum_*)"


def base_name(aal_name: str) -> str:
    """'Precuneus_L' -> 'Precuneus'; 'Vermis_4_5' stays."""
    return aal_name[:-2] if aal_name.endswith(("_L", "_R")) else aal_name


def region_label_values(region: RegionReference) -> list[int]:
    """AAL label values of one table row (both hemispheres)."""
    from mri2pet_cli.space.atlas import aal_names

    return [v for v, n in aal_names().items() if base_name(n) in region.aal]


def scored_regions() -> tuple[RegionReference, ...]:
    return tuple(r for r in REGIONS if r.scored)


# Simulator v3's metabolic change with age, %/decade of grey-matter uptake on an absolute scale (what a
# partial-volume-corrected analysis measures), with its reading of the sources. Where Greve2016's sGTM found a
# decline (about -7 %/decade), -5 %/decade absolute, i.e. -6 against the rising cerebellum: within 1.5 of the
# cited value and as close to the uncorrected table as that allows (docs/simulation.md, "Version 3"). Elsewhere
# Greve2016 found no significant change (nor did Curiati2011 after PVC), so -2 %/decade, a small decline of the
# sign Bonte2017 gives for frontal and temporal grey matter; thalamus and cerebellum rise (Bonte2017's sign;
# +2 and +1 %/decade are our choice of size).
V3_CORTICAL_DECLINE = -5.0
V3_OTHER_DECLINE = -2.0
CITED_CORTICAL_DECLINE = -7.0  # Greve2016
V3_CEREBELLAR_CHANGE = 1.0  # the SUVR reference: every ratio moves by its slope minus this one
_GREVE_DECLINE_ROWS = {
    "frontal superior", "frontal middle", "frontal orbital", "inferior frontal", "anterior cingulate",
    "middle cingulate", "posterior cingulate", "calcarine", "insula",
}  # fmt: skip
V3_AGE_PCT_PER_DECADE = {
    r.name: V3_CORTICAL_DECLINE if r.name in _GREVE_DECLINE_ROWS else V3_OTHER_DECLINE for r in REGIONS
} | {"thalamus": 2.0, "pallidum": 0.0, "putamen": -1.0, "vermis": V3_CEREBELLAR_CHANGE}
V3_AGE_SOURCES = ("Greve2016", "Bonte2017", "Curiati2011")

# The cited corrected values the realism benchmark checks the age-only slopes against (%/decade of the
# grey-matter ratio to cerebellar cortex): Greve2016's decline where it reports one. Elsewhere the literature
# gives a sign only.
CORRECTED_AGE = {name: CITED_CORTICAL_DECLINE for name in sorted(_GREVE_DECLINE_ROWS)}

# Grey-matter volume change with age, %/decade (negative: loss), as the cited volumetric studies report it.
GREY_MATTER_LOSS = {
    "cerebral cortex": {"pct_per_decade": (-8.3, -5.0), "sources": ("Fjell2009", "Crivello2014")},
    "hippocampus": {"pct_per_decade": (-14.1, -8.5), "sources": ("Fraser2015", "Barnes2009")},
    "cerebellum": {"pct_per_decade": (-12.0, -5.0), "sources": ("Raz2005", "Tang2001")},
}

# CN vs AD: how much better FDG-PET separates than the best T1 classifier (AUC), the "T1 ceiling" gap.
T1_CEILING_GAP = {"auc_gap": (0.03, 0.12), "sources": ("SamperGonzalez2018", "Ferreira2018")}
