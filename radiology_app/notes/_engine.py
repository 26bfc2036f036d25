"""Language-neutral machinery of the fact extractor: mentions, assertion status, aggregation.

A *mention* is one place in the note where a fact is spoken of (a trigger phrase). Its context, in
the ConText algorithm's three dimensions (Harkema et al., J Biomed Inform 2009), is decided from cue
phrases in the clause that contains it:

* *certainty* (:class:`Status`): ``affirmed``, ``negated``, ``possible`` (possible or suspected) or
  ``hypothetical`` ("if", "should ... develop"): a cue before the trigger in the same clause, or a
  post-cue right after it;
* *experiencer*: ``patient``, ``family`` (a relative) or ``other``;
* *temporality*: ``current`` or ``historical`` ("history of", "s/p", "既往", "术后").

The mentions of one fact are then aggregated (:func:`aggregate_bool`): only affirmed mentions make a
fact true.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Protocol, overload

__all__ = [
    "CURRENT",
    "FAMILY",
    "HISTORICAL",
    "OTHER",
    "PATIENT",
    "CueSet",
    "FoldedPattern",
    "Mention",
    "NotePattern",
    "Pattern",
    "SpanSet",
    "Status",
    "aggregate_bool",
    "clause_bounds",
    "covers",
    "fold_case",
    "status_of",
    "temporality_of",
]


class Pattern(Protocol):
    """What the extractors need of a compiled pattern: :class:`re.Pattern`, :class:`NotePattern` or
    :class:`FoldedPattern`."""

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]: ...

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None: ...

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None: ...

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None: ...


#: The non-ASCII characters that ``re.IGNORECASE`` matches to an ASCII letter but ``str.lower`` keeps
#: (dotless i, long s), and the one whose ``str.lower`` is two characters (dotted capital I).
_FOLD_TO_ASCII = (("ı", "i"), ("ſ", "s"))
_DOTTED_CAPITAL_I = "İ"
#: ASCII characters that Unicode ``\s`` counts as spaces and ASCII ``\s`` does not (separators).
_UNICODE_ONLY_SPACES = "\x1c\x1d\x1e\x1f"
#: Texts at least this long (whole notes) are folded and checked for plain ASCII once (cached); shorter
#: ones (clauses) are folded each time and scanned with Unicode classes.
_FOLD_CACHE_MIN_CHARS = 1000


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    folded = text.replace(_DOTTED_CAPITAL_I, "i").lower()
    for char, ascii_letter in _FOLD_TO_ASCII:
        folded = folded.replace(char, ascii_letter)
    return folded


def fold_case(text: str) -> str:
    """``text`` case-folded as ``re.IGNORECASE`` compares letters, with every offset kept.

    A character matches an ASCII letter under ``re.IGNORECASE`` exactly when its folded form is that
    letter in lower case; every other character keeps its class (word character, space, digit), so a
    lower-case pattern finds on the folded text exactly the spans that it finds with ``IGNORECASE`` on
    ``text``.
    """
    return _note_forms(text)[0] if len(text) >= _FOLD_CACHE_MIN_CHARS else _fold(text)


@lru_cache(maxsize=8)
def _note_forms(note: str) -> tuple[str, bool]:
    """The folded note, and whether ASCII character classes read it as the Unicode ones do (ASCII
    without separator controls)."""
    plain_ascii = note.isascii() and not any(c in note for c in _UNICODE_ONLY_SPACES)
    return _fold(note), plain_ascii


class NotePattern:
    """A pattern for whole notes: a long note in plain ASCII is scanned with ASCII character classes,
    a third faster than with Unicode ones and the same matches there.

    Parameters
    ----------
    pattern
        The pattern.
    flags
        ``re`` flags.
    """

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.regex = re.compile(pattern, flags)
        self._ascii_regex = re.compile(pattern, flags | re.ASCII)

    #: Whether the pattern runs on the case-folded text.
    _folded = False

    def _on(self, string: str) -> tuple[re.Pattern[str], str]:
        """The compiled pattern to use, and the text (with the offsets of ``string``) to run it on."""
        if len(string) < _FOLD_CACHE_MIN_CHARS:
            return self.regex, _fold(string) if self._folded else string
        folded, plain_ascii = _note_forms(string)
        return (self._ascii_regex if plain_ascii else self.regex), folded if self._folded else string

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        """As :meth:`re.Pattern.finditer`."""
        regex, subject = self._on(string)
        return regex.finditer(subject, pos, endpos)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """As :meth:`re.Pattern.search`."""
        regex, subject = self._on(string)
        return regex.search(subject, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """As :meth:`re.Pattern.match`."""
        regex, subject = self._on(string)
        return regex.match(subject, pos, endpos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """As :meth:`re.Pattern.fullmatch`."""
        regex, subject = self._on(string)
        return regex.fullmatch(subject, pos, endpos)


class FoldedPattern(NotePattern):
    """A case-insensitive pattern written in lower case and run case-sensitively on the folded text.

    ``re`` with ``IGNORECASE`` gives up its fast scan for a pattern's first characters and tries every
    position of the note, several times slower on a long note; on the folded text (:func:`fold_case`,
    same offsets) the same pattern keeps it. Matches index the text as given; their groups are in lower
    case.

    Parameters
    ----------
    pattern
        The pattern, its letters in lower case.
    flags
        ``re`` flags other than ``IGNORECASE``.
    """

    _folded = True


class Status(StrEnum):
    """Assertion status of a mention."""

    AFFIRMED = "affirmed"
    NEGATED = "negated"
    POSSIBLE = "possible"
    HYPOTHETICAL = "hypothetical"


#: Who a mention is about.
PATIENT = "patient"
FAMILY = "family"
OTHER = "other"
#: When.
CURRENT = "current"
HISTORICAL = "historical"


@dataclass(frozen=True)
class Mention:
    """One mention of a fact: where it is, and what it asserts.

    Attributes
    ----------
    fact
        Fact name (a key of the contract's fact list).
    start, end
        Character offsets of the trigger in the note.
    status
        Affirmed, negated, possible or hypothetical.
    value
        The value the mention carries when affirmed (``True`` for yes/no facts, a site name, ...).
    experiencer
        :data:`PATIENT`, :data:`FAMILY` or :data:`OTHER`.
    temporality
        :data:`CURRENT` or :data:`HISTORICAL`.
    """

    fact: str
    start: int
    end: int
    status: Status
    value: object = True
    experiencer: str = PATIENT
    temporality: str = CURRENT


class SpanSet(Sequence[tuple[int, int]]):
    """Character spans merged into sorted, disjoint intervals: membership in O(log n), not O(n).

    Notes are scanned for many triggers, each checked against every relative's clause; a plain list
    would make long notes quadratic.
    """

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for s, e in sorted(spans):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self._spans = merged
        self._starts = [s for s, _ in merged]

    def __len__(self) -> int:
        return len(self._spans)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[int, int]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, int] | Sequence[tuple[int, int]]:
        return self._spans[index]

    def covers(self, pos: int) -> bool:
        """Whether some span ``[start, end)`` contains ``pos``."""
        i = bisect_right(self._starts, pos) - 1
        return i >= 0 and pos < self._spans[i][1]

    def overlaps(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` overlaps some span (the intervals are disjoint and sorted)."""
        i = bisect_left(self._starts, end) - 1
        return i >= 0 and self._spans[i][1] > start

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``, merging it with the spans it touches."""
        lo = bisect_left(self._starts, start)
        if lo > 0 and self._spans[lo - 1][1] >= start:
            lo -= 1
            start, end = self._spans[lo][0], max(end, self._spans[lo][1])
        hi = lo
        while hi < len(self._spans) and self._spans[hi][0] <= end:
            end = max(end, self._spans[hi][1])
            hi += 1
        self._spans[lo:hi] = [(start, end)]
        self._starts[lo:hi] = [start]


def covers(spans: Sequence[tuple[int, int]], pos: int) -> bool:
    """Whether a span of ``spans`` contains ``pos`` (logarithmic for a :class:`SpanSet`)."""
    if isinstance(spans, SpanSet):
        return spans.covers(pos)
    return any(s <= pos < e for s, e in spans)


@dataclass(frozen=True, eq=False)
class CueSet:
    """The cue patterns of one language (compared and hashed by identity: one per language).

    Attributes
    ----------
    sentence_break
        Pattern that ends a sentence (and every clause).
    clause_break
        Pattern that ends a negation scope inside a sentence ("but", "however", ";" ...).
    pre_negation
        Cue before a trigger that negates it.
    pseudo_negation
        Phrases that look like negation cues but are not ("no change in", "无明显诱因").
    pre_uncertainty
        Cue before a trigger that makes it uncertain.
    post_negation
        Pattern matched right after the trigger (anchored at its end) that negates it.
    post_uncertainty
        Pattern matched right after the trigger that makes it uncertain.
    post_affirmation
        Pattern matched right after the trigger that affirms it (``: yes``, ``(+)``), winning over
        an earlier negation cue.
    scope_breaker
        Pattern that, found between a pre-cue and the trigger, ends the cue's scope (a new verb
        phrase such as "reports" or "has").
    subject_verb
        Pattern matched right after the trigger showing that it starts a new clause ("denies fever,
        cough is minimal"): a pre-cue separated from such a trigger by a comma does not reach it.
    pre_hypothetical
        Cue before a trigger that makes it hypothetical ("if", "should", "如果").
    historical
        Pattern anywhere in the trigger's clause that places it in the past ("history of", "既往").
    pseudo_cue
        Phrases that contain an uncertainty or hypothetical cue but are neither ("grateful if you
        could see", "could you").
    narrow_negation
        Pattern matched right after a negation cue that limits the cue to its own phrase, so its
        scope ends at the next comma ("not on ART, fever 2 weeks").
    """

    sentence_break: Pattern
    clause_break: Pattern
    pre_negation: Pattern
    pseudo_negation: Pattern
    pre_uncertainty: Pattern
    post_negation: Pattern
    post_uncertainty: Pattern
    post_affirmation: Pattern
    scope_breaker: Pattern
    subject_verb: Pattern = re.compile(r"(?!)")
    pre_hypothetical: Pattern = re.compile(r"(?!)")
    historical: Pattern = re.compile(r"(?!)")
    pseudo_cue: Pattern = re.compile(r"(?!)")
    narrow_negation: Pattern = re.compile(r"(?!)")


#: Starts and ends of the matches of a pattern, in text order (two sorted tuples, for bisection).
_Spans = tuple[tuple[int, ...], tuple[int, ...]]


def _spans_of(matches: Iterable[re.Match[str]]) -> _Spans:
    spans = [m.span() for m in matches]
    return tuple(s for s, _ in spans), tuple(e for _, e in spans)


class _NoteCues:
    """What the cue patterns of one language find in one note: each pattern scans the whole note once,
    on first use; mentions then look cues up by bisection (linear time for any note)."""

    def __init__(self, text: str, cues: CueSet) -> None:
        self._text = text
        self._cues = cues

    @cached_property
    def sentence_breaks(self) -> _Spans:
        return _spans_of(self._cues.sentence_break.finditer(self._text))

    def _cues_outside(self, pattern: Pattern, pseudo: SpanSet) -> _Spans:
        return _spans_of(m for m in pattern.finditer(self._text) if not pseudo.covers(m.start()))

    @cached_property
    def _pseudo_negations(self) -> SpanSet:
        return SpanSet(m.span() for m in self._cues.pseudo_negation.finditer(self._text))

    @cached_property
    def _pseudo_cues(self) -> SpanSet:
        return SpanSet(m.span() for m in self._cues.pseudo_cue.finditer(self._text))

    @cached_property
    def negations(self) -> _Spans:
        """Pre-negation cues, those inside a pseudo-negation left out."""
        return self._cues_outside(self._cues.pre_negation, self._pseudo_negations)

    @cached_property
    def uncertainties(self) -> _Spans:
        """Pre-uncertainty cues, those inside a pseudo-cue left out."""
        return self._cues_outside(self._cues.pre_uncertainty, self._pseudo_cues)

    @cached_property
    def hypotheticals(self) -> _Spans:
        """Pre-hypothetical cues, those inside a pseudo-cue left out."""
        return self._cues_outside(self._cues.pre_hypothetical, self._pseudo_cues)


@lru_cache(maxsize=8)
def _note_cues(text: str, cues: CueSet) -> _NoteCues:
    return _NoteCues(text, cues)


@lru_cache(maxsize=256)
def _clause_breaks(sentence: str, cues: CueSet) -> _Spans:
    """Clause breaks of one sentence (cached: a sentence holds several mentions)."""
    return _spans_of(cues.clause_break.finditer(sentence))


#: The farthest a sentence or clause reaches on either side of a position, characters. A note without
#: punctuation is one endless sentence; every trigger would scan all of it (quadratic time), so the
#: scope stops here, at a space (cues work within a few words anyway, as in NegEx's word window).
MAX_SCOPE_CHARS = 200


def _bounds(text: str, pos: int, breaks: _Spans) -> tuple[int, int]:
    starts, ends = breaks
    i = bisect_right(ends, pos)
    start = ends[i - 1] if i else 0
    j = bisect_left(starts, pos)
    end = starts[j] if j < len(starts) else len(text)
    if start < pos - MAX_SCOPE_CHARS:
        space = text.find(" ", pos - MAX_SCOPE_CHARS, pos)
        start = space + 1 if space >= 0 else pos - MAX_SCOPE_CHARS
    if end > pos + MAX_SCOPE_CHARS:
        space = text.rfind(" ", pos, pos + MAX_SCOPE_CHARS)
        end = space if space > pos else pos + MAX_SCOPE_CHARS
    return start, max(end, pos)


def sentence_bounds(text: str, pos: int, cues: CueSet) -> tuple[int, int]:
    """Start and end offsets of the sentence containing ``pos``."""
    return _bounds(text, pos, _note_cues(text, cues).sentence_breaks)


@lru_cache(maxsize=1024)
def clause_bounds(text: str, pos: int, cues: CueSet) -> tuple[int, int]:
    """Start and end offsets of the clause (negation scope) containing ``pos`` (cached: the status and
    the temporality of a mention both need it)."""
    s_start, s_end = sentence_bounds(text, pos, cues)
    sentence = text[s_start:s_end]
    c_start, c_end = _bounds(sentence, pos - s_start, _clause_breaks(sentence, cues))
    return s_start + c_start, s_start + c_end


def _last_cue_end(cues: _Spans, lo: int, hi: int) -> int | None:
    """End offset of the last of ``cues`` lying wholly in ``text[lo:hi]``, or ``None``."""
    starts, ends = cues
    i = bisect_right(ends, hi) - 1
    return ends[i] if i >= 0 and starts[i] >= lo else None


_COMMA = re.compile(r"[,，]")
_COMMA_OR_BRACKET = re.compile(r"[,，(]")


def status_of(text: str, start: int, end: int, cues: CueSet) -> Status:
    """Assertion status of the trigger ``text[start:end]`` from the cues of its clause.

    Parameters
    ----------
    text
        The whole note.
    start, end
        Offsets of the trigger.
    cues
        The language's cue patterns.

    Returns
    -------
    Status
        Post-cues (right after the trigger) win; otherwise the nearest pre-cue in the clause whose
        scope is not broken decides; otherwise the mention is affirmed.
    """
    c_start, c_end = clause_bounds(text, start, cues)
    if cues.post_affirmation.match(text, end, c_end):
        return Status.AFFIRMED
    if cues.post_negation.match(text, end, c_end):
        return Status.NEGATED
    if cues.post_uncertainty.match(text, end, c_end):
        return Status.POSSIBLE
    note = _note_cues(text, cues)
    nearest: tuple[int, Status] | None = None  # the cue ending last wins; on a tie, the first listed
    for status, found in (
        (Status.NEGATED, note.negations),
        (Status.POSSIBLE, note.uncertainties),
        (Status.HYPOTHETICAL, note.hypotheticals),
    ):
        cue_end = _last_cue_end(found, c_start, start)
        if cue_end is not None and (nearest is None or cue_end > nearest[0]):
            nearest = (cue_end, status)
    if nearest is None:
        return Status.AFFIRMED
    cue_end, status = nearest
    if cues.scope_breaker.search(text, cue_end, start):
        return Status.AFFIRMED
    if (
        status is Status.NEGATED
        and cues.narrow_negation.match(text, cue_end, start)
        and _COMMA_OR_BRACKET.search(text, cue_end, start)
    ):
        return Status.AFFIRMED
    if _COMMA.search(text, cue_end, start) and cues.subject_verb.match(text, end, c_end):
        return Status.AFFIRMED
    return status


def temporality_of(text: str, start: int, cues: CueSet) -> str:
    """:data:`HISTORICAL` when the clause of the trigger at ``start`` places it in the past."""
    c_start, c_end = clause_bounds(text, start, cues)
    return HISTORICAL if cues.historical.search(text, c_start, c_end) else CURRENT


#: The first stretch of a note that :func:`find_mentions` reads before it looks whether the fact is
#: settled, characters; each further stretch is twice as long.
_FIRST_STRETCH_CHARS = 4096


class _MatchStream:
    """The matches of one pattern in a note, read lazily in text order."""

    def __init__(self, pattern: Pattern, text: str) -> None:
        self._matches = pattern.finditer(text)
        self.next: re.Match[str] | None = next(self._matches, None)

    def take_before(self, pos: int) -> list[re.Match[str]]:
        """The matches starting before ``pos`` not taken yet."""
        taken: list[re.Match[str]] = []
        while self.next is not None and self.next.start() < pos:
            taken.append(self.next)
            self.next = next(self._matches, None)
        return taken


def _read_stretch(streams: Sequence[_MatchStream], pos: int) -> tuple[list[list[re.Match[str]]], int]:
    """Each stream's matches up to a cut at or after ``pos`` that no match crosses, and the cut.

    Whether a match becomes a mention depends only on the matches that overlap it, so the note can be
    read stretch by stretch between such cuts, with the same mentions as when it is read whole.
    """
    batches: list[list[re.Match[str]]] = [[] for _ in streams]
    cut = pos
    while True:
        for batch, stream in zip(batches, streams, strict=True):
            batch.extend(stream.take_before(cut))
        reach = max((batch[-1].end() for batch in batches if batch), default=cut)
        if reach <= cut:
            return batches, cut
        cut = reach


def find_mentions(
    text: str,
    fact: str,
    patterns: Iterable[Pattern],
    cues: CueSet,
    negative_patterns: Iterable[Pattern] = (),
    exclude: Pattern | None = None,
    skip: Sequence[tuple[int, int]] = (),
    *,
    adjust: Callable[[Mention], Mention] | None = None,
    until_affirmed: bool = False,
) -> list[Mention]:
    """All mentions of a yes/no fact (or, with ``until_affirmed``, enough of them to aggregate).

    Parameters
    ----------
    text
        The note.
    fact
        The fact name.
    patterns
        Trigger patterns; each match is a mention whose status comes from :func:`status_of`. Where
        matches overlap, the earlier pattern's wins.
    cues
        Cue patterns of the language.
    negative_patterns
        Triggers that state absence by themselves ("afebrile", "weight stable", "体重无变化").
    exclude
        Matches of this pattern hide any trigger that overlaps them ("valley fever" for fever).
    skip
        Spans (e.g. family-history clauses) inside which triggers are ignored.
    adjust
        Applied to each mention as it is found (e.g. review-of-systems markers).
    until_affirmed
        Stop reading the note once an affirmed mention is found: :func:`aggregate_bool` of the
        mentions returned is then the same as of all mentions (the first affirmed one decides), and
        a long note is not read to its end for a symptom stated in its first lines.

    Returns
    -------
    list of Mention
        In text order: all of them, or every mention up to a point past the first affirmed one.
    """
    negatives = list(negative_patterns)
    triggers = list(patterns)
    streams = [
        _MatchStream(p, text) for p in ([exclude] if exclude is not None else []) + negatives + triggers
    ]
    n_exclude = len(streams) - len(negatives) - len(triggers)
    hidden = SpanSet(skip)
    taken = SpanSet(())
    found: list[Mention] = []
    stretch_end = 0
    stretch = _FIRST_STRETCH_CHARS
    while any(stream.next is not None for stream in streams):
        batches, stretch_end = _read_stretch(streams, stretch_end + stretch)
        stretch *= 2
        for m in (m for batch in batches[:n_exclude] for m in batch):
            hidden.add(*m.span())
        new: list[Mention] = []
        for m in (m for batch in batches[n_exclude : n_exclude + len(negatives)] for m in batch):
            if not hidden.overlaps(*m.span()):
                new.append(Mention(fact, m.start(), m.end(), Status.NEGATED))
                taken.add(*m.span())
        for m in (m for batch in batches[n_exclude + len(negatives) :] for m in batch):
            s, e = m.span()
            if hidden.overlaps(s, e) or taken.overlaps(s, e):
                continue
            taken.add(s, e)
            new.append(
                Mention(fact, s, e, status_of(text, s, e, cues), temporality=temporality_of(text, s, cues))
            )
        new.sort(key=lambda mm: mm.start)
        found.extend(new if adjust is None else map(adjust, new))
        if until_affirmed and any(mm.status is Status.AFFIRMED for mm in found):
            break
    return found


def aggregate_bool(mentions: Sequence[Mention]) -> tuple[bool | None, Mention | None]:
    """Combine the mentions of a yes/no fact.

    Any affirmed mention makes the fact ``True`` (a symptom reported once is present, even if the
    note later says it settled); otherwise any negated mention makes it ``False``; otherwise an
    uncertain or hypothetical mention leaves it ``None`` but keeps its span so the reader can see it.

    Returns
    -------
    tuple of (bool or None, Mention or None)
        The value and the mention it came from (the first of its kind).
    """
    for status, value in ((Status.AFFIRMED, True), (Status.NEGATED, False)):
        for m in mentions:
            if m.status is status:
                return value, m
    for m in mentions:
        return None, m
    return None, None
