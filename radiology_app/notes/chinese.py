"""Fact extraction from Chinese clinical notes (regular expressions with clause-bounded negation).

Chinese clinical notes are formulaic (入院记录: 现病史 / 既往史 / 个人史 / 家族史) and negation is carried
by a small set of cues placed before the finding (无, 否认, 未, 没有, 不伴, 未见) whose scope runs over
lists joined by 、 / 及 / 和 and ends at ，。；. Post-cues are (-) / 阴性 / ：无. So a clause-bounded
NegEx needs no word segmentation (see the package docstring for why jieba is not used).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from radiology_app.notes._engine import (
    FAMILY,
    CueSet,
    Mention,
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

__all__ = ["CANCER_SITES_ZH", "CUES", "extract"]

CUES = CueSet(
    sentence_break=re.compile(r"[。！\n；;]"),
    clause_break=re.compile(r"[，,：:（）()]|但|但是|然而"),
    pre_negation=re.compile(r"否认|无|未见|未诉|未|没有|不伴|不(?!适|详|清|明|规律|除外)|非|均否认|阴性"),
    pseudo_negation=re.compile(
        r"无明显诱因|无诱因|未予重视|未予|未规律|未戒烟|未戒|无明显变化|不规律|未分化"
    ),
    pre_uncertainty=re.compile(r"可疑|疑似|疑为|不除外|不能除外|不排除|不能排除|待排|考虑|可能|？|\?"),
    post_negation=re.compile(r"\s*(?:[（(]\s*[-−－]\s*[）)]|阴性|[：:]\s*(?:无|否|阴性))"),
    post_uncertainty=re.compile(r"\s*(?:[？?]|待排|可能|不详|待查|不除外|不能除外|不排除|不能排除|待除外)"),
    post_affirmation=re.compile(r"\s*(?:[（(]\s*[+＋]\s*[）)]|阳性|[：:]\s*(?:有|是|阳性))"),
    scope_breaker=re.compile(r"(?!)"),
    pre_hypothetical=re.compile(r"如果|如若|若|如有|一旦|如出现|如再|倘若"),
    historical=re.compile(
        r"既往|术后|曾(?:患|有|行|因)?|病史|年前|个月前|治疗后|放化疗后|放疗后|化疗后|切除后|复查"
    ),
)

# Every alternative starts with a plain character (no [...] class, no look-behind) so that ``re`` skips
# ahead to the characters that can start one, instead of trying each position of the note.
_RELATIVE = re.compile(
    r"父亲|母亲|父母|其父|其母|哥哥|姐姐|弟弟|妹妹|兄弟|姐妹|儿子|女儿|子女|丈夫|妻子|其妻|其夫|爱人|配偶|"
    r"祖父|祖母|外公|外婆|爷爷|奶奶|叔叔|舅舅|姑姑|阿姨|亲属|家族|家人|家属(?!代诉|诉)|"
    r"伯父|伯母|伯伯|叔父|婶婶|姑父|姑妈|舅父|舅妈|姨妈|姨父|堂[兄姐弟妹]|表[兄姐弟妹]|孙子|孙女|外孙|"
    r"其(?:子|女(?!性)|兄|姐|弟|妹)|长子|次子|独子|兄|姐|弟|妹|老伴(?!代诉|诉)"
)
#: Not blood relatives: their lung cancer is no family history (experiencer "other").
_SPOUSE = re.compile(r"丈夫|妻子|其妻|其夫|爱人|配偶|老伴(?!代诉|诉)")
#: Basal cell carcinoma is not counted as a cancer history (it practically never spreads to the lung).
_BASAL_CELL = re.compile(r"基底细胞")
_FAMILY_SECTION = re.compile(r"家族史[：:][^\n]*")

_FEVER = [re.compile(r"发热|发烧|低热|高热|体温升高|体温(?:最高)?\s*(?:达)?\s*(?:3[89]|4[01])(?:\.\d)?\s*℃?")]
_FEVER_NEG = [re.compile(r"体温正常|无发热")]
_COUGH = [re.compile(r"咳嗽|干咳|咳痰|咳\S{0,2}痰")]
_HEMOPTYSIS = [re.compile(r"咯血|咳血|痰中(?:带|见|有|夹)?血丝?|血痰|痰血")]
_WEIGHT = [re.compile(r"体重(?:明显)?(?:下降|减轻|减少)|消瘦|体重减")]
_WEIGHT_NEG = [re.compile(r"体重(?:无|未见|没有)(?:明显)?(?:变化|改变|下降|减轻)|体重(?:稳定|正常)")]
_IMMUNO = [
    re.compile(
        r"移植术后|器官移植|肾移植|肝移植|肺移植|骨髓移植|他克莫司|环孢素|吗替麦考酚酯|麦考酚|硫唑嘌呤|甲氨蝶呤|"
        r"泼尼松|甲泼尼龙|激素治疗(?<!吸入激素治疗)|使用激素|口服激素|糖皮质激素(?<!吸入糖皮质激素)|免疫抑制|免疫功能低下|"
        r"免疫缺陷|HIV|艾滋病|化疗中|"
        r"正在化疗|中性粒细胞减少|生物制剂"
    )
]
_TB = [
    re.compile(
        r"结核|抗痨|真菌|组织胞浆菌|球孢子菌|隐球菌|曲霉|IGRA|T-SPOT|PPD|干扰素释放试验", re.IGNORECASE
    )
]
_COPD = [re.compile(r"慢阻肺|慢性阻塞性肺(?:疾)?病|COPD|肺气肿", re.IGNORECASE)]
_COPD_NEG_ONLY = re.compile(r"(?:否认|无)[^，。；]{0,6}慢性肺(?:部)?(?:疾)?病")

#: Chinese site words -> normalised cancer site (same vocabulary as the English extractor).
CANCER_SITES_ZH: dict[str, str] = {
    "乳腺": "breast",
    "乳(?!头)": "breast",
    "结肠|直肠|结直肠|肠": "colorectal",
    "前列腺": "prostate",
    "肾": "kidney",
    "膀胱": "bladder",
    "甲状腺": "thyroid",
    "鼻咽|喉|舌|口腔|口咽|下咽|扁桃体": "head_and_neck",
    "宫颈": "cervix",
    "卵巢": "ovary",
    "子宫内膜|子宫": "uterus",
    "胃": "stomach",
    "食管|食道": "esophagus",
    "肝": "liver",
    "胰腺": "pancreas",
    "肺": "lung",
    "睾丸": "testis",
    "皮肤": "skin",
}
_CANCER = re.compile(
    r"[^\s，。；、：:（）()]{0,8}?(?:癌|Ca(?![a-z]))|白血病|淋巴瘤|骨髓瘤|肉瘤|黑色素瘤|恶黑|恶性肿瘤|肿瘤(?:病)?史|肿瘤"
)
_OTHER_SITES = {
    "白血病": "leukemia",
    "淋巴瘤": "lymphoma",
    "骨髓瘤": "myeloma",
    "肉瘤": "sarcoma",
    "黑色素瘤": "melanoma",
    "恶黑": "melanoma",
}
_NOT_A_CANCER = re.compile(
    r"癌胚抗原|肺癌筛查|防癌|癌症筛查|良性肿瘤|肿瘤(?:内|外)?科|肿瘤(?:医院|中心|门诊|标志物)"
)
_LUNG_CANCER = re.compile(r"肺(?:腺|鳞|小细胞|大细胞)?癌|肺部恶性肿瘤")
_FAMILY_CANCER_NEG = re.compile(
    r"(?:否认|无)[^，。；]{0,12}(?:肿瘤|癌)[^，。；]{0,4}家族史|(?:否认|无)[^，。；]{0,4}家族[^，。；]{0,8}(?:肿瘤|癌)|"
    r"家族(?:中|内)?(?:无|未见)[^，。；]{0,6}(?:肿瘤|癌)|(?:肿瘤|癌)[^，。；]{0,6}家族史[：:]?\s*(?:无|阴性)|"
    r"(?:否认|无)[^，。；]{0,6}(?:肿瘤|癌)[^，。；]{0,4}(?:病史)?(?:及|和|、)家族史|"
    r"家族史\s*[：:]\s*(?:无特殊|无|阴性|否认)\s*(?=[。；;\n]|$)"
)

_NUM = r"(\d+(?:\.\d+)?|半|一|两|二|三)"
_NEVER = re.compile(
    r"无烟草嗜好|不嗜烟|不吸烟|无吸烟史?|否认吸烟史?|从不吸烟|从未吸烟|不抽烟|从不抽烟|无烟酒(?:嗜好|史)|无烟酒不良嗜好"
)
_FORMER = re.compile(r"(?<!未)已?戒烟|(?<!未)已戒(?!酒)|既往吸烟|曾吸烟|(?<=[，,])\s*已停(?:吸|抽)?烟?")
_CURRENT = re.compile(r"未戒烟|未戒|仍(?:在)?吸烟|现(?:仍)?吸烟|偶尔?吸烟|(?<!不)嗜烟")
_CURRENT_IMPLIED = re.compile(
    r"吸烟(?=\s*(?:史)?\s*(?:约)?\s*\d)|(?:(?<=[。；;，,\n：:])|^)\s*吸烟(?=\s*(?:[。；;\n]|$))", re.M
)
_UNKNOWN = re.compile(r"吸烟(?:史|情况)?(?:不详|不清楚?|未知)")
_SMOKE_YEARS = re.compile(r"(?:吸烟|抽烟|烟龄)(?:史)?\s*(?:约)?\s*(\d+(?:\.\d+)?)\s*(?:余|多)?\s*年")
_PACKS_PER_DAY = re.compile(
    rf"(?:每天|每日|日|天)\s*(?:约)?\s*{_NUM}\s*(包半|包|支)|(\d+(?:\.\d+)?)\s*(包|支)\s*/\s*(?:日|天)|"
    rf"(?:每天|每日)\s*(?:约)?\s*(半)\s*包"
)
_PACK_YEARS = re.compile(r"(\d+(?:\.\d+)?)\s*包年")
_SMOKING_INDEX = re.compile(r"吸烟指数\s*(?:约|为)?\s*(\d+(?:\.\d+)?)\s*(?:年支)?|(\d+(?:\.\d+)?)\s*年支")
_QUIT_YEARS = re.compile(
    r"(?<!未)戒烟\s*(?:约)?\s*(\d+(?:\.\d+)?)\s*(?:余|多)?\s*(年|个月|月)|"
    r"(\d+(?:\.\d+)?)\s*(?:余|多)?\s*(年|个月|月)前(?:已)?戒烟|"
    r"(?<!未)已戒\s*(?:约)?\s*(\d+(?:\.\d+)?)\s*(?:余|多)?\s*(年|个月|月)"
)

_AGE = [
    re.compile(r"(\d{1,3})\s*岁"),
    re.compile(r"年龄\s*[：:]\s*(\d{1,3})"),
    re.compile(r"(?:^|[\s，,。])(?:男|女)\s*/\s*(\d{1,3})(?!\d)"),
]
_SEX = [
    re.compile(r"性别\s*[：:]\s*(男|女)"),
    re.compile(r"患者\s*[，,]?\s*(?:老年|中年|青年)?(男|女)"),
    re.compile(r"(男|女)(?:性)?\s*[，,、]?\s*\d{1,3}\s*岁"),
    re.compile(r"(?:^|[\s，,。])(男|女)\s*/\s*\d{1,3}(?!\d)"),
    re.compile(r"(?:老年|中年|青年)(男|女)性"),
    re.compile(r"(男|女)性"),
]
_CN_NUM = {"半": 0.5, "一": 1.0, "两": 2.0, "二": 2.0, "三": 3.0}


@lru_cache(maxsize=8)
def _relative_clauses(text: str) -> tuple[tuple[str, tuple[int, int]], ...]:
    """Each relative word of the note with the clause it stands in (found once per note)."""
    return tuple((m.group(0), clause_bounds(text, m.start(), CUES)) for m in _RELATIVE.finditer(text))


def _relative_spans(text: str) -> list[tuple[int, int]]:
    spans = [clause for _, clause in _relative_clauses(text)]
    spans += [m.span() for m in _FAMILY_SECTION.finditer(text)]
    return spans


def _in(spans: Sequence[tuple[int, int]], pos: int) -> bool:
    return covers(spans, pos)


def _num(token: str) -> float | None:
    if token in _CN_NUM:
        return _CN_NUM[token]
    try:
        return float(token)
    except ValueError:
        return None


def _as_number(value: float) -> FactValue:
    return int(value) if float(value).is_integer() else round(value, 2)


def _age_sex(text: str, relatives: Sequence[tuple[int, int]]) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    ages: list[tuple[int, int, int, int]] = []
    for pat in _AGE:
        for m in pat.finditer(text):
            value = int(m.group(1))
            if 0 < value < 120:
                ages.append((int(_in(relatives, m.start())), m.start(1), m.end(1), value))
    if ages:
        ages.sort()
        _, s, e, v = ages[0]
        out["age"] = make_fact(text, v, s, e)
    for pat in _SEX:
        hit = next((m for m in pat.finditer(text) if not _in(relatives, m.start())), None)
        if hit is not None:
            out["sex"] = make_fact(text, "M" if hit.group(1) == "男" else "F", hit.start(1), hit.end(1))
            break
    return out


def _smoking(text: str, relatives: Sequence[tuple[int, int]]) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    passive = SpanSet(m.span() for m in re.finditer(r"被动吸烟|二手烟", text))

    def usable(s: int, e: int) -> bool:
        return not _in(relatives, s) and not passive.overlaps(s, e)

    taken = SpanSet(())
    hits: dict[str, tuple[int, int]] = {}
    kinds = (("never", _NEVER), ("current", _CURRENT), ("former", _FORMER), ("current", _CURRENT_IMPLIED))
    for i, (status, pat) in enumerate(kinds):
        for m in pat.finditer(text):
            s, e = m.span()
            if not usable(s, e) or taken.overlaps(s, e):
                continue
            taken.add(s, e)
            hits.setdefault(status, (s, e))
            if i == len(kinds) - 1:
                break  # the last kind: its later hits would only be marked taken, which nothing reads now
    cur = hits.get("current")
    explicit_current = cur is not None and _CURRENT.fullmatch(text, cur[0], cur[1]) is not None
    chosen: str | None
    if "former" in hits and not explicit_current:
        chosen = "former"
    elif "current" in hits:
        chosen = "current"
    elif "never" in hits:
        chosen = "never"
    else:
        chosen = None
    if chosen is None:
        unknown = _UNKNOWN.search(text)
        if unknown is not None:
            out["smoking_status"] = make_fact(text, "unknown", unknown.start(), unknown.end())
    else:
        s, e = hits[chosen]
        out["smoking_status"] = make_fact(text, chosen, s, e)

    stated = next((m for m in _PACK_YEARS.finditer(text) if usable(*m.span())), None)
    index = next((m for m in _SMOKING_INDEX.finditer(text) if usable(*m.span())), None)
    if stated is not None:
        out["pack_years"] = make_fact(text, _as_number(float(stated.group(1))), stated.start(), stated.end())
    elif index is not None:
        raw = index.group(1) or index.group(2)
        out["pack_years"] = make_fact(text, _as_number(float(raw) / 20.0), index.start(), index.end())
    else:
        for ym in _SMOKE_YEARS.finditer(text):
            if not usable(*ym.span()):
                continue
            s_start, s_end = sentence_bounds(text, ym.start(), CUES)
            per_day = _per_day(text, s_start, s_end)
            if per_day is not None:
                packs, ps, pe = per_day
                lo, hi = min(ym.start(), ps), max(ym.end(), pe)
                out["pack_years"] = make_fact(text, _as_number(round(packs * float(ym.group(1)), 2)), lo, hi)
                break
    quit_m = next((m for m in _QUIT_YEARS.finditer(text) if usable(*m.span())), None)
    if quit_m is not None:
        number = quit_m.group(1) or quit_m.group(3) or quit_m.group(5)
        unit = quit_m.group(2) or quit_m.group(4) or quit_m.group(6)
        years = float(number) / (12.0 if "月" in unit else 1.0)
        out["years_since_quit"] = make_fact(text, _as_number(years), quit_m.start(), quit_m.end())
    return out


def _per_day(text: str, start: int, end: int) -> tuple[float, int, int] | None:
    """Packs per day stated in ``text[start:end]``: (packs, span start, span end)."""
    for m in _PACKS_PER_DAY.finditer(text, start, end):
        if m.group(1) is not None:
            n = _num(m.group(1))
            unit = m.group(2)
        elif m.group(3) is not None:
            n = _num(m.group(3))
            unit = m.group(4)
        else:
            n, unit = 0.5, "包"
        if n is None:
            continue
        if unit == "支":
            packs = n / 20.0
        elif unit == "包半":
            packs = n + 0.5
        else:
            packs = n
        return packs, m.start(), m.end()
    return None


#: "...及家族史" right after a cancer mention: the patient's own history and the family's.
_ALSO_FAMILY = re.compile(r"[^，。；]{0,4}?(?:及|和|、)家族史")


def _cancer(text: str, relatives: Sequence[tuple[int, int]]) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    hidden = SpanSet(m.span() for m in _NOT_A_CANCER.finditer(text))
    personal: list[Mention] = []
    family: list[Mention] = []
    sites: list[tuple[str, int, int]] = []
    for m in _FAMILY_CANCER_NEG.finditer(text):
        family.append(
            Mention("family_history_lung_cancer", m.start(), m.end(), Status.NEGATED, experiencer=FAMILY)
        )
    fam_neg_spans = SpanSet((mm.start, mm.end) for mm in family)
    spouses = SpanSet(clause_bounds(text, m.start(), CUES) for m in _SPOUSE.finditer(text))
    blood = SpanSet(clause for word, clause in _relative_clauses(text) if not _SPOUSE.match(word))
    for m in _CANCER.finditer(text):
        s, e = m.span()
        if hidden.overlaps(s, e) or _BASAL_CELL.search(m.group(0)):
            continue
        if _in(spouses, s) and not _in(blood, s):
            continue  # 其妻患肺癌: a spouse's cancer, neither the patient's nor a blood relative's
        s = _after_inner_cue(text, s, e)
        status = status_of(text, s, e, CUES)
        # "否认肿瘤病史及家族史": the patient's own history and the family's, both denied
        also_own = _ALSO_FAMILY.match(text, e) is not None
        in_family_neg = fam_neg_spans.covers(s)
        if (_in(relatives, s) or in_family_neg) and not also_own:
            lung = _LUNG_CANCER.search(text, s, e)
            if lung is not None:
                family.append(
                    Mention(
                        "family_history_lung_cancer", lung.start(), lung.end(), status, experiencer=FAMILY
                    )
                )
            continue
        when = temporality_of(text, s, CUES)
        personal.append(Mention("personal_cancer_history", s, e, status, temporality=when))
        if status is Status.AFFIRMED:
            site = _site(m.group(0))
            if site is not None:
                sites.append((site, s, e))
    for name, ms in (("personal_cancer_history", personal), ("family_history_lung_cancer", family)):
        value, mention = aggregate_bool(ms)
        if mention is not None:
            out[name] = make_fact(text, value, mention.start, mention.end, mention=mention)
    if out.get("personal_cancer_history", Fact()).value is True and sites:
        names: list[str] = []
        for site, _, _ in sites:
            if site not in names:
                names.append(site)
        out["cancer_site"] = make_fact(
            text, ",".join(names), sites[0][1], sites[0][2], context=out["personal_cancer_history"]
        )
    return out


def _after_inner_cue(text: str, start: int, end: int) -> int:
    """Start of a cancer mention after a cue its greedy match swallowed ("不除外早期肺癌", "疑为…肺癌").

    The cue then lies before the mention, where :func:`status_of` reads it.
    """
    pseudo = [m.span() for m in CUES.pseudo_negation.finditer(text, start, end)]
    core = start
    for pattern in (CUES.pre_negation, CUES.pre_uncertainty, CUES.pre_hypothetical):
        for cm in pattern.finditer(text, start, end - 1):
            if not any(ps <= cm.start() < pe for ps, pe in pseudo):
                core = max(core, cm.end())
    return core


def _site(mention: str) -> str | None:
    for word, site in _OTHER_SITES.items():
        if word in mention:
            return site
    best: tuple[int, str] | None = None
    for pattern, site in CANCER_SITES_ZH.items():
        for m in re.finditer(pattern, mention):
            # the site word nearest to the cancer word (at the end of the mention) wins
            if best is None or m.end() > best[0]:
                best = (m.end(), site)
    return None if best is None else best[1]


#: Traditional -> simplified characters used by the patterns (one character each way, so offsets and
#: spans are unchanged; the returned ``text`` of each fact is taken from the original note).
_TRADITIONAL = str.maketrans(
    "發燒體煙菸結氣腫認無親歲齡減輕帶絲腸腎術後診斷傳遺類濕關節藥療長慮應經現歷兩個間為沒頭狀陽陰測驗試檢見"
    "變顯婦媽爺孫環潑醫院費咯癥狀遠門樂線視塊惡黑細胞瘤淋巴骨髓膀胱卵巢頸喉舌"
    "鼻咽攝護腺脈壓糖尿併發異常兒孫夥隨訪穩斷層掃描顆節結吸菸戒斷嗜偶爾仍從未否與及或",
    "发烧体烟烟结气肿认无亲岁龄减轻带丝肠肾术后诊断传遗类湿关节药疗长虑应经现历两个间为没头状阳阴测验试检见"
    "变显妇妈爷孙环泼医院费咯症状远门乐线视块恶黑细胞瘤淋巴骨髓膀胱卵巢颈喉舌"
    "鼻咽摄护腺脉压糖尿并发异常儿孙伙随访稳断层扫描颗节结吸烟戒断嗜偶尔仍从未否与及或",
)


def to_simplified(text: str) -> str:
    """Map the traditional characters the patterns need to simplified ones, keeping every offset."""
    return text.translate(_TRADITIONAL)


def extract(text: str) -> dict[str, Fact]:
    """Extract every fact from a Chinese note (simplified or traditional characters).

    Parameters
    ----------
    text
        The note.

    Returns
    -------
    dict of str to Fact
        Facts found (absent names mean not stated); spans index ``text`` as given.
    """
    original = text
    text = to_simplified(text)
    relatives = SpanSet(_relative_spans(text))
    out: dict[str, Fact] = {}
    out.update(_age_sex(text, relatives))
    out.update(_smoking(text, relatives))
    out.update(_cancer(text, relatives))
    simple: list[tuple[str, list[re.Pattern[str]], list[re.Pattern[str]]]] = [
        ("fever", _FEVER, _FEVER_NEG),
        ("cough", _COUGH, []),
        ("hemoptysis", _HEMOPTYSIS, []),
        ("weight_loss", _WEIGHT, _WEIGHT_NEG),
        ("immunosuppressed", _IMMUNO, []),
        ("tb_or_fungal_exposure", _TB, []),
        ("emphysema_or_copd", _COPD, [_COPD_NEG_ONLY]),
    ]
    for name, pats, negs in simple:
        mentions = find_mentions(text, name, pats, CUES, negs, until_affirmed=True)
        value, mention = aggregate_bool(mentions)
        if mention is not None:
            out[name] = make_fact(text, value, mention.start, mention.end, mention=mention)
    # report the original characters (traditional stays traditional)
    return {
        name: fact
        if fact.span is None
        else make_fact(original, fact.value, fact.span[0], fact.span[1], context=fact)
        for name, fact in out.items()
    }
