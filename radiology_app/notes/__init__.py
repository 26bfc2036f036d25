"""Clinical notes: loading (UTF-8 / GB18030) and fact extraction in English and Chinese.

Fact extraction (:func:`radiology_app.notes.facts.extract_facts`) is rule-based: regular expressions
for the triggers of each fact plus a NegEx/ConText-style assertion step (negation and uncertainty
cues scoped to the clause, post-cues such as "Fever: no" or "（-）", review-of-systems markers, and
suppression of statements about relatives). Every value keeps the character span it came from.
Chinese notes may use simplified or traditional characters (an offset-preserving character map).

Why no NLP library:

* English: negspacy / medspaCy need spaCy plus a downloaded language model; nothing may be downloaded
  at run time here, and the facts we need are a closed list whose triggers are short phrases. A
  small NegEx scope engine (``_engine.py``) is auditable, needs no model, takes 2-4 ms per note
  on one CPU core (0.5 s for a 56,000-character text), and behaves identically everywhere.
* Chinese: jieba's last release is from January 2020 (unmaintained), and word segmentation would
  add a failure mode on clinical terms its general dictionary does not know, while the cues we need
  (否认, 无, 未, 不伴, （-）) are character sequences whose scope is bounded by ，。； -- clause-bounded
  matching needs no segmentation.

Measured (``radiology-app evaluate-notes``): 1.00 precision and recall for every fact on the
development corpus in ``tests/data/notes`` (64 English + 32 Chinese notes the rules were tuned on);
on three hold-out sets (60 notes) scored once before any change, micro-averaged precision 0.98 and
recall 0.93-0.96, single facts down to 0.33 recall on small counts (smoking history and weight-loss
phrasing are the hardest). ``tests/data/notes/README.md``
says how the notes were written and lists the hold-out errors.
"""
